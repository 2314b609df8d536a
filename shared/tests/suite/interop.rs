//! Callbacks signed by code that third parties wrote for these providers (`tests/interop/vectors.json`, vendored with its provenance):
//! each must get the answer it expects through the provider's whole authenticate-and-normalise step, with
//! "now" set to the vector's own send time. Skipped, with a message, on a clone without `../shared`.

use chrono::{DateTime, TimeZone, Utc};
use lambda_http::http::{HeaderName, HeaderValue, Method};
use payhooks::config::VerifyConfig;
use payhooks::pipeline::Outcome;
use payhooks::signing::SignOptions;
use payhooks::testing::{fixture, sign_with, TestPipeline, TestRequest, SECRET};
use payhooks::verify::{Dialect, SecretSet};
use payhooks::Provider::{self, Choice};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Vector {
    provider: String,
    signer: String,
    case: String,
    secret: String,
    body: String,
    headers: std::collections::BTreeMap<String, String>,
    expect: u16,
}

/// The vendored vectors (`tests/interop/`, with their provenance): missing is a failure, never a skip.
fn vectors() -> Vec<Vector> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/interop/vectors.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e} (the vendored interop vectors)"));
    serde_json::from_str(&text).expect("vectors.json parses")
}

/// The vector's send time: Choice sends milliseconds, Niobi seconds; M2Money signs none.
fn sent_at(body: &str) -> DateTime<Utc> {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    match v.get("timestamp").and_then(|t| t.as_i64().or_else(|| t.as_str()?.parse().ok())) {
        Some(ms) if ms > 100_000_000_000 => Utc.timestamp_millis_opt(ms).unwrap(),
        Some(s) => Utc.timestamp_opt(s, 0).unwrap(),
        None => Utc::now(),
    }
}

#[test]
fn every_third_party_vector_gets_its_expected_answer() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 123, "every vector of tests/interop/vectors.json");
    assert_eq!(vectors.len(), 123);
    let config = VerifyConfig::default();
    let mut failures = Vec::new();
    let mut dialects = std::collections::BTreeMap::<String, usize>::new();
    for v in &vectors {
        let provider: Provider = v.provider.parse().unwrap();
        let mut req = TestRequest {
            method: Method::POST,
            path: format!("/webhooks/{provider}"),
            headers: Default::default(),
            body: v.body.clone().into_bytes(),
            source_ip: None,
        };
        for (name, value) in &v.headers {
            let name = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).unwrap();
            req.headers.insert(name, HeaderValue::from_str(value).unwrap());
        }
        let secrets = SecretSet::parse(&v.secret, "WEBHOOK_SECRETS").unwrap().into();
        let answer = match req.check_with(provider, &config, &secrets, sent_at(&v.body)) {
            Ok(callback) => {
                assert!(
                    callback.quarantined.is_empty(),
                    "{} {} {}: quarantined {:?}",
                    v.provider,
                    v.signer,
                    v.case,
                    callback.quarantined
                );
                let dialect = callback.verified.dialect.map_or("-", |d| d.as_str());
                *dialects.entry(format!("{} {} {dialect}", v.provider, v.signer)).or_default() += 1;
                200
            }
            Err(rejection) => rejection.status().as_u16(),
        };
        if answer != v.expect {
            failures.push(format!("{} {} {}: answered {answer}, expected {}", v.provider, v.signer, v.case, v.expect));
        }
    }
    eprintln!("dialects that verified: {dialects:#?}");
    assert!(
        failures.is_empty(),
        "{} of {} vectors answered wrongly:\n{}",
        failures.len(),
        vectors.len(),
        failures.join("\n")
    );
}

fn signed_in(provider: Provider, body: &str, dialect: Dialect, now: DateTime<Utc>) -> TestRequest {
    let options = SignOptions { dialect, ..Default::default() };
    TestRequest::from_signed(provider, &sign_with(provider, body, SECRET, &options, now))
}

/// Every dialect verifies what its own signer signs, and the dialect is recorded.
#[tokio::test]
async fn each_dialect_verifies_and_is_recorded() {
    let now = Utc::now();
    let body = fixture(Choice, "0002_transaction").replace("\"1500.00\"", "1500.50");
    for dialect in Dialect::ALL {
        let req = signed_in(Provider::Choice, &body, dialect, now);
        let t = TestPipeline::new(Provider::Choice);
        let done = t.pipeline.process(&req.incoming(), now, std::time::Duration::from_secs(10)).await.unwrap();
        assert_eq!(done.outcome, Outcome::Accepted, "{dialect:?}");
        let verified = done.verified.dialect.unwrap();
        // Postman and Compact write this body alike, as do Jackson and Java's numbers: the first in order wins.
        assert!(
            verified == dialect
                || Dialect::ALL.iter().position(|d| *d == verified) < Dialect::ALL.iter().position(|d| *d == dialect),
            "{dialect:?} verified as {verified:?}"
        );
        assert_eq!(t.store.record(&done.event_ids[0]).unwrap().dialect, Some(verified));
    }
}

/// A dialect changes how the same leaves are written, never which are signed: a field added to a signed body
/// is refused in every dialect (even one that leaves nulls out refuses a field with a value).
#[test]
fn a_field_outside_what_was_signed_stays_refused_in_every_dialect() {
    let now = Utc::now();
    for dialect in Dialect::ALL {
        let req = signed_in(Provider::Choice, &fixture(Choice, "0002_transaction"), dialect, now);
        let mut v: serde_json::Value = serde_json::from_str(&req.body_text()).unwrap();
        v["version"] = "2.0".into();
        let extra = TestRequest { body: v.to_string().into_bytes(), ..req.clone() };
        let err = extra.check(Provider::Choice, &VerifyConfig::default(), now).unwrap_err();
        assert_eq!(err.code(), "invalid_signature", "{dialect:?}");
    }
}

/// Under a dialect that writes numbers its own way, another spelling of a signed number verifies too, so
/// events are built from the numbers as signed: a respelled number can never make another id or amount.
#[test]
fn a_respelled_number_makes_no_other_event() {
    let now = Utc::now();
    let body = fixture(Choice, "0002_transaction")
        .replace("\"BAAS000220251122000001\"", "1000")
        .replace("\"1500.00\"", "1500.50");
    let genuine = signed_in(Provider::Choice, &body, Dialect::JavaScript, now);
    let respelled_body = genuine.body_text().replace(": 1000,", ": 1e3,").replace("1500.50", "1500.5000");
    assert_ne!(respelled_body, genuine.body_text());
    let respelled = TestRequest { body: respelled_body.into_bytes(), ..genuine.clone() };
    let config = VerifyConfig::default();
    let a = genuine.check(Provider::Choice, &config, now).unwrap();
    let b = respelled.check(Provider::Choice, &config, now).expect("the respelling keeps the JavaScript signature");
    assert_eq!(a.events[0].id, "choice:0002:1000");
    assert_eq!(b.events[0].id, a.events[0].id);
    assert_eq!((a.events[0].amount.as_deref(), b.events[0].amount.as_deref()), (Some("1500.5"), Some("1500.5")));
}

/// A number the dialect cannot write exactly (beyond a double's precision) is never verified by it: two
/// different amounts would share one signature.
#[test]
fn a_number_a_dialect_cannot_write_exactly_is_not_verified_by_it() {
    let now = Utc::now();
    let body = fixture(Choice, "0002_transaction").replace("\"1500.00\"", "12345678901234567891");
    let config = VerifyConfig::default();
    for dialect in [Dialect::JavaScript, Dialect::Jackson] {
        // The sender's own library writes the number rounded; payhooks refuses rather than guess.
        let rounded = body.replace("12345678901234567891", "12345678901234567000");
        let signed = signed_in(Provider::Choice, &rounded, dialect, now);
        let with_exact = signed.body_text().replace("12345678901234567000", "12345678901234567891");
        let req = TestRequest { body: with_exact.into_bytes(), ..signed.clone() };
        assert_eq!(req.check(Provider::Choice, &config, now).unwrap_err().code(), "invalid_signature", "{dialect:?}");
    }
}

/// Pinning a dialect (`CANONICAL_DIALECTS`) refuses the others.
#[test]
fn a_pinned_dialect_refuses_the_others() {
    let now = Utc::now();
    let body = fixture(Choice, "0002_transaction").replace("\"1500.00\"", "1500.50");
    let java = signed_in(Provider::Choice, &body, Dialect::Java, now);
    let pinned = VerifyConfig { dialects: vec![Dialect::Postman], ..Default::default() };
    assert_eq!(java.check(Provider::Choice, &pinned, now).unwrap_err().code(), "invalid_signature");
    assert!(java.check(Provider::Choice, &VerifyConfig::default(), now).is_ok());
}

/// A dialect that writes a body exactly as one already tried is skipped, but never one whose twin was not
/// tried: pinned to `java,javascript`, a body JavaScript writes as Postman would still verifies.
#[test]
fn a_dialect_is_skipped_only_after_its_twin_was_tried() {
    let now = Utc::now();
    // `amount` and `amount2`: key order and string order differ, so Java writes this body its own way.
    let body = fixture(Choice, "0002_transaction")
        .replace("\"amount\": \"1500.00\",", "\"amount\": \"1500.00\", \"amount2\": \"5\",");
    let postman = signed_in(Provider::Choice, &body, Dialect::Postman, now);
    let pinned = VerifyConfig { dialects: vec![Dialect::Java, Dialect::JavaScript], ..Default::default() };
    let callback = postman.check(Provider::Choice, &pinned, now).expect("JavaScript writes this body as Postman does");
    assert_eq!(callback.verified.dialect, Some(Dialect::JavaScript));
}
