//! Callbacks signed by code that third parties wrote for these providers (`../shared/interop/vectors.json`):
//! each must get the answer it expects through the provider's whole authenticate-and-normalise step, with
//! "now" set to the vector's own send time. Skipped, with a message, on a clone without `../shared`.

use chrono::{DateTime, TimeZone, Utc};
use lambda_http::http::{HeaderName, HeaderValue, Method};
use payhooks::config::VerifyConfig;
use payhooks::testing::TestRequest;
use payhooks::verify::SecretSet;
use payhooks::Provider;
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

fn vectors() -> Option<Vec<Vector>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/interop/vectors.json");
    match std::fs::read_to_string(path) {
        Ok(text) => Some(serde_json::from_str(&text).expect("vectors.json parses")),
        Err(_) => {
            eprintln!("SKIPPED: {path} is not here (a clone without ../shared); CI has it");
            None
        }
    }
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
    let Some(vectors) = vectors() else { return };
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
                assert!(callback.quarantined.is_empty(), "{} {} {}: quarantined", v.provider, v.signer, v.case);
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
