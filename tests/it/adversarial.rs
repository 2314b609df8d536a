//! Hostile input end to end: through the Lambda handler, DynamoDB and SQS on moto. Whatever the caller
//! sends, the answer is 2xx or 4xx; never a 5xx that every retry would meet again.

use chrono::Utc;
use payhooks::testing::{fixture, TestRequest, SECRET};
use payhooks::Provider::*;

use crate::support::Stack;

async fn status(stack: &Stack, provider: payhooks::Provider, req: &TestRequest) -> u16 {
    let resp = payhooks::handler::handle(&stack.pipeline(provider), req.apigw(false)).await.unwrap();
    resp.status().as_u16()
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn input_never_causes_a_permanent_503() {
    let stack = Stack::new(true).await;
    let now = Utc::now();
    let lipia = fixture(Lipia, "stk_success");
    let escaped = |s: &str| serde_json::to_string(s).unwrap();
    let cases = [
        // An id part far over DynamoDB's 2 KB key limit.
        lipia.replace("\"ws_CO_22112025101500123456\"", &escaped(&"w".repeat(4096))),
        // NUL and U+FFFF in an id, and in a value that only reaches the message payload.
        lipia.replace("\"ws_CO_22112025101500123456\"", &escaped("ws\u{0}CO")),
        lipia.replace("\"John Doe\"", &escaped("John\u{FFFF}Doe\u{0}")),
        lipia.replace("\"John Doe\"", "\"John\\uffff Doe\"").replace("123456\"", "654321\""),
        // A status word that would make an SQS attribute SQS refuses.
        lipia.replace("\"Status\": \"Success\"", &format!("\"Status\": {}", escaped("Succ\u{FFFE}ess"))),
    ];
    for (i, body) in cases.iter().enumerate() {
        let req = TestRequest::signed(Lipia, body, SECRET, now);
        assert_eq!(status(&stack, Lipia, &req).await, 200, "case {i}: {body:.120}");
        assert_eq!(status(&stack, Lipia, &req).await, 200, "case {i} again");
    }
    let messages = stack.messages().await;
    assert_eq!(messages.len(), cases.len(), "one message per callback, retries deduplicated");
    let names: Vec<String> = messages
        .iter()
        .map(|m| serde_json::from_str::<serde_json::Value>(m.body().unwrap()).unwrap())
        .map(|e| e["data"]["payload"]["response"]["Metadata"]["customer_name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(names.contains(&"John\u{FFFF}Doe\u{0}".to_owned()), "the payload means what was sent: {names:?}");
}

/// Lipia's URL token authenticates the request without the body: a body the reader refuses (here a repeated
/// key) is genuine, so it is acknowledged and quarantined once, its text the message's payload.
#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn an_authentic_body_the_reader_refuses_is_quarantined_once() {
    let stack = Stack::new(true).await;
    let body = r#"{"response":{"CheckoutRequestID":"ws_1"},"response":{"CheckoutRequestID":"ws_2"}}"#;
    let req = TestRequest::signed(Lipia, body, SECRET, Utc::now());
    assert_eq!(status(&stack, Lipia, &req).await, 200);
    assert_eq!(status(&stack, Lipia, &req).await, 200, "a retry");
    let messages = stack.messages().await;
    assert_eq!(messages.len(), 1, "one message for the callback and its retry");
    let event: serde_json::Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(
        (event["type"].as_str(), event["data"]["reason"].as_str()),
        (Some("lipia.quarantined"), Some("unreadable_body"))
    );
    assert_eq!(event["data"]["payload"], body);
    let bodies: Vec<_> =
        stack.records().await.into_iter().filter(|r| r["pk"].as_s().unwrap().starts_with("body#")).collect();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["raw_body"].as_s().unwrap(), body);
}

/// A message over 256 KiB once the characters SQS refuses are escaped (six bytes for each three-byte U+FFFF)
/// goes without its payload, not refused on every retry by a queue that takes 256 KiB; the body is in the store.
#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn a_message_too_large_for_sqs_goes_without_its_payload() {
    let stack = Stack::new(true).await;
    let lipia = fixture(Lipia, "stk_success");
    let filler = "\u{FFFF}".repeat((131_072 - lipia.len()) / 3);
    let body = lipia.replace("\"John Doe\"", &format!("\"{filler}\""));
    assert!(body.len() <= 131_072);
    let req = TestRequest::signed(Lipia, &body, SECRET, Utc::now());
    assert_eq!(status(&stack, Lipia, &req).await, 200);
    let messages = stack.messages().await;
    assert_eq!(messages.len(), 1);
    let event: serde_json::Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!((event["type"].as_str(), event["data"]["amount"].as_str()), (Some("lipia.stk.succeeded"), Some("100")));
    assert!(event["data"]["payload"].is_null(), "{:.300}", messages[0].body().unwrap());
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn hostile_bodies_are_refused_before_any_work_and_record_nothing() {
    let stack = Stack::new(true).await;
    let now = Utc::now();
    let deep = format!(r#"{{"signature":"00","params":{}{}}}"#, "[".repeat(20_000), "]".repeat(20_000));
    let cases: [(payhooks::Provider, String, u16); 4] = [
        (Choice, deep.clone(), 400),
        (Niobi, deep, 400),
        (Choice, r#"{"requestId":"a","requestId":"b","signature":"00"}"#.to_owned(), 400),
        (Niobi, fixture(Niobi, "payin_ussd_push"), 401),
    ];
    for (provider, body, want) in cases {
        let mut req =
            TestRequest::signed(provider, &fixture(provider, payhooks::testing::typical(provider)), SECRET, now);
        req.body = body.into_bytes();
        assert_eq!(status(&stack, provider, &req).await, want, "{provider}");
    }
    assert!(stack.records().await.is_empty(), "nothing unauthenticated is recorded");
    assert!(stack.messages().await.is_empty());
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn a_merged_choice_forgery_after_the_genuine_delivery_sends_nothing() {
    let stack = Stack::new(true).await;
    let now = Utc::now();
    let genuine = TestRequest::signed_fixture(Choice, "0002_transaction", now);
    assert_eq!(status(&stack, Choice, &genuine).await, 200);
    let mut v: serde_json::Value = serde_json::from_str(&genuine.body_text()).unwrap();
    let salt = v["salt"].as_str().unwrap().to_owned();
    v["requestId"] = format!("{}&salt={salt}", v["requestId"].as_str().unwrap()).into();
    v.as_object_mut().unwrap().remove("salt");
    let forged = TestRequest { body: v.to_string().into_bytes(), ..genuine.clone() };
    assert_eq!(status(&stack, Choice, &forged).await, 200, "acknowledged as a duplicate");
    let messages = stack.messages().await;
    assert_eq!(messages.len(), 1);
    assert!(messages[0].body().unwrap().contains("choice.transaction.succeeded"));
}
