//! The providers: each is one module whose [`Spec`] holds its whole behaviour (how it authenticates,
//! parses and normalises, how it acknowledges, its route, and behind `test-util` its signer).
//!
//! [`authenticate_and_normalise`] is the whole synchronous half of handling a callback: method, size and
//! source checks, then the provider's own step. Nothing here does I/O. This file is the one place that
//! dispatches on [`Provider`].

mod choice;
mod lipia;
mod m2money;
mod muda;
mod niobi;

use chrono::{DateTime, Utc};
use lambda_http::http::{HeaderMap, Method};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::config::{VerifyConfig, MAX_FUTURE_SKEW};
use crate::error::Rejection;
use crate::event::{NormalisedEvent, Status};
use crate::provider::Provider;
use crate::verify::canonical::{CanonicalPairs, SIGNATURE_FIELD};
use crate::verify::json::{self, Members, Text};
use crate::verify::secrets::{self, SecretSet};
use crate::verify::signing::{self, CanonicalHash};
use crate::verify::{Scheme, Verified};
#[cfg(feature = "test-util")]
use crate::{testing::SignedRequest, verify::Secret};

/// One provider's whole behaviour.
pub(crate) struct Spec {
    pub ack: Ack,
    pub route: Route,
    /// How the provider's sender signs (what the tests and `payhooks-send` imitate).
    #[cfg_attr(not(feature = "test-util"), allow(dead_code))]
    pub signer: Signer,
    /// Authenticate, parse and normalise one callback (after the common checks).
    pub ingest: for<'a> fn(&Context<'_, 'a>) -> Result<Ingested<'a>, Rejection>,
}

/// How a provider's sender signs a callback. The signing code itself is in `testing` (feature `test-util`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "test-util"), allow(dead_code))]
pub(crate) enum Signer {
    /// Body `signature` over the canonical string, `timestamp` in seconds, hash as configured (Niobi).
    CanonicalSeconds,
    /// Body `signature`: SHA-256 of the canonical string, `timestamp` in milliseconds (Choice).
    CanonicalMillis,
    /// Hex HMAC-SHA256 of the raw body in the named header (M2Money).
    BodyHmacHeader(&'static str),
    /// The secret as the callback URL's last path segment (Lipia, MUDA).
    PathToken,
}

/// The one dispatch on [`Provider`].
pub(crate) fn spec(provider: Provider) -> &'static Spec {
    match provider {
        Provider::Niobi => &niobi::SPEC,
        Provider::Choice => &choice::SPEC,
        Provider::M2Money => &m2money::SPEC,
        Provider::Lipia => &lipia::SPEC,
        Provider::Muda => &muda::SPEC,
    }
}

/// How a provider wants a callback acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// `200 text/plain` `ok` (Choice, Lipia).
    PlainOk,
    /// `200 application/json` `{"status":"ok"}`.
    JsonOk,
}

impl Ack {
    /// Content type and body.
    pub fn parts(self) -> (&'static str, &'static str) {
        match self {
            Ack::PlainOk => ("text/plain", "ok"),
            Ack::JsonOk => ("application/json", r#"{"status":"ok"}"#),
        }
    }
}

/// The shape of a provider's callback URL path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/webhooks/<provider>`: the callback authenticates itself.
    Plain,
    /// `/webhooks/<provider>/{token}`: the last segment is the secret token.
    Token,
}

impl Route {
    /// The API Gateway route path, e.g. `/webhooks/lipia/{token}`.
    pub fn pattern(self, provider: Provider) -> String {
        self.path(provider, Some("{token}"))
    }

    /// The concrete path, with `token` as the last segment where the route takes one.
    pub fn path(self, provider: Provider, token: Option<&str>) -> String {
        match (self, token) {
            (Route::Token, Some(token)) => format!("/webhooks/{provider}/{token}"),
            _ => format!("/webhooks/{provider}"),
        }
    }
}

/// The provider's acknowledgement.
pub fn ack(provider: Provider) -> Ack {
    spec(provider).ack
}

/// The provider's route shape.
pub fn route(provider: Provider) -> Route {
    spec(provider).route
}

/// Options a signer needs beyond the secret.
#[cfg(feature = "test-util")]
#[derive(Debug, Clone, Copy)]
pub struct SignOptions {
    pub niobi_hash: CanonicalHash,
}

#[cfg(feature = "test-util")]
impl Default for SignOptions {
    fn default() -> Self {
        Self { niobi_hash: CanonicalHash::Sha256 }
    }
}

/// Sign `body` as `provider` would at `now`.
#[cfg(feature = "test-util")]
pub fn sign(
    provider: Provider,
    body: &str,
    secret: &Secret,
    options: &SignOptions,
    now: DateTime<Utc>,
) -> Result<SignedRequest, serde_json::Error> {
    crate::testing::sign_as(spec(provider).signer, body, secret, options, now)
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
    let Ingested { verified, body, members, events } = (spec(provider).ingest)(&ctx)?;
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

/// What a provider module returns for a genuine callback.
pub(crate) struct Ingested<'a> {
    pub verified: Verified,
    /// The body as UTF-8 text, exactly as received.
    pub body: &'a str,
    /// Its top-level members, value text untouched.
    pub members: Members<'a>,
    pub events: Vec<NormalisedEvent>,
}

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
            .map(|secret_index| Verified { scheme: Scheme::UrlToken, secret_index })
            .ok_or(Rejection::InvalidToken)
    }

    /// Choice and Niobi: the body's `signature` over the canonical string, then the send timestamp.
    pub fn verify_canonical(
        &self,
        members: &Members<'_>,
        hash: CanonicalHash,
        scheme: Scheme,
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

/// A top-level member's raw value.
pub(crate) fn member<'a>(members: &Members<'a>, name: &str) -> Option<&'a RawValue> {
    members.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
}

/// A required top-level member that is an object or array (`params`, `response`), as raw text.
pub(crate) fn required_member<'a>(members: &Members<'a>, name: &str) -> Result<&'a str, Rejection> {
    member(members, name).map(RawValue::get).ok_or_else(|| Rejection::missing(name))
}

/// A provider's status words or codes, grouped by what they mean. Lookups trim the text and ignore ASCII
/// case; anything not in the table is `unknown`, never a success.
pub(crate) struct StatusTable(pub &'static [(Status, &'static [&'static str])]);

impl StatusTable {
    pub fn get(&self, text: Option<&str>) -> Status {
        let Some(text) = text.map(str::trim) else { return Status::Unknown };
        let means = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(text));
        self.0.iter().find(|(_, words)| means(words)).map_or(Status::Unknown, |(status, _)| *status)
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
    fn status_tables_trim_and_fold_case() {
        const TABLE: StatusTable = StatusTable(&[(Status::Succeeded, &["success", "8"])]);
        for text in ["success", "SUCCESS", " Success ", "8"] {
            assert_eq!(TABLE.get(Some(text)), Status::Succeeded, "{text}");
        }
        assert_eq!(TABLE.get(Some("succes")), Status::Unknown);
        assert_eq!(TABLE.get(None), Status::Unknown);
    }

    #[test]
    fn routes_and_acks() {
        assert_eq!(route(Provider::Lipia).pattern(Provider::Lipia), "/webhooks/lipia/{token}");
        assert_eq!(route(Provider::Niobi).path(Provider::Niobi, Some("t")), "/webhooks/niobi");
        assert_eq!(ack(Provider::Choice).parts().1, "ok");
    }
}
