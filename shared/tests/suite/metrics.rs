//! The EMF documents real handler runs emit: names, units, dimensions and values, and nothing secret.

use chrono::Utc;
use payhooks::testing::{fixture, TestPipeline, TestRequest, OLD_SECRET, SECRET};
use payhooks::Provider::*;
use serde_json::Value;

/// The (metric name, unit) pairs of a document's directive over `dimensions`.
fn metrics_of(doc: &Value, dimensions: &[&str]) -> Vec<(String, String)> {
    doc["_aws"]["CloudWatchMetrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["Dimensions"][0] == serde_json::json!(dimensions))
        .flat_map(|d| d["Metrics"].as_array().unwrap().iter())
        .map(|m| (m["Name"].as_str().unwrap().to_owned(), m["Unit"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn an_accepted_callback_and_its_duplicate() {
    let t = TestPipeline::new(Choice);
    let now = Utc::now();
    let req = TestRequest::signed(Choice, &fixture(Choice, "0002_transaction"), OLD_SECRET, now);
    t.call(&req, false).await;
    t.call(&req, false).await;
    let docs = t.emitted();
    assert_eq!(docs.len(), 2, "one document per callback");
    let first = &docs[0];
    assert_eq!(first["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Payhooks");
    assert!(first["_aws"]["Timestamp"].as_i64().unwrap() >= now.timestamp_millis());
    assert_eq!(first["Provider"], "choice");
    assert_eq!(first["Accepted"], 1);
    assert_eq!(first["SecretIndex"], 1, "verified with the old secret: rotation is not finished");
    assert!(first["ClockSkew"].as_i64().unwrap().abs() < 60_000);
    assert!(first["IngestDuration"].as_f64().unwrap() > 0.0);
    let units = metrics_of(first, &["Provider"]);
    for (name, unit) in [
        ("Accepted", "Count"),
        ("SecretIndex", "None"),
        ("ClockSkew", "Milliseconds"),
        ("IngestDuration", "Milliseconds"),
    ] {
        assert!(units.contains(&(name.to_owned(), unit.to_owned())), "{name} {unit} in {units:?}");
    }
    assert_eq!(metrics_of(first, &["Provider", "Dialect"]), [("DialectVerified".to_owned(), "Count".to_owned())]);
    assert_eq!(first["Dialect"], "postman");
    assert_eq!(docs[1]["Duplicate"], 1);
    assert!(docs[1].get("Accepted").is_none());
}

#[tokio::test]
async fn refusals_carry_their_reason() {
    let t = TestPipeline::new(Niobi);
    let mut forged = TestRequest::signed_fixture(Niobi, "payin_ussd_push", Utc::now());
    forged.body = forged.body_text().replace("Username", "Usernamf").into_bytes();
    t.call(&forged, false).await;
    let mut no_token = TestRequest::signed_fixture(Lipia, "stk_success", Utc::now());
    no_token.path = "/webhooks/lipia/wrong".into();
    let lipia = TestPipeline::new(Lipia);
    lipia.call(&no_token, false).await;
    let doc = &t.emitted()[0];
    assert_eq!((doc["Provider"].as_str(), doc["Reason"].as_str()), (Some("niobi"), Some("invalid_signature")));
    assert_eq!(doc["Rejected"], 1);
    assert_eq!(doc["AuthFailed"], 1);
    assert_eq!(metrics_of(doc, &["Provider", "Reason"]), [("Rejected".to_owned(), "Count".to_owned())]);
    assert_eq!(lipia.emitted()[0]["Reason"], "invalid_token");
}

#[tokio::test]
async fn quarantine_regression_and_contradiction_are_counted() {
    let t = TestPipeline::new(M2Money);
    let now = Utc::now();
    let bad = fixture(M2Money, "payout_success").replace("\"1500.00\"", "\"1,500.00\"");
    for body in [bad, fixture(M2Money, "payout_success"), fixture(M2Money, "payout_failed")] {
        t.call(&TestRequest::signed(M2Money, &body, SECRET, now), false).await;
    }
    let docs = t.emitted();
    assert_eq!(docs[0]["Quarantined"], 1);
    assert_eq!(metrics_of(&docs[0], &[]), [("Quarantined".to_owned(), "Count".to_owned())], "also across providers");
    assert_eq!(docs[1]["Accepted"], 1);
    assert_eq!((docs[2]["Accepted"].as_u64(), docs[2]["Contradiction"].as_u64()), (Some(1), Some(1)));
    let niobi = TestPipeline::new(Niobi);
    for name in ["payin_ussd_push", "payin_timeout"] {
        niobi.call(&TestRequest::signed_fixture(Niobi, name, now), false).await;
    }
    assert_eq!(niobi.emitted()[1]["Regression"], 1);
}

#[tokio::test]
async fn no_document_carries_a_secret_a_signature_or_a_payload_value() {
    let t = TestPipeline::new(Choice);
    let req = TestRequest::signed_fixture(Choice, "0002_transaction", Utc::now());
    let signature = serde_json::from_str::<Value>(&req.body_text()).unwrap()["signature"].as_str().unwrap().to_owned();
    t.call(&req, false).await;
    let mut forged = req.clone();
    forged.body = forged.body_text().replace("Jane", "Jone").into_bytes();
    t.call(&forged, false).await;
    let all = t.metrics.0.lock().unwrap().join("\n");
    for secret in [SECRET, OLD_SECRET, signature.as_str(), "Jane Wanjiku", "1500.00", "TX-9000001", "254712345678"] {
        assert!(!all.contains(secret), "EMF holds {secret:?}: {all}");
    }
}
