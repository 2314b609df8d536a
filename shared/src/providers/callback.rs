//! The synchronous half of handling a callback: method, size and source checks, reading the body, the
//! provider's own authentication and normalisation, and taking the result apart into events and
//! quarantined items. Nothing here does I/O.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use lambda_http::http::Method;

use super::contract::{sent_ms, Authenticate, Callback, Context, Incoming, Quarantined, VerifyConfig};
use super::fields::{Reason, Unusable};
use super::spec;
use crate::error::Rejection;
use crate::provider::Provider;
use crate::verify::canonical::{self, CanonicalPairs, SIGNATURE_FIELD};
use crate::verify::json::{self, Document, ReadError};
use crate::verify::secrets::Secrets;
use crate::verify::{Dialect, Verified};

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
        ack: spec.ack,
        body: Cow::Borrowed(body),
        payload: doc.object_without(&[SIGNATURE_FIELD]),
        content_hash,
        signature_key,
        events,
        quarantined,
        sent_at_ms: doc.member_text("timestamp").and_then(sent_ms),
    })
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
        ack: spec(provider).ack,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored body with a byte order mark rebuilds the payload its first message had (the sweeper, a
    /// conflict completing a first delivery).
    #[test]
    fn a_stored_body_with_a_byte_order_mark_rebuilds_the_same_payload() {
        assert_eq!(payload_of("\u{FEFF}{\"a\":1,\"signature\":\"x\"}", false), r#"{"a":1}"#);
    }

    /// The bench's floor hashes what the check hashes: its first input is the content hash's text, and for
    /// Choice (a plain SHA-256 of the canonical string) its second is the string the signature is over.
    #[test]
    fn the_floor_hashes_what_the_check_hashes() {
        use crate::testing::{bench_request, SECRET};
        let now = Utc::now();
        let secrets: Secrets = crate::verify::SecretSet::parse(SECRET, "WEBHOOK_SECRETS").unwrap().into();
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
