//! Each provider's handler driven with API Gateway HTTP API (payload v2) requests: status, headers, body.

use chrono::Utc;
use lambda_http::http::Method;
use lambda_http::Body;
use payhooks::handler;
use payhooks::ports::SignatureStore as _;
use payhooks::testing::{TestPipeline, TestRequest};
use payhooks::Provider::*;
use sha2::Digest as _;

#[tokio::test]
async fn each_provider_gets_its_acknowledgement() {
    let cases = [
        (Niobi, "payin_ussd_push", "application/json", r#"{"status":"ok"}"#),
        (Choice, "0002_transaction", "text/plain", "ok"),
        (M2Money, "payout_success", "application/json", r#"{"status":"ok"}"#),
        (Lipia, "stk_success", "text/plain", "ok"),
        (Muda, "transaction_event_success", "application/json", r#"{"status":"ok"}"#),
    ];
    for (provider, fixture, content_type, body) in cases {
        let req = TestRequest::signed_fixture(provider, fixture, Utc::now());
        assert_eq!(
            TestPipeline::new(provider).call(&req, false).await,
            (200, content_type.to_owned(), body.to_owned()),
            "{provider:?}"
        );
    }
}

#[tokio::test]
async fn answers_reach_lambda_http_as_its_own_conversion_would_make_them() {
    use lambda_http::IntoResponse;
    let forged = payhooks::error::IngestError::Rejected(payhooks::error::Rejection::InvalidSignature);
    let mut answers: Vec<_> = [Niobi, Choice, M2Money, Lipia, Muda]
        .into_iter()
        .map(|p| handler::acknowledgement(payhooks::providers::ack(p)))
        .collect();
    answers.push(handler::error_response(&forged));
    for answer in answers {
        let ours = handler::Answer(answer.clone()).into_response().await;
        let theirs = answer.into_response().await;
        assert_eq!((ours.status(), ours.headers()), (theirs.status(), theirs.headers()));
        assert_eq!(ours.body(), theirs.body());
        assert!(matches!(ours.body(), Body::Text(_)), "{:?}", ours.body());
    }
}

#[tokio::test]
async fn base64_bodies_are_decoded() {
    let req = TestRequest::signed_fixture(M2Money, "payout_failed", Utc::now());
    assert_eq!(TestPipeline::new(M2Money).call(&req, true).await.0, 200);
}

#[tokio::test]
async fn errors_answer_with_their_status_and_a_json_body() {
    let mut forged = TestRequest::signed_fixture(Choice, "0002_transaction", Utc::now());
    forged.body = forged.body_text().replace("1500.00", "9500.00").into_bytes();
    let (status, content_type, body) = TestPipeline::new(Choice).call(&forged, false).await;
    assert_eq!((status, content_type.as_str()), (401, "application/json"));
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"], "invalid_signature");

    let mut get = TestRequest::signed_fixture(Niobi, "payout_success", Utc::now());
    get.method = Method::GET;
    assert_eq!(TestPipeline::new(Niobi).call(&get, false).await.0, 405);

    let mut wrong_token = TestRequest::signed_fixture(Lipia, "stk_failed", Utc::now());
    wrong_token.path = "/webhooks/lipia/not-the-token".into();
    let (status, _, body) = TestPipeline::new(Lipia).call(&wrong_token, false).await;
    assert_eq!(status, 401);
    assert!(body.contains("invalid_token"));

    // Without the token (with it, the body is genuine and quarantined: `hostile.rs`).
    let mut malformed = TestRequest::signed_fixture(Muda, "transaction_status_failed", Utc::now());
    malformed.body = br#"{"status":"FAILED""#.to_vec();
    malformed.path = "/webhooks/muda/not-the-token".into();
    let (status, _, body) = TestPipeline::new(Muda).call(&malformed, false).await;
    assert_eq!(status, 400);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"], "invalid_json");

    let mut deep = TestRequest::signed_fixture(Choice, "0002_transaction", Utc::now());
    deep.body = format!(r#"{{"signature":"00","params":{}{}}}"#, "[".repeat(20_000), "]".repeat(20_000)).into_bytes();
    let (status, _, body) = TestPipeline::new(Choice).call(&deep, false).await;
    assert_eq!(status, 400);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"], "too_deep");
}

#[tokio::test]
async fn authenticated_content_that_cannot_be_normalised_is_acknowledged() {
    let mut missing_id = TestRequest::signed_fixture(Muda, "transaction_status_failed", Utc::now());
    missing_id.body = br#"{"status":"FAILED","amount":"1"}"#.to_vec();
    let t = TestPipeline::new(Muda);
    let (status, _, body) = t.call(&missing_id, false).await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let messages = t.publisher.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].event_type, "muda.quarantined");
}

#[tokio::test]
async fn odd_content_type_is_not_refused() {
    let mut req = TestRequest::signed_fixture(Lipia, "stk_success", Utc::now());
    req.headers.insert("content-type", "application/x-www-form-urlencoded".parse().unwrap());
    assert_eq!(TestPipeline::new(Lipia).call(&req, false).await.0, 200);
}

#[tokio::test]
async fn queue_outage_is_503_json() {
    let t = TestPipeline::new(Niobi);
    t.publisher.set_unavailable(true);
    let req = TestRequest::signed_fixture(Niobi, "payout_success", Utc::now());
    let resp = handler::handle(&t.pipeline, req.apigw(false)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let Body::Text(body) = resp.body() else { panic!() };
    assert_eq!(serde_json::from_str::<serde_json::Value>(body).unwrap()["error"], "queue_unavailable");
}

/// Genuine but odd is never refused: a UTF-8 byte order mark before a correctly signed body is read as if
/// absent, for every provider.
#[tokio::test]
async fn a_byte_order_mark_before_a_genuine_body_is_read_as_absent() {
    for provider in payhooks::Provider::ALL {
        let req = TestRequest::signed_fixture(provider, payhooks::testing::typical(provider), Utc::now());
        // M2Money signs the bytes: its sender would have signed the mark too.
        let with_bom = [b"\xEF\xBB\xBF".as_slice(), &req.body].concat();
        let req = if provider == M2Money {
            let body = String::from_utf8(with_bom).unwrap();
            TestRequest::from_signed(
                provider,
                &payhooks::testing::sign(provider, &body, payhooks::testing::SECRET, Utc::now()),
            )
        } else {
            TestRequest { body: with_bom, ..req }
        };
        let t = TestPipeline::new(provider);
        assert_eq!(t.call(&req, false).await.0, 200, "{provider:?}");
        assert!(!t.emitted().is_empty());
        let events = t.publisher.messages();
        assert_eq!(events.len(), 1, "{provider:?}");
        assert!(!events[0].event_type.ends_with(".quarantined"), "{provider:?}: {}", events[0].event_type);
    }
}

/// For how many more seconds the signature record of `req` (Choice, Niobi) is kept.
async fn kept_for(req: &TestRequest, t: &TestPipeline) -> i64 {
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    let signature = body["signature"].as_str().unwrap().to_ascii_lowercase();
    let key = format!("sig#{}#{}", t.pipeline.provider, hex::encode(sha2::Sha256::digest(signature.as_bytes())));
    let claim = t.store.signature(&key).await.unwrap().expect("a signature record");
    claim.expires_at - Utc::now().timestamp()
}

/// A signed timestamp that is empty (Choice's own 0020 template) cannot be judged: the callback is accepted,
/// its replay protection resting on the one-time signature and the markers; a fractional one is judged by its
/// whole part.
#[tokio::test]
async fn an_empty_or_fractional_signed_timestamp_is_not_refused() {
    use payhooks::testing::{fixture, sign_as_sent, SECRET};
    let now = Utc::now();
    let otp =
        fixture(Choice, "0020_otp_verification").replace("\"timestamp\": \"1763800000000\"", "\"timestamp\": \"\"");
    assert!(otp.contains("\"timestamp\": \"\""));
    let req = TestRequest::from_signed(Choice, &sign_as_sent(&otp, SECRET));
    let t = TestPipeline::new(Choice);
    assert_eq!(t.call(&req, false).await.0, 200, "an empty timestamp");
    assert_eq!(t.call(&req, false).await.0, 200, "a replay is a duplicate");
    assert_eq!(t.publisher.messages().len(), 1);
    // Its replay protection is the signature record, kept as long as the event markers (not the bodies).
    let retention = payhooks::config::Retention::default();
    assert!(kept_for(&req, &t).await > retention.body.as_secs() as i64 + 86_400, "kept as long as the markers");

    let mut niobi: serde_json::Value = serde_json::from_str(&fixture(Niobi, "payin_ussd_push")).unwrap();
    for (sent, want) in [(now.timestamp() as f64 + 0.25, 200), ((now.timestamp() - 8 * 86_400) as f64 + 0.5, 401)] {
        niobi["timestamp"] = serde_json::json!(sent);
        let req = TestRequest::from_signed(Niobi, &sign_as_sent(&niobi.to_string(), SECRET));
        let t = TestPipeline::new(Niobi);
        assert_eq!(t.call(&req, false).await.0, want, "timestamp {sent}");
        if want == 200 {
            assert!(
                kept_for(&req, &t).await <= retention.body.as_secs() as i64,
                "a judged timestamp: kept as the bodies"
            );
        }
    }
}
