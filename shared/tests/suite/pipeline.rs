//! The exactly-once delivery logic, over the in-memory ports.

use payhooks::testing;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use payhooks::error::IngestError;
use payhooks::pipeline::Outcome;
use payhooks::ports::{EventStore, RecordState};
use payhooks::testing::{sign, TestPipeline, TestRequest, SECRET};
use payhooks::Provider::*;

const LEASE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn new_callback_is_recorded_and_enqueued_once() {
    let t = TestPipeline::new(Niobi);
    let req = TestRequest::signed_fixture(Niobi, "payin_ussd_push", Utc::now());
    let done = t.pipeline.process(&req.incoming(), Utc::now(), LEASE).await.unwrap();
    assert_eq!(done.outcome, Outcome::Accepted);
    assert_eq!(done.event_ids, ["niobi:payin:A7KQ2M9XW001:000000"]);

    let record = t.store.record("niobi:payin:A7KQ2M9XW001:000000").unwrap();
    assert_eq!(record.state, RecordState::Enqueued);
    assert_eq!(record.scheme.as_str(), "niobi-sha256");
    assert_eq!(t.store.body_of(&record.id).unwrap().as_bytes(), req.body.as_slice());
    let messages = t.publisher.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].group, "A7KQ2M9XW001");
    assert_eq!(messages[0].event_type, "niobi.payin.succeeded");
    let body: serde_json::Value = serde_json::from_str(&messages[0].body).unwrap();
    assert_eq!(body["id"], "niobi:payin:A7KQ2M9XW001:000000");

    // The same callback again, and re-signed later with a new salt: acknowledged, nothing more sent.
    let again = t.pipeline.process(&req.incoming(), Utc::now(), LEASE).await.unwrap();
    assert_eq!(again.outcome, Outcome::Duplicate);
    let resalted = testing::fixture(Niobi, "payin_ussd_push").replace("mySalt123", "newSalt");
    let later = Utc::now() + chrono::Duration::seconds(60);
    let req2 = TestRequest::from_signed(Niobi, &sign(Niobi, &resalted, SECRET, later));
    assert_eq!(t.pipeline.process(&req2.incoming(), later, LEASE).await.unwrap().outcome, Outcome::Duplicate);
    assert_eq!(t.publisher.messages().len(), 1);
}

#[tokio::test]
async fn timeout_then_success_are_two_events() {
    let t = TestPipeline::new(Niobi);
    for name in ["payin_timeout", "payin_ussd_push"] {
        let req = TestRequest::signed_fixture(Niobi, name, Utc::now());
        assert_eq!(t.pipeline.process(&req.incoming(), Utc::now(), LEASE).await.unwrap().outcome, Outcome::Accepted);
    }
    let types: Vec<String> = t.publisher.messages().into_iter().map(|m| m.event_type).collect();
    assert_eq!(types, ["niobi.payin.timeout", "niobi.payin.succeeded"]);
}

#[tokio::test]
async fn batch_gives_one_message_per_item() {
    let t = TestPipeline::new(Choice);
    let req = TestRequest::signed_fixture(Choice, "0008_bulk_transfer", Utc::now());
    let done = t.pipeline.process(&req.incoming(), Utc::now(), LEASE).await.unwrap();
    assert_eq!(done.event_ids.len(), 2);
    let groups: Vec<String> = t.publisher.messages().into_iter().map(|m| m.group).collect();
    assert_eq!(groups, ["TX-9300001", "TX-9300002"]);
}

#[tokio::test]
async fn same_id_different_content_is_kept_not_enqueued() {
    let t = TestPipeline::new(M2Money);
    let now = Utc::now();
    let first = TestRequest::signed_fixture(M2Money, "payout_success", now);
    t.pipeline.process(&first.incoming(), now, LEASE).await.unwrap();
    let changed = testing::fixture(M2Money, "payout_success").replace("1500.00", "15000.00");
    let second = TestRequest::from_signed(M2Money, &sign(M2Money, &changed, SECRET, now));
    let done = t.pipeline.process(&second.incoming(), now, LEASE).await.unwrap();
    assert_eq!(done.outcome, Outcome::Conflict);
    assert_eq!(t.publisher.messages().len(), 1);
    let conflict_ids: Vec<String> = t.store.ids().into_iter().filter(|id| id.contains("#conflict#")).collect();
    assert_eq!(conflict_ids.len(), 1);
    let kept = t.store.record(&conflict_ids[0]).unwrap();
    assert_eq!(kept.state, RecordState::Conflict);
    assert!(t.store.body_of(&kept.id).unwrap().contains("15000.00"));
}

#[tokio::test]
async fn queue_failure_is_503_and_the_retry_completes_once() {
    let t = TestPipeline::new(Lipia);
    let req = TestRequest::signed_fixture(Lipia, "stk_success", Utc::now());
    t.publisher.set_unavailable(true);
    let err = t.pipeline.process(&req.incoming(), Utc::now(), LEASE).await.unwrap_err();
    assert!(matches!(err, IngestError::Publish(_)), "{err:?}");
    assert_eq!(err.status().as_u16(), 503);
    let record = t.store.record("lipia:stk:ws_CO_22112025101500123456:success").unwrap();
    assert_eq!(
        (record.state, record.lease_until_ms),
        (RecordState::Received, 0),
        "left RECEIVED with the lease released"
    );

    t.publisher.set_unavailable(false);
    let retry = t.pipeline.process(&req.incoming(), Utc::now(), LEASE).await.unwrap();
    assert_eq!(retry.outcome, Outcome::Accepted);
    assert_eq!(t.publisher.messages().len(), 1);
    assert_eq!(t.store.record("lipia:stk:ws_CO_22112025101500123456:success").unwrap().state, RecordState::Enqueued);
}

#[tokio::test]
async fn store_failure_is_503_and_nothing_is_sent() {
    let t = TestPipeline::new(Muda);
    t.store.set_unavailable(true);
    let req = TestRequest::signed_fixture(Muda, "transaction_status_success", Utc::now());
    let err = t.pipeline.process(&req.incoming(), Utc::now(), LEASE).await.unwrap_err();
    assert!(matches!(err, IngestError::Store(_)), "{err:?}");
    assert_eq!(err.status().as_u16(), 503);
    assert!(t.publisher.messages().is_empty());
}

/// Leave the record a crashed or concurrent delivery would have left: `RECEIVED`, lease until `lease_until_ms`
/// (a delivery whose send failed, then its lease set as another delivery would hold it).
async fn leave_received(t: &testing::TestPipeline, req: &TestRequest, lease_until_ms: i64) -> String {
    t.publisher.set_unavailable(true);
    t.pipeline.process(&req.incoming(), Utc::now(), LEASE).await.unwrap_err();
    t.publisher.set_unavailable(false);
    let id = t.store.ids().into_iter().find(|id| id.starts_with("lipia:stk:")).unwrap();
    assert!(t.store.take_over(&id, 0, lease_until_ms, "another delivery").await.unwrap());
    id
}

#[tokio::test]
async fn expired_lease_is_taken_over_and_sent_once() {
    let t = TestPipeline::new(Lipia);
    let req = TestRequest::signed_fixture(Lipia, "stk_success", Utc::now());
    let id = leave_received(&t, &req, Utc::now().timestamp_millis() - 1).await;
    let done = t.pipeline.process(&req.incoming(), Utc::now(), LEASE).await.unwrap();
    assert_eq!(done.outcome, Outcome::Accepted);
    assert_eq!(t.publisher.messages().len(), 1);
    assert_eq!(t.store.record(&id).unwrap().state, RecordState::Enqueued);
}

#[tokio::test]
async fn delivery_in_progress_elsewhere_is_503_without_a_message() {
    let t = TestPipeline::new(Lipia);
    let req = TestRequest::signed_fixture(Lipia, "stk_success", Utc::now());
    leave_received(&t, &req, Utc::now().timestamp_millis() + 60_000).await;
    let started = std::time::Instant::now();
    let err = t.pipeline.process(&req.incoming(), Utc::now(), LEASE).await.unwrap_err();
    assert!(matches!(err, IngestError::InProgress(_)), "{err:?}");
    assert_eq!(err.status().as_u16(), 503);
    assert!(started.elapsed() >= payhooks::pipeline::POLL_LIMIT);
    assert!(t.publisher.messages().is_empty());
}

#[tokio::test]
async fn duplicate_waits_for_the_other_delivery_and_acks() {
    let t = TestPipeline::new(Lipia);
    let req = TestRequest::signed_fixture(Lipia, "stk_success", Utc::now());
    let id = leave_received(&t, &req, Utc::now().timestamp_millis() + 60_000).await;
    let store = t.store.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        store.mark_sent(&id, RecordState::Enqueued, Utc::now().timestamp_millis()).await.unwrap();
    });
    let done = t.pipeline.process(&req.incoming(), Utc::now(), LEASE).await.unwrap();
    assert_eq!(done.outcome, Outcome::Duplicate);
    assert!(t.publisher.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_deliveries_send_one_message() {
    let t = Arc::new(TestPipeline::new(Choice));
    let req = Arc::new(TestRequest::signed_fixture(Choice, "0002_transaction", Utc::now()));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (t, req) = (t.clone(), req.clone());
            tokio::spawn(async move { t.pipeline.process(&req.incoming(), Utc::now(), LEASE).await.map(|p| p.outcome) })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(Outcome::Accepted) => accepted += 1,
            Ok(Outcome::Duplicate) | Err(IngestError::InProgress(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(accepted, 1);
    assert_eq!(t.publisher.messages().len(), 1);
    assert_eq!(t.store.ids().len(), 1);
}

/// A first delivery failed at the queue; the provider retries with one changed field. The retry is a
/// conflict, but it completes the first delivery: exactly one message, the first delivery's own.
#[tokio::test]
async fn a_conflict_never_hides_a_loss() {
    let t = TestPipeline::new(M2Money);
    let now = Utc::now();
    let first = TestRequest::signed_fixture(M2Money, "payout_success", now);
    t.publisher.set_unavailable(true);
    assert!(t.pipeline.process(&first.incoming(), now, LEASE).await.is_err());
    t.publisher.set_unavailable(false);

    let changed = testing::fixture(M2Money, "payout_success").replace("1500.00", "15000.00");
    let second = TestRequest::from_signed(M2Money, &sign(M2Money, &changed, SECRET, now));
    let done = t.pipeline.process(&second.incoming(), now, LEASE).await.unwrap();
    assert_eq!(done.outcome, Outcome::Conflict);
    let messages = t.publisher.messages();
    assert_eq!(messages.len(), 1, "the event is on the queue");
    let body: serde_json::Value = serde_json::from_str(&messages[0].body).unwrap();
    assert_eq!(body["data"]["amount"], "1500.00", "the first delivery's content, as recorded");
    assert_eq!(body["data"]["payload"]["data"]["amount"], "1500.00");
    let id = &done.event_ids[0];
    assert_eq!(t.store.record(id).unwrap().state, RecordState::Enqueued);
    assert!(t.store.ids().iter().any(|i| i.starts_with(&format!("{id}#conflict#"))), "the other content is kept");
    // And a third delivery is a plain conflict: nothing more is sent.
    t.pipeline.process(&second.incoming(), now, LEASE).await.unwrap();
    assert_eq!(t.publisher.messages().len(), 1);
}

#[tokio::test]
async fn status_words_are_one_event_whatever_their_case_or_spacing() {
    let t = TestPipeline::new(Lipia);
    let now = Utc::now();
    for word in ["Success", "SUCCESS", "Success ", " success"] {
        let body = testing::fixture(Lipia, "stk_success")
            .replace("\"Status\": \"Success\"", &format!("\"Status\": \"{word}\""));
        let req = TestRequest::signed(Lipia, &body, SECRET, now);
        t.pipeline.process(&req.incoming(), now, LEASE).await.unwrap();
    }
    let messages = t.publisher.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].id, "lipia:stk:ws_CO_22112025101500123456:success");
    let body: serde_json::Value = serde_json::from_str(&messages[0].body).unwrap();
    assert_eq!(body["data"]["provider_status"], "Success", "the text as sent");
}

#[tokio::test]
async fn quarantine_is_recorded_enqueued_once_and_acknowledged() {
    let t = TestPipeline::new(M2Money);
    let now = Utc::now();
    let body = testing::fixture(M2Money, "payout_success").replace("\"1500.00\"", "\"1,750.00\"");
    let req = TestRequest::signed(M2Money, &body, SECRET, now);
    for _ in 0..2 {
        let done = t.pipeline.process(&req.incoming(), now, LEASE).await.unwrap();
        assert!(done.event_ids.is_empty());
        assert_eq!(done.quarantined_ids.len(), 1);
    }
    let messages = t.publisher.messages();
    assert_eq!(messages.len(), 1, "enqueued once");
    let q = &messages[0];
    assert_eq!(q.event_type, "m2money.quarantined");
    assert!(q.id.starts_with("m2money:quarantined:") && q.id.len() == "m2money:quarantined:".len() + 64);
    let envelope: serde_json::Value = serde_json::from_str(&q.body).unwrap();
    assert_eq!(envelope["type"], "m2money.quarantined");
    let data = &envelope["data"];
    assert_eq!((data["provider"].as_str(), data["reason"].as_str()), (Some("m2money"), Some("invalid_amount")));
    assert_eq!(data["field"], "data.amount");
    assert_eq!(data["payload"]["data"]["amount"], "1,750.00");
    let record = t.store.record(&q.id).unwrap();
    assert_eq!(record.state, RecordState::Quarantined);
    assert_eq!(record.quarantine, Some(("invalid_amount".to_owned(), "data.amount".to_owned())));
    assert_eq!(t.store.body_of(&q.id).unwrap().as_bytes(), req.body.as_slice(), "the raw body is kept");
}

#[tokio::test]
async fn in_a_batch_good_items_become_events_and_bad_ones_are_quarantined_alone() {
    let t = TestPipeline::new(Choice);
    let now = Utc::now();
    let body = testing::fixture(Choice, "0008_bulk_transfer").replace("\"3400.00\"", "\"3,400.00\"");
    let req = TestRequest::signed(Choice, &body, SECRET, now);
    let done = t.pipeline.process(&req.incoming(), now, LEASE).await.unwrap();
    assert_eq!(done.outcome, Outcome::Accepted);
    assert_eq!(done.event_ids, ["choice:0008:BAAS000820251122000001:0"]);
    assert_eq!(done.quarantined_ids.len(), 1);
    let types: Vec<String> = t.publisher.messages().into_iter().map(|m| m.event_type).collect();
    assert_eq!(types, ["choice.bulk_transfer.succeeded", "choice.quarantined"]);
    let q: serde_json::Value = serde_json::from_str(&t.publisher.messages()[1].body).unwrap();
    assert_eq!(q["data"]["field"], "params.resultArray[1].amount");
}

#[tokio::test]
async fn an_empty_batch_is_quarantined_not_dropped() {
    let t = TestPipeline::new(Choice);
    let now = Utc::now();
    let mut v: serde_json::Value = serde_json::from_str(&testing::fixture(Choice, "0008_bulk_transfer")).unwrap();
    v["params"]["resultArray"] = serde_json::json!([]);
    let req = TestRequest::signed(Choice, &v.to_string(), SECRET, now);
    let done = t.pipeline.process(&req.incoming(), now, LEASE).await.unwrap();
    assert_eq!(done.outcome, Outcome::Quarantined);
    let q: serde_json::Value = serde_json::from_str(&t.publisher.messages()[0].body).unwrap();
    assert_eq!(
        (q["data"]["reason"].as_str(), q["data"]["field"].as_str()),
        (Some("empty_batch"), Some("params.resultArray"))
    );
}

#[tokio::test]
async fn exact_but_unusual_amounts_are_written_out_exactly() {
    let t = TestPipeline::new(M2Money);
    let now = Utc::now();
    for (sent, exact) in [("1.5E+3", "1500"), ("2.50e-1", "0.250")] {
        let body = testing::fixture(M2Money, "payout_success")
            .replace("\"1500.00\"", sent)
            .replace("ORD2025112200017", &format!("ORD-{exact}"));
        let req = TestRequest::signed(M2Money, &body, SECRET, now);
        let done = t.pipeline.process(&req.incoming(), now, LEASE).await.unwrap();
        assert_eq!(done.outcome, Outcome::Accepted, "{sent}");
        let last = t.publisher.messages().pop().unwrap();
        let envelope: serde_json::Value = serde_json::from_str(&last.body).unwrap();
        assert_eq!(envelope["data"]["amount"], exact, "{sent}");
    }
}

#[tokio::test]
async fn ids_that_would_break_the_stores_are_quarantined() {
    let t = TestPipeline::new(Lipia);
    let now = Utc::now();
    for bad in ["x".repeat(3000), "ws\u{0}CO".to_owned(), "ws\u{FFFF}CO".to_owned(), "R1&salt=abc".to_owned()] {
        let escaped = serde_json::to_string(&bad).unwrap();
        let body = testing::fixture(Lipia, "stk_success").replace("\"ws_CO_22112025101500123456\"", &escaped);
        let req = TestRequest::signed(Lipia, &body, SECRET, now);
        let done = t.pipeline.process(&req.incoming(), now, LEASE).await.unwrap();
        assert_eq!(done.outcome, Outcome::Quarantined, "{bad:?}");
    }
    for m in t.publisher.messages() {
        assert!(m.id.len() < 100 && testing::is_plain(&m.id), "{}", m.id);
    }
}

#[tokio::test]
async fn a_partial_failure_in_a_batch_is_503_and_the_retry_completes_the_rest_once() {
    let t = TestPipeline::new(Choice);
    let now = Utc::now();
    let req = TestRequest::signed(Choice, &testing::choice_batch(40), SECRET, now);
    t.publisher.fail_next(3);
    let err = t.pipeline.process(&req.incoming(), now, LEASE).await.unwrap_err();
    assert_eq!(err.status().as_u16(), 503);
    assert_eq!(t.publisher.messages().len(), 37, "every other item went through");
    let done = t.pipeline.process(&req.incoming(), now, LEASE).await.unwrap();
    assert_eq!(done.outcome, Outcome::Accepted);
    let mut ids: Vec<String> = t.publisher.messages().into_iter().map(|m| m.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40, "all 40, once each");
    assert_eq!(t.publisher.messages().len(), 40);
}

/// Found by `make chaos`: a sweep with a backlog went on taking records until Lambda killed it at its
/// timeout: the record it was on stayed leased, and the run's report and metrics were never written. A run
/// now stops taking records when its time is nearly up and leaves the rest to the next run.
#[tokio::test(start_paused = true)]
async fn a_sweep_stops_before_its_time_is_up_and_the_next_one_goes_on() {
    let t = TestPipeline::new(Lipia);
    t.publisher.set_unavailable(true);
    for i in 0..20 {
        let body = testing::fixture(Lipia, "stk_success").replace("ws_CO_22112025101500123456", &format!("ws_CO_{i}"));
        let req = TestRequest::signed(Lipia, &body, SECRET, Utc::now());
        assert!(t.pipeline.process(&req.incoming(), Utc::now(), Duration::from_secs(10)).await.is_err());
    }
    t.publisher.set_unavailable(false);
    // Each send takes a second: the whole backlog would take twice the run's time.
    t.publisher.set_delay(Duration::from_secs(1));
    let publishers = [(Lipia, t.publisher.clone() as Arc<dyn payhooks::ports::EventPublisher>)].into();
    let sweeper = payhooks::sweeper::Sweeper::new(t.store.clone(), publishers, Duration::from_secs(10));

    let started = tokio::time::Instant::now();
    let first = sweeper.run(Utc::now()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "done within its time: {:?}", started.elapsed());
    assert!(first.swept >= 5 && first.left > 0, "{first:?}");
    assert_eq!(first.swept + first.left, 20, "{first:?}");
    let second = sweeper.run(Utc::now()).await.unwrap();
    assert_eq!(second.swept + second.left, first.left, "{second:?}");
    let third = sweeper.run(Utc::now()).await.unwrap();
    assert_eq!((third.left, t.publisher.messages().len()), (0, 20), "{third:?}");
}
