//! Each provider's handler driven with API Gateway HTTP API (payload v2) requests: status, headers, body.

mod common;

use chrono::Utc;
use common::{apigw_request, pipeline, TestRequest};
use lambda_http::http::Method;
use lambda_http::Body;
use payhooks::handler;
use payhooks::Provider::{self, *};

async fn call(provider: Provider, req: &TestRequest, base64: bool) -> (u16, String, String) {
    let t = pipeline(provider);
    let resp = handler::handle(&t.pipeline, apigw_request(req, base64)).await.unwrap();
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    let body = match resp.body() {
        Body::Text(s) => s.clone(),
        other => panic!("unexpected body {other:?}"),
    };
    (resp.status().as_u16(), content_type, body)
}

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
        assert_eq!(call(provider, &req, false).await, (200, content_type.to_owned(), body.to_owned()), "{provider:?}");
    }
}

#[tokio::test]
async fn base64_bodies_are_decoded() {
    let req = TestRequest::signed_fixture(M2Money, "payout_failed", Utc::now());
    assert_eq!(call(M2Money, &req, true).await.0, 200);
}

#[tokio::test]
async fn errors_answer_with_their_status_and_a_json_body() {
    let mut forged = TestRequest::signed_fixture(Choice, "0002_transaction", Utc::now());
    forged.body = forged.body_text().replace("1500.00", "9500.00").into_bytes();
    let (status, content_type, body) = call(Choice, &forged, false).await;
    assert_eq!((status, content_type.as_str()), (401, "application/json"));
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"], "invalid_signature");

    let mut get = TestRequest::signed_fixture(Niobi, "payout_success", Utc::now());
    get.method = Method::GET;
    assert_eq!(call(Niobi, &get, false).await.0, 405);

    let mut wrong_token = TestRequest::signed_fixture(Lipia, "stk_failed", Utc::now());
    wrong_token.path = "/webhooks/lipia/not-the-token".into();
    let (status, _, body) = call(Lipia, &wrong_token, false).await;
    assert_eq!(status, 401);
    assert!(body.contains("invalid_token"));

    let mut malformed = TestRequest::signed_fixture(Muda, "transaction_status_failed", Utc::now());
    malformed.body = br#"{"status":"FAILED"}"#.to_vec();
    let (status, _, body) = call(Muda, &malformed, false).await;
    assert_eq!(status, 400);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"], "missing_field");
    assert_eq!(json["message"], "required field `transaction_id` is missing");
}

#[tokio::test]
async fn odd_content_type_is_not_refused() {
    let mut req = TestRequest::signed_fixture(Lipia, "stk_success", Utc::now());
    req.headers.insert("content-type", "application/x-www-form-urlencoded".parse().unwrap());
    assert_eq!(call(Lipia, &req, false).await.0, 200);
}

#[tokio::test]
async fn queue_outage_is_503_json() {
    let t = pipeline(Niobi);
    t.publisher.set_unavailable(true);
    let req = TestRequest::signed_fixture(Niobi, "payout_success", Utc::now());
    let resp = handler::handle(&t.pipeline, apigw_request(&req, false)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let Body::Text(body) = resp.body() else { panic!() };
    assert_eq!(serde_json::from_str::<serde_json::Value>(body).unwrap()["error"], "queue_unavailable");
}

/// Collects everything the handler logs, for the duration of one test.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn one_log_line_per_callback_without_secrets_tokens_or_signatures() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let now = Utc::now();
    let choice = TestRequest::signed_fixture(Choice, "0002_transaction", now);
    let signature = serde_json::from_str::<serde_json::Value>(&choice.body_text()).unwrap()["signature"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut forged = choice.clone();
    forged.body = forged.body_text().replace("1500.00", "1.00").into_bytes();
    let lipia = TestRequest::signed_fixture(Lipia, "stk_success", now);
    let mut wrong_token = lipia.clone();
    wrong_token.path = "/webhooks/lipia/guessed-token".into();

    call(Choice, &choice, false).await;
    call(Choice, &forged, false).await;
    call(Lipia, &lipia, false).await;
    call(Lipia, &wrong_token, false).await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains("callback")).collect();
    assert_eq!(lines.len(), 4, "{logs}");
    assert!(
        lines[0].contains("outcome=\"accepted\"")
            && lines[0].contains("choice:0002:")
            && lines[0].contains("secret_index=0")
    );
    assert!(lines[1].contains("rejected:invalid_signature"));
    assert!(lines[3].contains("rejected:invalid_token"));
    for secret in [common::SECRET, common::OLD_SECRET, signature.as_str(), "guessed-token"] {
        assert!(!logs.contains(secret), "logs contain {secret}: {logs}");
    }
}
