//! The sweeper and transaction state on DynamoDB and SQS (moto).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use payhooks::aws::{pending_shards, DynamoDbStore, SqsPublisher};
use payhooks::ports::{BodyRecord, BodyStore, EventPublisher, EventStore, RecordState, Store};
use payhooks::sweeper::Sweeper;
use payhooks::testing::{fixture, TestRequest, SECRET};
use payhooks::Provider::{self, *};

use crate::support::{marker, text, Stack, LEASE};

fn sweeper(stack: &Stack, store: Arc<dyn Store>) -> Sweeper {
    sweeper_with_broken(stack, store, &[])
}

/// A sweeper whose queue is the stack's, except for the providers in `broken`, whose queue does not exist.
fn sweeper_with_broken(stack: &Stack, store: Arc<dyn Store>, broken: &[Provider]) -> Sweeper {
    let queue = |url: String| -> Arc<dyn EventPublisher> { Arc::new(SqsPublisher::new(stack.sqs.clone(), url)) };
    let (good, missing) = (queue(stack.queue_url.clone()), queue(format!("{}-missing", stack.queue_url)));
    let publishers =
        Provider::ALL.into_iter().map(|p| (p, if broken.contains(&p) { &missing } else { &good }.clone())).collect();
    Sweeper::new(store, publishers, Duration::from_secs(10))
}

fn store(stack: &Stack) -> Arc<dyn Store> {
    Arc::new(DynamoDbStore::new(stack.ddb.clone(), stack.table.clone()))
}

/// A delivery whose `SendMessage` failed: 503, the record left `RECEIVED` with its lease released.
async fn fail_a_delivery(stack: &Stack, provider: Provider, req: &TestRequest) -> String {
    let broken = stack.pipeline_with(provider, &stack.table, &format!("{}-missing", stack.queue_url));
    let err = broken.process(&req.incoming(), Utc::now(), LEASE).await.unwrap_err();
    assert_eq!(err.status().as_u16(), 503);
    let records = stack.event_records().await;
    let record = records.iter().find(|r| text(r, "state") == "RECEIVED").expect("left RECEIVED");
    assert!(record.contains_key("pending"), "a RECEIVED record is in the sparse index");
    text(record, "pk")
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn a_failed_send_no_provider_retries_is_enqueued_by_the_next_sweep() {
    let stack = Stack::new(true).await;
    let req = TestRequest::signed_fixture(Choice, "0002_transaction", Utc::now());
    let id = fail_a_delivery(&stack, Choice, &req).await;
    assert!(stack.messages().await.is_empty());

    let report = sweeper(&stack, store(&stack)).run(Utc::now()).await.unwrap();
    assert_eq!((report.found, report.swept, report.failed), (1, 1, 0));
    let messages = stack.messages().await;
    assert_eq!(messages.len(), 1);
    let body: serde_json::Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["data"]["transaction_status"], "succeeded");
    assert_eq!(body["data"]["payload"]["params"]["amount"], "1500.00", "rebuilt from the stored body");
    let record = stack.record(&id).await;
    assert_eq!(text(&record, "state"), "ENQUEUED");
    assert!(!record.contains_key("pending"), "out of the sparse index once sent");

    let again = sweeper(&stack, store(&stack)).run(Utc::now()).await.unwrap();
    assert_eq!(again.found, 0);
    assert_eq!(stack.messages().await.len(), 0, "nothing more (the one message stays in flight)");
}

/// A quarantined callback is genuine too: if its send failed and no retry comes, the sweep enqueues it as
/// `<provider>.quarantined` (it is never normalised again), so a human still sees it.
#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn a_quarantined_callback_whose_send_failed_is_enqueued_by_the_next_sweep() {
    let stack = Stack::new(true).await;
    let body = fixture(M2Money, "payout_success").replace("\"1500.00\"", "\"1,500.00\"");
    let req = TestRequest::signed(M2Money, &body, SECRET, Utc::now());
    let id = fail_a_delivery(&stack, M2Money, &req).await;
    assert!(id.starts_with("m2money:quarantined:"), "{id}");

    let report = sweeper(&stack, store(&stack)).run(Utc::now()).await.unwrap();
    assert_eq!((report.found, report.swept, report.failed), (1, 1, 0));
    let messages = stack.messages().await;
    assert_eq!(messages.len(), 1);
    let event: serde_json::Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!((event["id"].as_str(), event["type"].as_str()), (Some(id.as_str()), Some("m2money.quarantined")));
    assert_eq!(event["data"]["reason"], "invalid_amount");
    assert_eq!(event["data"]["payload"]["data"]["amount"], "1,500.00", "rebuilt from the stored body");
    let record = stack.record(&id).await;
    assert_eq!(text(&record, "state"), "QUARANTINED");
    assert!(!record.contains_key("pending"), "out of the sparse index once sent");
}

/// A swept message is the one the callback would have sent: an authentic body that is not UTF-8 is stored with
/// U+FFFD in place of what cannot be read, which may then read as JSON; its payload is still its text.
#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn an_unreadable_body_is_swept_with_the_payload_it_was_first_sent_with() {
    let stack = Stack::new(true).await;
    let mut req = TestRequest::signed(Lipia, "{}", SECRET, Utc::now());
    req.body = b"{\"Status\":\"Success\xff\"}".to_vec();
    let id = fail_a_delivery(&stack, Lipia, &req).await;
    let report = sweeper(&stack, store(&stack)).run(Utc::now()).await.unwrap();
    assert_eq!((report.found, report.swept), (1, 1));
    let messages = stack.messages().await;
    let event: serde_json::Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!((event["id"].as_str(), event["data"]["reason"].as_str()), (Some(id.as_str()), Some("unreadable_body")));
    assert_eq!(event["data"]["payload"], "{\"Status\":\"Success\u{FFFD}\"}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto_server: run with `make test`"]
async fn a_sweep_racing_a_provider_retry_and_another_sweep_sends_one_message() {
    let stack = Stack::new(true).await;
    let req = Arc::new(TestRequest::signed_fixture(M2Money, "payout_success", Utc::now()));
    fail_a_delivery(&stack, M2Money, &req).await;
    let pipeline = Arc::new(stack.pipeline(M2Money));
    let (a, b) = (Arc::new(sweeper(&stack, store(&stack))), Arc::new(sweeper(&stack, store(&stack))));
    let retry = {
        let (pipeline, req) = (pipeline.clone(), req.clone());
        tokio::spawn(async move { pipeline.process(&req.incoming(), Utc::now(), LEASE).await.map(|p| p.outcome) })
    };
    let sweep_a = tokio::spawn(async move { a.run(Utc::now()).await.unwrap() });
    let sweep_b = tokio::spawn(async move { b.run(Utc::now()).await.unwrap() });
    let retried = retry.await.unwrap();
    let (ra, rb) = (sweep_a.await.unwrap(), sweep_b.await.unwrap());
    assert!(retried.is_ok() || matches!(retried, Err(payhooks::error::IngestError::InProgress(_))), "{retried:?}");
    assert!(ra.swept + rb.swept <= 1, "{ra:?} {rb:?}");
    assert_eq!(stack.messages().await.len(), 1, "exactly one message: {ra:?} {rb:?} {retried:?}");
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn received_markers_spread_over_every_shard_of_the_index_and_a_sweep_takes_the_oldest() {
    let stack = Stack::new(true).await;
    let store = DynamoDbStore::new(stack.ddb.clone(), stack.table.clone());
    // 40 markers whose leases ended a second apart, oldest first.
    let ids: Vec<String> = (0..40).map(|i| format!("lipia:stk:ws_CO_{i:03}:success")).collect();
    for (i, id) in ids.iter().enumerate() {
        store.insert(&marker(id, 1_000 + 1_000 * i as i64)).await.unwrap();
    }
    let shards: BTreeSet<String> = stack.event_records().await.iter().map(|r| text(r, "pending")).collect();
    assert_eq!(shards, pending_shards().collect(), "the index's writes go to every shard, not to one partition");

    assert_eq!(store.stalled(i64::MAX, 1000).await.unwrap(), ids, "every shard is read, oldest lease first");
    assert_eq!(store.stalled(i64::MAX, 7).await.unwrap(), ids[..7], "the limit keeps the oldest of all shards");
    assert_eq!(store.stalled(6_001, 1000).await.unwrap(), ids[..6], "only leases that have ended");
    store.mark_sent(&ids[0], RecordState::Enqueued, 1).await.unwrap();
    assert!(!stack.record(&ids[0]).await.contains_key("pending"), "a sent marker leaves the index");
    assert_eq!(store.stalled(i64::MAX, 1000).await.unwrap(), ids[1..]);
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn a_sweep_with_nothing_to_do_only_reads_the_index() {
    let stack = Stack::new(true).await;
    // Sent events and a quarantined one are not the sweeper's business.
    for (provider, name) in [(Lipia, "stk_success"), (Muda, "transaction_event_success")] {
        let req = TestRequest::signed_fixture(provider, name, Utc::now());
        stack.pipeline(provider).process(&req.incoming(), Utc::now(), LEASE).await.unwrap();
    }
    let quarantined = fixture(M2Money, "payout_success").replace("\"1500.00\"", "\"1,500.00\"");
    let req = TestRequest::signed(M2Money, &quarantined, SECRET, Utc::now());
    stack.pipeline(M2Money).process(&req.incoming(), Utc::now(), LEASE).await.unwrap();
    let counting = Arc::new(payhooks::testing::FaultyStore::new(stack.store()));
    let report = sweeper(&stack, counting.clone()).run(Utc::now()).await.unwrap();
    assert_eq!(report.found, 0);
    assert_eq!(counting.calls(), ["stalled"], "one query, nothing else");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto_server: run with `make test`"]
async fn twenty_concurrent_events_of_one_transaction_end_in_the_highest_rank_on_dynamodb() {
    let stack = Stack::new(false).await;
    let pipeline = Arc::new(stack.pipeline(Niobi));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let pipeline = pipeline.clone();
            let body = match i % 4 {
                0 => fixture(Niobi, "payin_ussd_push"),
                1 => fixture(Niobi, "payin_timeout"),
                _ => fixture(Niobi, "payin_timeout")
                    .replace("000006", &format!("0001{i:02}"))
                    .replace("\"timeout\"", "\"pending\""),
            };
            tokio::spawn(async move {
                let req = TestRequest::signed(Niobi, &body, SECRET, Utc::now());
                pipeline.process(&req.incoming(), Utc::now(), LEASE).await.map(|p| p.outcome)
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap().map_err(|e| e.to_string()));
    }
    let state = stack.record("txn#niobi#A7KQ2M9XW001").await;
    assert_eq!(text(&state, "status"), "succeeded", "{results:?}");
    let mut by_status: HashMap<String, usize> = HashMap::new();
    for m in stack.messages().await {
        let body: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
        *by_status.entry(body["data"]["status"].as_str().unwrap().to_owned()).or_default() += 1;
        if body["data"]["status"] != "succeeded" && body["data"]["transaction_status"] == "succeeded" {
            assert_eq!(body["data"]["regression"], true, "{body}");
        }
    }
    assert_eq!(by_status.get("succeeded"), Some(&1), "{by_status:?}");
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn aws_calls_are_timed_and_sweeps_counted_in_emf() {
    let stack = Stack::new(true).await;
    let sink = Arc::new(payhooks::testing::MemorySink::default());
    let pipeline = stack.pipeline(Choice).with_metrics_sink(sink.clone());
    let req = TestRequest::signed_fixture(Choice, "0002_transaction", Utc::now());
    let resp = payhooks::handler::handle(&pipeline, req.apigw(false)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let doc: serde_json::Value = serde_json::from_str(&sink.0.lock().unwrap()[0]).unwrap();
    // Two reads (the signature's first use, the records' states), then the body, the signature claim, the
    // marker, the transaction's hold, its state, letting go of it, and the mark: nine DynamoDB calls; one
    // SQS send.
    assert_eq!(doc["StoreLatency"].as_array().unwrap().len(), 9, "{doc}");
    assert_eq!(doc["QueueLatency"].as_array().unwrap().len(), 1, "{doc}");

    let req = TestRequest::signed_fixture(Lipia, "stk_success", Utc::now());
    fail_a_delivery(&stack, Lipia, &req).await;
    let sweeps = Arc::new(payhooks::testing::MemorySink::default());
    let sweeper = sweeper(&stack, store(&stack)).with_metrics_sink(sweeps.clone());
    let report = payhooks::sweeper::handle(&sweeper, None).await.unwrap();
    assert_eq!(report.swept, 1);
    let doc: serde_json::Value = serde_json::from_str(&sweeps.0.lock().unwrap()[0]).unwrap();
    assert_eq!(doc["Swept"], 1);
    assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([[]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server: run with `make test`"]
async fn a_batch_of_200_items_is_acknowledged_with_one_message_each() {
    let stack = Stack::new(true).await;
    let req = TestRequest::signed(Choice, &payhooks::testing::choice_batch(200), SECRET, Utc::now());
    let started = std::time::Instant::now();
    let done = stack.pipeline(Choice).process(&req.incoming(), Utc::now(), LEASE).await.unwrap();
    // The figure the performance issue asks for; a timing is reported, not asserted (shared, noisy machines).
    eprintln!("200-item batch acknowledged against moto in {:?}", started.elapsed());
    assert_eq!(done.event_ids.len(), 200);
    let markers = stack.event_records().await.into_iter().filter(|r| text(r, "state") == "ENQUEUED").count();
    assert_eq!(markers, 200);
    let bodies = stack.records().await.into_iter().filter(|r| text(r, "pk").starts_with("body#")).count();
    assert_eq!(bodies, 1, "the raw body is stored once for the whole batch");
    let mut all = Vec::new();
    loop {
        let batch = stack.messages().await;
        if batch.is_empty() {
            break;
        }
        all.extend(batch);
    }
    assert_eq!(all.len(), 200);
}

/// 101 records stuck on a broken queue (Lipia's; more than a page of the index) and one Niobi record on a healthy
/// one, stalled at the same time and sorting after them: one sweep completes the Niobi record, backs the broken
/// ones off and counts them in `SweepFound` and `SweepFailed`.
#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn a_broken_queue_backs_off_and_never_starves_the_other_providers() {
    let stack = Stack::new(true).await;
    let store = stack.store();
    store
        .put_body(&BodyRecord {
            key: "body#lipia#b".into(),
            provider: Lipia,
            raw_body: fixture(Lipia, "stk_success").into_bytes(),
            headers: Vec::new(),
            received_at_ms: 1,
            expires_at: Utc::now().timestamp() + 3600,
        })
        .await
        .unwrap();
    let req = TestRequest::signed_fixture(Niobi, "payin_ussd_push", Utc::now());
    let healthy = fail_a_delivery(&stack, Niobi, &req).await;
    let stuck: Vec<String> = (0..101).map(|i| format!("lipia:stk:ws_CO_{i:03}:success")).collect();
    for id in &stuck {
        store.insert(&marker(id, 0)).await.unwrap();
    }
    assert!(stuck.iter().all(|id| id < &healthy), "the stuck records come first in the index");

    let sink = Arc::new(payhooks::testing::MemorySink::default());
    let sweeper = sweeper_with_broken(&stack, Arc::new(stack.store()), &[Lipia]).with_metrics_sink(sink.clone());
    let started = Utc::now();
    // Two minutes for 102 records: the sweep's own deadline is not what this test is about, and on a busy
    // machine moto takes more than the 10 s of a default run (CI, beside a soak: 89 done, the rest left).
    let deadline = started.timestamp_millis() + 120_000;
    let report = payhooks::sweeper::handle(&sweeper, Some(deadline)).await.unwrap();
    assert_eq!((report.found, report.swept, report.failed), (102, 1, 101));
    let doc: serde_json::Value = serde_json::from_str(&sink.0.lock().unwrap()[0]).unwrap();
    assert_eq!(
        (doc["SweepFound"].as_u64(), doc["SweepFailed"].as_u64(), doc["Swept"].as_u64()),
        (Some(102), Some(101), Some(1))
    );
    let messages = stack.messages().await;
    assert_eq!(messages.len(), 1);
    assert!(messages[0].body().unwrap().contains(&healthy));

    // Backed off: the next minute's sweep leaves them alone (the back-off doubles with each failure:
    // `sweeper::tests`).
    let now = Utc::now();
    let state = store.get(&stuck[0]).await.unwrap().unwrap();
    assert_eq!((state.state, state.sweep_failures, state.backed_off), (RecordState::Received, 1, true));
    assert!(
        state.lease_until_ms >= started.timestamp_millis() + 60_000,
        "backed off for a minute from the sweep's start: {}",
        state.lease_until_ms - started.timestamp_millis()
    );
    assert_eq!(sweeper.run(now).await.unwrap().found, 0);
}

/// A record the sweeper backed off has no delivery at work on it: the provider's retry takes it over at once
/// (no polling, no 503) and completes it.
#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn a_provider_retry_takes_over_a_backed_off_record_at_once() {
    let stack = Stack::new(true).await;
    let req = TestRequest::signed_fixture(Lipia, "stk_success", Utc::now());
    let id = fail_a_delivery(&stack, Lipia, &req).await;
    let report = sweeper_with_broken(&stack, store(&stack), &Provider::ALL).run(Utc::now()).await.unwrap();
    assert_eq!((report.found, report.failed), (1, 1));
    assert!(stack.store().get(&id).await.unwrap().unwrap().backed_off);

    let started = std::time::Instant::now();
    let done = stack.pipeline(Lipia).process(&req.incoming(), Utc::now(), LEASE).await.unwrap();
    assert_eq!(done.outcome, payhooks::pipeline::Outcome::Accepted);
    assert!(started.elapsed() < payhooks::pipeline::POLL_LIMIT, "{:?}", started.elapsed());
    let record = stack.store().get(&id).await.unwrap().unwrap();
    assert_eq!((record.state, record.backed_off), (RecordState::Enqueued, false));
    assert_eq!(stack.messages().await.len(), 1);
}
