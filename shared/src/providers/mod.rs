//! The providers: each is one module whose [`Spec`] holds its whole behaviour (how it authenticates,
//! parses and normalises, how it acknowledges, its route, and behind `signing` its signer).
//!
//! [`authenticate_and_normalise`] is the whole synchronous half of handling a callback: method, size and
//! source checks, then the provider's own step. Nothing here does I/O. This file is the one place that
//! dispatches on [`Provider`].

mod choice;
pub(crate) mod fields;
mod lipia;
mod m2money;
mod muda;
mod niobi;

use chrono::{DateTime, Utc};
use lambda_http::http::{HeaderMap, Method};
use std::borrow::Cow;

use crate::config::{VerifyConfig, MAX_FUTURE_SKEW};
use crate::error::Rejection;
use crate::event::NormalisedEvent;
use crate::provider::Provider;
#[cfg(feature = "signing")]
use crate::signing::SignedRequest;
use crate::verify::canonical::{self, Ambiguity, CanonicalPairs, SIGNATURE_FIELD};
use crate::verify::json::{self, Document, ReadError, Value};
use crate::verify::secrets::{self, SecretSet};
use crate::verify::signing::{self, CanonicalHash};
use crate::verify::Secret;
use crate::verify::{Dialect, Scheme, Verified};
pub use fields::{Reason, Unusable};

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

/// How a provider's sender signs a callback. The signing code itself is in `signing` (feature `signing`).
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

/// What registering the callback URL with the provider takes besides the URL (`payhooks-admin urls`).
pub fn registration(provider: Provider) -> &'static str {
    spec(provider).registration
}

/// The provider's route shape.
pub fn route(provider: Provider) -> Route {
    spec(provider).route
}

/// Options a signer needs beyond the secret.
#[cfg(feature = "signing")]
#[derive(Debug, Clone, Copy)]
pub struct SignOptions {
    pub niobi_hash: CanonicalHash,
    /// How a Choice or Niobi sender writes its canonical string.
    pub dialect: crate::verify::Dialect,
}

#[cfg(feature = "signing")]
impl Default for SignOptions {
    fn default() -> Self {
        Self { niobi_hash: CanonicalHash::Sha256, dialect: crate::verify::Dialect::Postman }
    }
}

/// Sign `body` as `provider` would at `now`.
#[cfg(feature = "signing")]
pub fn sign(
    provider: Provider,
    body: &str,
    secret: &Secret,
    options: &SignOptions,
    now: DateTime<Utc>,
) -> Result<SignedRequest, ReadError> {
    crate::signing::sign_as(spec(provider).signer, body, secret, options, now)
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

/// The secrets a function verifies with, as loaded from their source (see `pipeline`: read again every `SECRETS_REFRESH_SECS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secrets {
    /// The provider's signing secrets or URL tokens: the first is current, the rest still accepted.
    pub webhook: SecretSet,
    /// MUDA only: the `X-Muda-Signature` HMAC keys; when set, every callback must carry that signature.
    pub signing_keys: Option<SecretSet>,
}

impl From<SecretSet> for Secrets {
    fn from(webhook: SecretSet) -> Self {
        Self { webhook, signing_keys: None }
    }
}

/// A genuine callback, taken apart.
#[derive(Debug)]
pub struct Callback<'a> {
    pub verified: Verified,
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

/// Fields left out of the content hash: they legitimately differ between deliveries of one event.
pub(crate) const VOLATILE_FIELDS: [&str; 3] = [SIGNATURE_FIELD, "salt", "timestamp"];

/// Check, read, authenticate and normalise one callback. Limits come first (method, size, source, then
/// the reader's depth and shape checks), before any secret is used. Once authenticated, nothing in the
/// content makes the callback a 4xx: what cannot be normalised is quarantined, and so is a body the reader
/// refuses when the provider authenticates the request without reading it (URL token, HMAC of the bytes).
pub fn authenticate_and_normalise<'a>(
    provider: Provider,
    config: &VerifyConfig,
    secrets: &Secrets,
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
    let spec = spec(provider);
    let ctx = Context { config, secrets, req, now };
    // A signature over the body as read is over its canonical string: keep each leaf's path as it is read.
    let read = match spec.authenticate {
        Authenticate::Body(_) => json::read_signed,
        Authenticate::Request(_) => json::read,
    };
    // A byte order mark before the JSON is not part of it (some senders' HTTP clients write one).
    let bytes = req.body.strip_prefix(UTF8_BOM).unwrap_or(req.body);
    let attempt = match std::str::from_utf8(bytes) {
        Ok(body) => read(body).map(|doc| (body, doc)).map_err(|e| match e {
            ReadError::TooDeep => Rejection::TooDeep,
            ReadError::TooComplex => Rejection::TooComplex,
            invalid => Rejection::InvalidJson(invalid.to_string()),
        }),
        Err(_) => Err(Rejection::InvalidJson("body is not UTF-8".into())),
    };
    let (body, doc) = match (attempt, spec.authenticate) {
        (Ok(read), _) => read,
        (Err(refused), Authenticate::Request(authenticate)) => {
            return unreadable(provider, &ctx, authenticate, refused)
        }
        (Err(refused), Authenticate::Body(_)) => return Err(refused),
    };
    let verified = match spec.authenticate {
        Authenticate::Request(authenticate) => authenticate(&ctx)?,
        Authenticate::Body(authenticate) => authenticate(&ctx, &doc)?,
    };
    take_apart(provider, body, doc, verified, read)
}

/// A stored body of a callback authenticated before (`verified`, as its first delivery was), taken apart
/// again as it was then: to complete a first delivery that a later body with its signature stands for.
pub fn stored_callback(provider: Provider, body: &str, verified: Verified) -> Result<Callback<'_>, Rejection> {
    let read = match spec(provider).authenticate {
        Authenticate::Body(_) => json::read_signed,
        Authenticate::Request(_) => json::read,
    };
    let doc = read(without_bom(body)).map_err(|e| Rejection::InvalidJson(e.to_string()))?;
    take_apart(provider, body, doc, verified, read)
}

/// The UTF-8 byte order mark.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A stored body's text without the byte order mark its sender may have written before the JSON.
fn without_bom(body: &str) -> &str {
    body.strip_prefix('\u{FEFF}').unwrap_or(body)
}

/// An authenticated callback, read as `doc`, taken apart: content hash, signature key, events and
/// quarantined items.
fn take_apart<'a>(
    provider: Provider,
    body: &'a str,
    doc: Document<'a>,
    verified: Verified,
    read: for<'t> fn(&'t str) -> Result<Document<'t>, ReadError>,
) -> Result<Callback<'a>, Rejection> {
    let spec = spec(provider);
    let doc = signed_only(doc, verified.dialect);
    let content_hash = doc.content_hash(&VOLATILE_FIELDS);
    let signature_key = verified
        .scheme
        .signs_canonical_string()
        .then(|| doc.member_text(SIGNATURE_FIELD))
        .flatten()
        .map(|sig| crate::verify::hex_digest(sig.trim().to_ascii_lowercase().as_bytes()));
    // Under a dialect that writes numbers its own way, the body is normalised from the numbers as signed, so
    // that another spelling of a signed number (`1e3` for `1000`) can never make another id or amount.
    let signed_text = verified.dialect.filter(|d| d.renders_numbers()).map(|d| canonical::with_numbers_as(&doc, d));
    let signed_doc = match &signed_text {
        Some(Some(text)) => {
            Some(signed_only(read(text).map_err(|e| Rejection::InvalidJson(e.to_string()))?, verified.dialect))
        }
        _ => None,
    };
    // Where the signed string reads as another body's in the dialect that verified it: not believed.
    let ambiguities = verified.dialect.map(|d| canonical::second_readings(&doc, d)).unwrap_or_default();
    let normalised = (spec.normalise)(signed_doc.as_ref().unwrap_or(&doc), &ambiguities);
    let single = normalised.len() == 1;
    let mut events = Vec::with_capacity(normalised.len());
    let mut quarantined = Vec::new();
    for (position, item) in normalised.into_iter().enumerate() {
        match item {
            Ok(event) => events.push(event),
            Err(Unusable { reason, field }) => {
                let content = if single {
                    content_hash.clone()
                } else {
                    crate::verify::hex_digest(format!("{content_hash}#{position}").as_bytes())
                };
                quarantined.push(Quarantined { id: format!("{provider}:quarantined:{content}"), reason, field });
            }
        }
    }
    Ok(Callback {
        verified,
        body: Cow::Borrowed(body),
        payload: doc.object_without(&[SIGNATURE_FIELD]),
        content_hash,
        signature_key,
        events,
        quarantined,
        sent_at_ms: doc.member_text("timestamp").and_then(sent_ms),
    })
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

/// The document as the dialect that verified it signed it: what that dialect left out of the signed string (a
/// `null` or `{}` member or array item under `compact` and `java`) is not read, as if absent.
fn signed_only(doc: Document<'_>, dialect: Option<Dialect>) -> Document<'_> {
    match dialect {
        Some(dialect) => doc.without_nested_leaves(|pair| !dialect.signs(pair.kind)),
        None => doc,
    }
}

/// A body the reader refused (`refused`): refused still, unless the request is authentic without it; then the
/// whole callback is one quarantined item (`unreadable_body`), its id over the bytes as sent, its payload the
/// body's text as one JSON string. Checking the credentials costs what it costs for a readable body (a hash
/// per secret).
fn unreadable<'a>(
    provider: Provider,
    ctx: &Context<'_, 'a>,
    authenticate: fn(&Context<'_, '_>) -> Result<Verified, Rejection>,
    refused: Rejection,
) -> Result<Callback<'a>, Rejection> {
    let Ok(verified) = authenticate(ctx) else { return Err(refused) };
    let bytes = ctx.req.body;
    // Over the bytes, apart from every content hash (whose input is empty or starts with a path).
    let content_hash = crate::verify::hex_digest(&[b"unreadable\n", bytes].concat());
    let body = String::from_utf8_lossy(bytes);
    let payload = Cow::Owned(payload_text(&body));
    let quarantined = Quarantined {
        id: format!("{provider}:quarantined:{content_hash}"),
        reason: Reason::UnreadableBody,
        field: refused.to_string(),
    };
    Ok(Callback {
        verified,
        body,
        payload,
        content_hash,
        signature_key: None,
        events: Vec::new(),
        quarantined: vec![quarantined],
        sent_at_ms: None,
    })
}

/// The message payload of a stored body, as its first message had it: for a callback quarantined as
/// `unreadable_body` (`unreadable`), the body's text as one JSON string; otherwise the provider's JSON
/// without `signature` (and the text again, should the body no longer read).
pub fn payload_of(body: &str, unreadable: bool) -> String {
    match json::read(without_bom(body)) {
        Ok(doc) if !unreadable => doc.object_without(&[SIGNATURE_FIELD]).into_owned(),
        _ => payload_text(body),
    }
}

/// A body's text as one JSON string.
fn payload_text(body: &str) -> String {
    serde_json::to_string(body).expect("a string always serialises")
}

/// The canonical string a body is signed over in each dialect, with the secret shown as `mask` (for
/// `payhooks-admin verify`, to compare with what a provider says it signs). `None` where a dialect cannot
/// write the body exactly.
pub fn canonical_strings(body: &str, mask: &str) -> Result<Vec<(Dialect, Option<String>)>, Rejection> {
    let doc = json::read_signed(body).map_err(|e| Rejection::InvalidJson(e.to_string()))?;
    Ok(Dialect::ALL
        .into_iter()
        .map(|d| (d, CanonicalPairs::in_dialect(&doc, d).map(|p| p.string_to_sign(mask))))
        .collect())
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

/// A required top-level section (`params`, `data`), whatever its type.
pub(crate) fn section<'d, 'a>(doc: &'d Document<'a>, name: &str) -> Result<Value<'d, 'a>, Unusable> {
    Some(doc.field(name)).filter(Value::is_present).ok_or_else(|| Unusable::new(Reason::MissingField, name))
}

/// The whole callback as one unusable entry.
pub(crate) fn unusable(why: Unusable) -> Vec<Result<NormalisedEvent, Unusable>> {
    vec![Err(why)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored body with a byte order mark rebuilds the payload its first message had (the sweeper, a
    /// conflict completing a first delivery).
    #[test]
    fn a_stored_body_with_a_byte_order_mark_rebuilds_the_same_payload() {
        assert_eq!(payload_of("\u{FEFF}{\"a\":1,\"signature\":\"x\"}", false), r#"{"a":1}"#);
    }

    #[test]
    fn routes_and_acks() {
        assert_eq!(route(Provider::Lipia).pattern(Provider::Lipia), "/webhooks/lipia/{token}");
        assert_eq!(route(Provider::Niobi).path(Provider::Niobi, Some("t")), "/webhooks/niobi");
        assert_eq!(ack(Provider::Choice).parts().1, "ok");
    }

    /// The bench's floor hashes what the check hashes: its first input is the content hash's text, and for
    /// Choice (a plain SHA-256 of the canonical string) its second is the string the signature is over.
    #[test]
    fn the_floor_hashes_what_the_check_hashes() {
        use crate::testing::{bench_request, SECRET};
        let now = Utc::now();
        let secrets: Secrets = SecretSet::parse(SECRET, "WEBHOOK_SECRETS").unwrap().into();
        for provider in Provider::ALL {
            let req = bench_request(provider, now);
            let inputs = req.hashed_inputs(provider);
            let callback = req.check_with(provider, &VerifyConfig::default(), &secrets, now).unwrap();
            assert_eq!(crate::verify::hex_digest(&inputs[0]), callback.content_hash, "{provider}");
            if provider == Provider::Choice {
                let doc = json::read(std::str::from_utf8(&req.body).unwrap()).unwrap();
                assert_eq!(Some(crate::verify::hex_digest(&inputs[1]).as_str()), doc.member_text(SIGNATURE_FIELD));
            }
        }
    }
}
