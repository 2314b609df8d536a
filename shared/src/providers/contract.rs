//! The seam between the pipeline and a provider's module: what a provider is ([`Spec`]), what it is given
//! ([`Context`], [`Incoming`], [`VerifyConfig`]) and what it gives back ([`Callback`]), and the checks the
//! providers share (the canonical-string signature, send timestamps, URL tokens).

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use lambda_http::http::{HeaderMap, Method};

use super::fields::{Reason, Unusable};
use crate::error::Rejection;
use crate::event::NormalisedEvent;
use crate::provider::Provider;
use crate::verify::canonical::{Ambiguity, CanonicalPairs, SIGNATURE_FIELD};
use crate::verify::json::{Document, Value};
use crate::verify::secrets::{self, Secrets};
use crate::verify::signing::{self, CanonicalHash};
use crate::verify::Secret;
use crate::verify::{Dialect, Scheme, Verified};

pub const DEFAULT_MAX_BODY_BYTES: usize = 131_072;
pub const DEFAULT_MAX_EVENT_AGE_SECS: u64 = 604_800;
/// How far in the future a send timestamp may be (clock skew).
pub const MAX_FUTURE_SKEW: Duration = Duration::from_secs(300);

/// One provider's whole behaviour.
pub(crate) struct Spec {
    /// What the provider needs besides the callback URL, for the operator registering it.
    pub registration: &'static str,
    pub ack: Ack,
    pub route: Route,
    /// How the provider's sender signs (what the tests and `payhooks-send` imitate).
    #[cfg_attr(not(feature = "signing"), allow(dead_code))]
    pub signer: Signer,
    /// How a callback is authenticated (after the common checks).
    pub authenticate: Authenticate,
    /// The settings of its own it reads from the environment.
    pub settings: &'static [Setting],
    /// The fixture most tests and the benchmark send (`fixtures/<provider>/<name>.json`), and the id text in
    /// it that the load test replaces to make each copy a new callback.
    #[cfg_attr(not(feature = "signing"), allow(dead_code))]
    pub typical: (&'static str, &'static str),
    /// Normalise an authenticated callback, given where its signed string reads another way: one entry per
    /// event (a batch has several), each an event or the reason it cannot be one.
    pub normalise: fn(&Document<'_>, &[Ambiguity]) -> Normalised,
}

/// What normalising a callback gives: per event, the event or why it cannot be one.
pub(crate) type Normalised = Vec<Result<NormalisedEvent, Unusable>>;

/// How a provider authenticates a callback: from the request alone, or from its body as read.
#[derive(Clone, Copy)]
pub(crate) enum Authenticate {
    /// From the request as received (a URL token, an HMAC over the raw bytes). The body need not be
    /// readable: an authentic body that the reader refuses is quarantined whole, never refused.
    Request(fn(&Context<'_, '_>) -> Result<Verified, Rejection>),
    /// From the body as read (a signature over its canonical string): a body that cannot be read cannot be
    /// authenticated, and is refused.
    Body(fn(&Context<'_, '_>, &Document<'_>) -> Result<Verified, Rejection>),
}

/// How a provider's sender signs a callback. The signing code itself is in [`super::signing`] (feature `signing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "signing"), allow(dead_code))]
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

/// A setting of its own that a provider reads from the environment, beside the common ones: its variable,
/// and the SAM template parameter that sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// The hash of the canonical string, `sha256` or `hmac-sha256`.
    CanonicalHash { variable: &'static str, parameter: &'static str },
    /// `CANONICAL_DIALECTS`: the canonical-string dialects to try.
    CanonicalDialects,
    /// Keys of a second signature over the body: inline in `variable` (local runs), or in the SSM parameter
    /// that `<variable>_PARAM` names (deployed).
    SigningKeys { variable: &'static str, parameter: &'static str },
}

impl Setting {
    /// The variable a deployed function is given.
    pub fn deployed_variable(self) -> String {
        match self {
            Setting::CanonicalHash { variable, .. } => variable.to_owned(),
            Setting::CanonicalDialects => "CANONICAL_DIALECTS".to_owned(),
            Setting::SigningKeys { variable, .. } => format!("{variable}_PARAM"),
        }
    }

    /// The template parameter that sets it.
    pub fn template_parameter(self) -> &'static str {
        match self {
            Setting::CanonicalHash { parameter, .. } | Setting::SigningKeys { parameter, .. } => parameter,
            Setting::CanonicalDialects => "CanonicalDialects",
        }
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

/// What verification needs: limits, allow-lists, scheme options.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    pub max_body_bytes: usize,
    pub max_event_age: Duration,
    pub allowed_source_ips: Option<Vec<IpNet>>,
    /// The hash of the canonical string, for a provider with a [`Setting::CanonicalHash`] (the others sign
    /// with SHA-256).
    pub canonical_hash: CanonicalHash,
    /// A provider that signs the canonical string: the dialects to try, in order (`CANONICAL_DIALECTS`).
    pub dialects: Vec<Dialect>,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_event_age: Duration::from_secs(DEFAULT_MAX_EVENT_AGE_SECS),
            allowed_source_ips: None,
            canonical_hash: CanonicalHash::Sha256,
            dialects: Dialect::ALL.to_vec(),
        }
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

/// A genuine callback, taken apart.
#[derive(Debug)]
pub struct Callback<'a> {
    pub verified: Verified,
    /// How the provider wants it acknowledged once every event is recorded and enqueued.
    pub ack: Ack,
    /// The body as UTF-8 text, exactly as received (an authentic body that is not UTF-8 is quarantined with
    /// U+FFFD in place of what cannot be read).
    pub body: Cow<'a, str>,
    /// The provider's JSON minus `signature`, members' text untouched (the body itself when it has none).
    pub payload: Cow<'a, str>,
    /// SHA-256 (hex) of the body's content without what changes between deliveries (signature, salt,
    /// timestamp), in an encoding where different content never collides.
    pub content_hash: String,
    /// Choice and Niobi: SHA-256 (hex) of the body's signature, the key of its one-time record.
    pub signature_key: Option<String>,
    /// The events, in order.
    pub events: Vec<NormalisedEvent>,
    /// What could not be normalised: recorded and enqueued as `<provider>.quarantined`, acknowledged.
    pub quarantined: Vec<Quarantined>,
    /// The provider's own send time (the body's `timestamp`, seconds or milliseconds), where it has one:
    /// what orders non-payment notifications.
    pub sent_at_ms: Option<i64>,
}

/// An authenticated callback (or batch item) that is kept aside, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// `<provider>:quarantined:<sha256 hex of the content>` (of the content and the item's position, in a batch).
    pub id: String,
    pub reason: Reason,
    pub field: String,
}

/// What a provider module's `authenticate` receives.
pub(crate) struct Context<'c, 'a> {
    pub config: &'c VerifyConfig,
    pub secrets: &'c Secrets,
    pub req: &'c Incoming<'a>,
    pub now: DateTime<Utc>,
}

impl<'a> Context<'_, 'a> {
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
            .webhook
            .find(|s| s.matches_token(token))
            .map(|secret_index| Verified { scheme: Scheme::UrlToken, secret_index, dialect: None })
            .ok_or(Rejection::InvalidToken)
    }

    /// Choice and Niobi: the body's `signature` over the canonical string, then the send timestamp. The
    /// configured dialects are tried in order, each with every secret; the first that matches is recorded.
    /// A forged body costs at most (dialects × secrets) hashes.
    pub fn verify_canonical(
        &self,
        doc: &Document<'_>,
        hash: CanonicalHash,
        scheme: Scheme,
    ) -> Result<Verified, Rejection> {
        let provided = doc
            .member_text(SIGNATURE_FIELD)
            .filter(|s| !s.trim().is_empty())
            .ok_or(Rejection::MissingSignature("body field `signature`"))?;
        let mut tried: Vec<CanonicalPairs> = Vec::with_capacity(self.config.dialects.len());
        let mut tried_postman_form = false;
        let (dialect, secret_index) = self
            .config
            .dialects
            .iter()
            .find_map(|&dialect| {
                // A dialect that writes this body as one already tried did cannot match either.
                let as_postman = dialect == Dialect::Postman || !dialect.differs_from_postman(doc);
                if as_postman && tried_postman_form {
                    return None;
                }
                tried_postman_form |= as_postman;
                let pairs = CanonicalPairs::in_dialect(doc, dialect)?;
                if tried.contains(&pairs) {
                    return None;
                }
                let matches = |s: &Secret| secrets::hex_matches(&signing::canonical_digest(&pairs, s, hash), provided);
                let found = self.secrets.webhook.find(matches).map(|index| (dialect, index));
                tried.push(pairs);
                found
            })
            .ok_or(Rejection::InvalidSignature)?;
        // A signed timestamp that is a number is judged; one that is empty or not a number (Choice's own 0020
        // template sends `""`) cannot be, and the callback's replay protection rests on its one-time signature
        // record (kept as long as the event markers then) and the markers.
        if let Some(sent) = doc.member_text("timestamp").and_then(sent_ms) {
            self.check_sent_ms(sent)?;
        }
        Ok(Verified { scheme, secret_index, dialect: Some(dialect) })
    }

    /// Refuse a send timestamp (MUDA's header) that is not a positive number of seconds or milliseconds, older
    /// than `MAX_EVENT_AGE_SECS` or more than 300 s ahead.
    pub fn check_timestamp(&self, text: &str) -> Result<(), Rejection> {
        self.check_sent_ms(sent_ms(text).ok_or(Rejection::InvalidTimestamp)?)
    }

    /// Refuse a send time older than `MAX_EVENT_AGE_SECS` or more than 300 s ahead.
    fn check_sent_ms(&self, sent_ms: i64) -> Result<(), Rejection> {
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

/// A required top-level section (`params`, `data`), whatever its type.
pub(crate) fn section<'d, 'a>(doc: &'d Document<'a>, name: &str) -> Result<Value<'d, 'a>, Unusable> {
    Some(doc.field(name)).filter(Value::is_present).ok_or_else(|| Unusable::new(Reason::MissingField, name))
}

/// The whole callback as one unusable entry.
pub(crate) fn unusable(why: Unusable) -> Vec<Result<NormalisedEvent, Unusable>> {
    vec![Err(why)]
}

/// A send timestamp's time in milliseconds, where it is a positive number: seconds or milliseconds by its
/// magnitude (a value above 10^11 is milliseconds: in seconds it would be the year 5138), a fraction by its
/// whole part. `None` for anything else (empty, zero, text), which cannot be judged.
pub(crate) fn sent_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    let value: i64 = whole.parse().ok().filter(|v| *v > 0)?;
    Some(if value > 100_000_000_000 { value } else { value.saturating_mul(1000) })
}
