//! The five providers: how each authenticates, what it sends, and how it maps to events.
//!
//! [`authenticate_and_normalise`] is the whole synchronous half of handling a callback: method, size and
//! source checks, the provider's authentication, parsing and normalisation. Nothing here does I/O.

pub mod choice;
pub mod lipia;
pub mod m2money;
pub mod muda;
pub mod niobi;

use std::str::FromStr;

use chrono::{DateTime, Utc};
use lambda_http::http::{HeaderMap, Method};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::canonical::{CanonicalPairs, SIGNATURE_FIELD};
use crate::config::{VerifyConfig, MAX_FUTURE_SKEW};
use crate::error::Rejection;
use crate::event::NormalisedEvent;
use crate::json::{self, Members, Text};
use crate::secrets::{self, SecretSet};
use crate::signing::{self, CanonicalHash};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Niobi,
    Choice,
    M2Money,
    Lipia,
    Muda,
}

impl Provider {
    pub const ALL: [Provider; 5] =
        [Provider::Niobi, Provider::Choice, Provider::M2Money, Provider::Lipia, Provider::Muda];

    /// The provider's name: its function's binary name, event source and id prefix.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Niobi => "niobi",
            Provider::Choice => "choice",
            Provider::M2Money => "m2money",
            Provider::Lipia => "lipia",
            Provider::Muda => "muda",
        }
    }

    /// Choice and Lipia want the plain-text body `ok`; the others a small JSON body.
    pub fn acks_with_plain_ok(self) -> bool {
        matches!(self, Provider::Choice | Provider::Lipia)
    }
}

impl FromStr for Provider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown provider `{s}` (expected one of niobi, choice, m2money, lipia, muda)"))
    }
}

/// A request as the providers' code sees it, independent of the Lambda event shape.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub method: &'a Method,
    /// The URL path (Lipia and MUDA carry their token as its last segment).
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// The caller's address as API Gateway saw it.
    pub source_ip: Option<&'a str>,
}

/// How a callback was authenticated: the scheme and which secret (index, never value) matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub scheme: &'static str,
    pub secret_index: usize,
}

/// A genuine callback, taken apart.
#[derive(Debug)]
pub struct Callback<'a> {
    pub verified: Verified,
    /// The body as UTF-8 text, exactly as received.
    pub body: &'a str,
    /// The provider's JSON minus `signature`, value text untouched.
    pub payload: Box<RawValue>,
    /// SHA-256 (hex) of the flattened body without what changes between deliveries (signature, salt, timestamp).
    pub content_hash: String,
    pub events: Vec<NormalisedEvent>,
}

/// Fields left out of the content hash: they legitimately differ between deliveries of one event.
const VOLATILE_FIELDS: [&str; 3] = [SIGNATURE_FIELD, "salt", "timestamp"];

/// Check, authenticate, parse and normalise one callback.
pub fn authenticate_and_normalise<'a>(
    provider: Provider,
    config: &VerifyConfig,
    secrets: &SecretSet,
    req: &Incoming<'a>,
    now: DateTime<Utc>,
) -> Result<Callback<'a>, Rejection> {
    if req.method != Method::POST {
        return Err(Rejection::MethodNotAllowed);
    }
    if req.body.len() > config.max_body_bytes {
        return Err(Rejection::PayloadTooLarge { limit: config.max_body_bytes });
    }
    check_source_ip(config, req.source_ip)?;

    let ctx = Context { config, secrets, req, now };
    let (verified, body, members, events) = match provider {
        Provider::Niobi => niobi::ingest(&ctx)?,
        Provider::Choice => choice::ingest(&ctx)?,
        Provider::M2Money => m2money::ingest(&ctx)?,
        Provider::Lipia => lipia::ingest(&ctx)?,
        Provider::Muda => muda::ingest(&ctx)?,
    };
    let content = CanonicalPairs::from_members(&members, &VOLATILE_FIELDS)?;
    Ok(Callback {
        verified,
        body,
        payload: json::object_without(&members, &[SIGNATURE_FIELD]),
        content_hash: hex::encode(Sha256::digest(content.joined().as_bytes())),
        events,
    })
}

/// What each provider module receives.
pub(crate) struct Context<'c, 'a> {
    pub config: &'c VerifyConfig,
    pub secrets: &'c SecretSet,
    pub req: &'c Incoming<'a>,
    pub now: DateTime<Utc>,
}

/// What each provider module returns: how it was verified, the body, its top-level members and the events.
pub(crate) type Ingested<'a> = (Verified, &'a str, Members<'a>, Vec<NormalisedEvent>);

impl<'a> Context<'_, 'a> {
    pub fn body_text(&self) -> Result<&'a str, Rejection> {
        std::str::from_utf8(self.req.body).map_err(|_| Rejection::InvalidJson("body is not UTF-8".into()))
    }

    /// The body as one JSON object (duplicate keys refused anywhere).
    pub fn members(&self) -> Result<(&'a str, Members<'a>), Rejection> {
        let body = self.body_text()?;
        let members = json::object_members(body)?;
        Ok((body, members))
    }

    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.req.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
    }

    /// Lipia and MUDA: the last path segment is a secret token given to the provider in the callback URL.
    pub fn verify_path_token(&self) -> Result<Verified, Rejection> {
        let token = self.req.path.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
        if token.is_empty() {
            return Err(Rejection::MissingToken);
        }
        self.secrets
            .find(|s| secrets::token_matches(s.expose(), token))
            .map(|secret_index| Verified { scheme: "url-token", secret_index })
            .ok_or(Rejection::InvalidToken)
    }

    /// Choice and Niobi: the body's `signature` over the canonical string, then the send timestamp.
    pub fn verify_canonical(
        &self,
        members: &Members<'_>,
        hash: CanonicalHash,
        scheme: &'static str,
    ) -> Result<Verified, Rejection> {
        let provided = field_text(members, SIGNATURE_FIELD)
            .filter(|s| !s.trim().is_empty())
            .ok_or(Rejection::MissingSignature("body field `signature`"))?;
        let pairs = CanonicalPairs::from_members(members, &[SIGNATURE_FIELD])?;
        let secret_index = self
            .secrets
            .find(|s| secrets::hex_matches(&signing::canonical_digest(&pairs, s, hash), &provided))
            .ok_or(Rejection::InvalidSignature)?;
        self.check_timestamp(members)?;
        Ok(Verified { scheme, secret_index })
    }

    /// Refuse a send `timestamp` older than `MAX_EVENT_AGE_SECS` or more than 300 s ahead. Niobi sends
    /// seconds and Choice milliseconds, but both have been seen with the other unit, so the unit is taken
    /// from the magnitude (a value above 10^11 is milliseconds: in seconds it would be the year 5138).
    pub fn check_timestamp(&self, members: &Members<'_>) -> Result<(), Rejection> {
        let text = field_text(members, "timestamp").ok_or(Rejection::InvalidTimestamp)?;
        let value: i64 = text.trim().parse().map_err(|_| Rejection::InvalidTimestamp)?;
        if value <= 0 {
            return Err(Rejection::InvalidTimestamp);
        }
        let sent_ms = if value > 100_000_000_000 { value } else { value.saturating_mul(1000) };
        let now_ms = self.now.timestamp_millis();
        if now_ms.saturating_sub(sent_ms) > self.config.max_event_age.as_millis() as i64 {
            return Err(Rejection::StaleTimestamp);
        }
        if sent_ms.saturating_sub(now_ms) > MAX_FUTURE_SKEW.as_millis() as i64 {
            return Err(Rejection::FutureTimestamp);
        }
        Ok(())
    }
}

fn check_source_ip(config: &VerifyConfig, source_ip: Option<&str>) -> Result<(), Rejection> {
    let Some(allowed) = &config.allowed_source_ips else { return Ok(()) };
    let shown = source_ip.unwrap_or("(none)").to_owned();
    let ip: std::net::IpAddr =
        source_ip.and_then(|s| s.parse().ok()).ok_or_else(|| Rejection::SourceIpNotAllowed(shown.clone()))?;
    if allowed.iter().any(|net| net.contains(&ip)) {
        Ok(())
    } else {
        Err(Rejection::SourceIpNotAllowed(shown))
    }
}

/// A top-level scalar field's text.
pub(crate) fn field_text(members: &Members<'_>, name: &str) -> Option<String> {
    members.iter().find(|(k, _)| k == name).and_then(|(_, v)| json::scalar_text(v))
}

/// A required identifying field: present and not empty.
pub(crate) fn required(value: &Option<Text>, field: &str) -> Result<String, Rejection> {
    match value {
        Some(t) if !t.as_str().trim().is_empty() => Ok(t.as_str().to_owned()),
        _ => Err(Rejection::missing(field)),
    }
}

/// An optional text field; empty strings count as absent.
pub(crate) fn optional(value: &Option<Text>) -> Option<String> {
    value.as_ref().map(|t| t.as_str().trim().to_owned()).filter(|s| !s.is_empty())
}

/// An amount as decimal text exactly as sent (string or number); empty means absent. Anything that is not a
/// plain decimal (`-12.50`, `100`) is refused rather than passed on for a consumer to misread.
pub(crate) fn amount(value: &Option<Text>, field: &str) -> Result<Option<String>, Rejection> {
    let Some(text) = optional(value) else { return Ok(None) };
    let digits = text.strip_prefix('-').unwrap_or(&text);
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    let is_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if is_digits(whole) && is_digits(frac) {
        Ok(Some(text))
    } else {
        Err(Rejection::invalid(field, format!("`{text}` is not a decimal amount")))
    }
}

/// Parse a sub-document into a typed model, naming the field on failure.
pub(crate) fn parse_as<'de, T: serde::Deserialize<'de>>(raw: &'de str, field: &str) -> Result<T, Rejection> {
    serde_json::from_str(raw).map_err(|e| Rejection::invalid(field, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_must_be_decimal_text() {
        let t = |s: &str| Some(Text(s.to_owned()));
        assert_eq!(amount(&t("100.50"), "a"), Ok(Some("100.50".into())));
        assert_eq!(amount(&t("-3"), "a"), Ok(Some("-3".into())));
        assert_eq!(amount(&t(""), "a"), Ok(None));
        assert_eq!(amount(&None, "a"), Ok(None));
        for bad in ["1,000", "1e3", "ten", "1.", ".5", "--1"] {
            assert_eq!(amount(&t(bad), "data.amount").unwrap_err().code(), "invalid_field", "{bad}");
        }
    }

    #[test]
    fn provider_names_round_trip() {
        for p in Provider::ALL {
            assert_eq!(p.name().parse::<Provider>(), Ok(p));
        }
        assert!("stripe".parse::<Provider>().is_err());
    }
}
