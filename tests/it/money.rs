//! Money correctness through the real adapters on moto: payment state that notifications cannot erase,
//! replays that write nothing, no acknowledgement without the record.

use chrono::Utc;
use payhooks::pipeline::Outcome;
use payhooks::ports::{EventStore, RecordState};
use payhooks::testing::{choice_transaction, fixture, TestRequest, SECRET};
use payhooks::Provider::*;
use serde_json::Value;

use crate::support::{text, Stack, LEASE};

/// `bodies` signed and processed in order by `provider`'s pipeline on a new stack; each message's `data` in
/// the order the queue gives them (one group: the order sent).
async fn in_order(provider: payhooks::Provider, bodies: &[String]) -> (Stack, Vec<Value>) {
    let stack = Stack::new(true).await;
    let pipeline = stack.pipeline(provider);
    let now = Utc::now();
    for body in bodies {
        let req = TestRequest::signed(provider, body, SECRET, now);
        pipeline.process(&req.incoming(), now, LEASE).await.unwrap();
    }
    let data = stack
        .messages()
        .await
        .iter()
        .map(|m| serde_json::from_str::<Value>(m.body().unwrap()).unwrap()["data"].clone())
        .collect();
    (stack, data)
}

/// 0002 failed, then an OTP notification (0020) for the same transaction, then 0002 succeeded: the OTP keeps
/// its own state, the failure stands and the success is flagged.
#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn an_otp_notification_never_erases_a_payment_state_on_dynamodb() {
    let bodies =
        [choice_transaction("4", "R-F"), fixture(Choice, "0020_otp_verification"), choice_transaction("8", "R-S")];
    let (stack, data) = in_order(Choice, &bodies).await;
    let flags: Vec<_> = data
        .iter()
        .map(|d| (d["status"].as_str().unwrap(), d["transaction_status"].as_str().unwrap(), d["contradiction"] == true))
        .collect();
    assert_eq!(flags, [("failed", "failed", false), ("received", "failed", false), ("succeeded", "failed", true)]);
    let state = stack.record("txn#choice#TX-9000005").await;
    assert_eq!((text(&state, "status"), text(&state, "notice")), ("failed".into(), "received".into()));
}

/// A reversal, then a failure: flagged as the failure-then-reversal order is.
#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn a_failure_after_a_reversal_is_a_contradiction_on_dynamodb() {
    let (_, data) = in_order(M2Money, &[fixture(M2Money, "payout_reversed"), fixture(M2Money, "payout_failed")]).await;
    assert_eq!(data[1]["transaction_status"], "reversed");
    assert_eq!((data[1]["regression"].as_bool(), data[1]["contradiction"].as_bool()), (Some(true), Some(true)));
}

/// The genuine Choice 0002 re-encoded: whitespace, `\u` escapes, key order, each `i` a different size.
fn re_encoded(genuine: &str, i: usize) -> String {
    match i % 3 {
        0 => genuine.replacen('{', &format!("{{{}", " ".repeat(1 + i * 997)), 1),
        1 => genuine.replace("\"sender\"", "\"s\\u0065nder\"").replacen('{', &format!("{{{}", "\n".repeat(i)), 1),
        _ => serde_json::from_str::<Value>(genuine).unwrap().to_string().replacen(
            '{',
            &format!("{{{}", "\t".repeat(i)),
            1,
        ),
    }
}

/// However a body already seen is encoded and however often it is replayed, it is a duplicate that writes
/// nothing: the table does not grow and the stored body of the genuine delivery (its headers, its time) is
/// never rewritten.
#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn re_encoded_replays_write_nothing() {
    let stack = Stack::new(true).await;
    let pipeline = stack.pipeline(Choice);
    let genuine = TestRequest::signed_fixture(Choice, "0002_transaction", Utc::now())
        .with_header("user-agent", "choice-genuine/1.0");
    let status = |req: &TestRequest| {
        let req = req.apigw(false);
        let pipeline = &pipeline;
        async move { payhooks::handler::handle(pipeline, req).await.unwrap().status().as_u16() }
    };
    assert_eq!(status(&genuine).await, 200);
    let before = stack.records().await;
    let body_before = before.iter().find(|r| text(r, "pk").starts_with("body#")).unwrap().clone();
    for i in 0..11 {
        let replay = TestRequest { body: re_encoded(&genuine.body_text(), i).into_bytes(), ..genuine.clone() }
            .with_header("user-agent", "replayer/6.6")
            .with_header("x-forwarded-for", "203.0.113.66");
        let checked = replay.check(Choice, &Default::default(), Utc::now()).map(|_| ());
        assert_eq!(status(&replay).await, 200, "replay {i} is a duplicate: {checked:?}");
    }
    let after = stack.records().await;
    assert_eq!(after.len(), before.len(), "the table did not grow");
    let body_after = after.iter().find(|r| text(r, "pk") == text(&body_before, "pk")).unwrap();
    assert_eq!(body_after, &body_before, "the genuine delivery's stored body is not rewritten");
    let by_key = |items: Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>| {
        items.into_iter().map(|item| (text(&item, "pk"), item)).collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(by_key(after), by_key(before), "no item was rewritten");
    assert_eq!(stack.messages().await.len(), 1);
}

/// A fault at any step of the first delivery (503), then a body carrying the same signature with other content
/// (a top-level `null` that the `compact` dialect leaves out): acknowledged only once the first delivery's
/// event is on the queue, completed from its stored body; and once, whatever the sweeper does after.
#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn no_acknowledgement_without_the_record_of_the_first_delivery() {
    for step in ["put_body", "claim_signature", "insert", "advance", "mark_sent"] {
        let stack = Stack::new(true).await;
        let store = std::sync::Arc::new(payhooks::testing::FaultyStore::new(stack.store()));
        let pipeline = stack.pipeline_on(Choice, store.clone(), Default::default());
        let now = Utc::now();
        let genuine = TestRequest::signed_fixture(Choice, "0002_transaction", now);
        store.fail(step);
        let err = pipeline.process(&genuine.incoming(), now, LEASE).await.unwrap_err();
        assert_eq!(err.status().as_u16(), 503, "{step}");
        store.heal();
        let mut other: Value = serde_json::from_str(&genuine.body_text()).unwrap();
        other["remark"] = Value::Null;
        let other = TestRequest { body: other.to_string().into_bytes(), ..genuine.clone() };
        let done = pipeline.process(&other.incoming(), now, LEASE).await.unwrap();
        // Where the first delivery failed before its claim, the other body is the first use of the signature:
        // its event (the same one: `remark` is not read) is new.
        let first_use =
            if step == "put_body" || step == "claim_signature" { Outcome::Accepted } else { Outcome::Duplicate };
        assert_eq!(done.outcome, first_use, "{step}");
        let marker = stack.store().get("choice:0002:BAAS000220251122000001").await.unwrap();
        assert_eq!(marker.map(|m| m.state), Some(RecordState::Enqueued), "{step}");
        let messages = stack.messages().await;
        assert_eq!(messages.len(), 1, "{step}: the first delivery's event is on the queue, once");
        assert!(messages[0].body().unwrap().contains("choice.transaction.succeeded"), "{step}");
    }
}

/// An authentic body that is not UTF-8, as large as `MAX_BODY_BYTES` may be set (196,608 bytes), is stored
/// as its bytes (a binary attribute, within DynamoDB's 400 KB item) and acknowledged as a quarantine: never a
/// 503 that every retry meets again.
#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn the_largest_body_that_is_not_utf8_is_stored_as_its_bytes() {
    let stack = Stack::new(true).await;
    let verify =
        payhooks::config::VerifyConfig { max_body_bytes: payhooks::config::MAX_BODY_BYTES_LIMIT, ..Default::default() };
    let pipeline = stack.pipeline_on(Lipia, std::sync::Arc::new(stack.store()), verify);
    let mut bytes = b"{\"Body\":\"".to_vec();
    bytes.resize(payhooks::config::MAX_BODY_BYTES_LIMIT - 2, 0xFF);
    bytes.extend_from_slice(b"\"}");
    let req = TestRequest { body: bytes.clone(), ..TestRequest::signed_fixture(Lipia, "stk_success", Utc::now()) };
    for attempt in ["first", "retry"] {
        let resp = payhooks::handler::handle(&pipeline, req.apigw(true)).await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{attempt}");
    }
    let bodies: Vec<_> = stack.records().await.into_iter().filter(|r| text(r, "pk").starts_with("body#")).collect();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["raw_bytes"].as_b().unwrap().as_ref(), bytes.as_slice(), "the bytes as received");
    let event: Value = serde_json::from_str(stack.messages().await[0].body().unwrap()).unwrap();
    assert_eq!(event["data"]["reason"], "unreadable_body");
}

/// A transaction is held by one delivery at a time, from its advance until its message is sent: another
/// waits; a hold ends at its holder's lease (a crashed holder), and a lost answer's retry holds again.
#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn one_delivery_at_a_time_holds_a_transaction_on_dynamodb() {
    use payhooks::ports::TransactionStore;
    let stack = Stack::new(true).await;
    let store = stack.store();
    let key = "txn#m2money#HOLD-1";
    assert!(store.hold(key, "a@100", 100, 10).await.unwrap());
    assert!(store.hold(key, "a@100", 100, 20).await.unwrap(), "the same holder again (an SDK retry)");
    assert!(!store.hold(key, "b@200", 200, 50).await.unwrap(), "held by another until 100");
    store.let_go(key, "b@200").await.unwrap();
    assert!(!store.hold(key, "b@200", 200, 60).await.unwrap(), "only the holder lets go");
    store.let_go(key, "a@100").await.unwrap();
    assert!(store.hold(key, "b@200", 200, 70).await.unwrap(), "free once let go");
    assert!(store.hold(key, "c@300", 300, 200).await.unwrap(), "or once the hold ended");
    store.let_go(key, "c@300").await.unwrap();
    store.let_go(key, "c@300").await.unwrap();

    // A delivery lets go once its message is sent, and the hold leaves the state as it was.
    let (stack, data) = in_order(M2Money, &[fixture(M2Money, "payout_success")]).await;
    assert_eq!(data[0]["transaction_status"], "succeeded");
    let state = stack.record("txn#m2money#ORD2025112200017").await;
    assert_eq!(text(&state, "status"), "succeeded");
    assert!(!state.contains_key("held_by") && !state.contains_key("held_until"), "{state:?}");
}
