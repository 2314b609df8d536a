//! DynamoDB and SQS behaviour against a real local emulator (`moto_server`, started by `make test`).
//! Ignored by a plain `cargo test`; `make test` runs them with `--include-ignored`.

mod admin;
mod adversarial;
mod chaos;
mod consumer;
#[path = "../contract.rs"]
mod contract;
mod corpus;
mod deployed;
mod money;
mod support;
mod sweeper;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use payhooks::config::Config;
use payhooks::error::IngestError;
use payhooks::pipeline::{Outcome, WarmUpPart};
use payhooks::testing::{fixture, typical, TestRequest, SECRET};
use payhooks::Provider::{self, *};
use support::{text, Stack, LEASE};

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn new_callbacks_are_recorded_and_enqueued_with_the_envelope() {
    let stack = Stack::new(false).await;
    let mut ids = Vec::new();
    for provider in Provider::ALL {
        let done = stack
            .pipeline(provider)
            .process(
                &TestRequest::signed_fixture(provider, typical(provider), Utc::now()).incoming(),
                Utc::now(),
                LEASE,
            )
            .await
            .unwrap();
        assert_eq!(done.outcome, Outcome::Accepted, "{provider:?}");
        ids.extend(done.event_ids);
    }
    for id in &ids {
        let record = stack.record(id).await;
        assert_eq!(text(&record, "state"), "ENQUEUED", "{id}");
        for key in [
            "provider",
            "type",
            "received_at",
            "sent_at",
            "body_ref",
            "scheme",
            "secret_index",
            "content_hash",
            "group",
            "envelope",
            "expires_at",
            "lease_until",
        ] {
            assert!(record.contains_key(key), "{id} lacks {key}");
        }
        assert!(!record.contains_key("raw_body"), "{id}: the body is stored once, in its own item");
        // The marker is a small item: about 1 KB, one write unit to insert and one to mark sent (two each for
        // a MUDA event carrying its fee and time, whose UUID ids take its marker just past 1 KB).
        let size: usize = record
            .iter()
            .map(|(k, v)| k.len() + v.as_s().map(String::len).or_else(|_| v.as_n().map(String::len)).unwrap_or(16))
            .sum();
        let budget = if id.starts_with("muda:") { 1100 } else { 1024 };
        assert!(size < budget, "{id}: marker of {size} bytes");
        let body = stack.record(&text(&record, "body_ref")).await;
        assert!(body.contains_key("raw_body"));
        let headers = format!("{:?}", body.get("headers"));
        assert!(!headers.to_ascii_lowercase().contains("signature"), "secret-bearing header stored: {headers}");
        let kept_for = text(&record, "expires_at").parse::<i64>().unwrap() - Utc::now().timestamp();
        assert!(kept_for > 3000 * 86_400, "{id}: the replay marker outlives the body ({kept_for} s)");
        let body_kept_for = text(&body, "expires_at").parse::<i64>().unwrap() - Utc::now().timestamp();
        assert!(body_kept_for < 36 * 86_400, "{id}: the body expires after EVENT_TTL_DAYS");
    }
    // Every item is under a key prefix its provider's function may write (the template's LeadingKeys).
    for record in stack.records().await {
        let pk = text(&record, "pk");
        let own = |p: Provider| {
            let p = p.name();
            [format!("{p}:"), format!("body#{p}#"), format!("sig#{p}#"), format!("txn#{p}#")]
                .iter()
                .any(|prefix| pk.starts_with(prefix.as_str()))
        };
        assert!(Provider::ALL.into_iter().any(own), "{pk} is under no provider's prefix");
    }
    let messages = stack.messages().await;
    assert_eq!(messages.len(), 5);
    for m in &messages {
        let body: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
        assert_eq!(body["specversion"], "1.0");
        assert!(ids.contains(&body["id"].as_str().unwrap().to_owned()));
        for key in ["source", "type", "time", "subject", "datacontenttype", "data"] {
            assert!(body.get(key).is_some(), "envelope lacks {key}");
        }
        let attrs = m.message_attributes().unwrap();
        assert_eq!(attrs["id"].string_value(), body["id"].as_str());
        assert_eq!(attrs["type"].string_value(), body["type"].as_str());
        assert_eq!(attrs["provider"].string_value(), body["data"]["provider"].as_str());
    }
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn fifo_queue_groups_by_transaction_and_dedups_by_event_id() {
    let stack = Stack::new(true).await;
    let done = stack
        .pipeline(Choice)
        .process(&TestRequest::signed_fixture(Choice, "0008_bulk_transfer", Utc::now()).incoming(), Utc::now(), LEASE)
        .await
        .unwrap();
    assert_eq!(done.event_ids.len(), 2);
    let mut seen: Vec<(String, String)> = stack
        .messages()
        .await
        .iter()
        .map(|m| {
            let attrs = m.attributes().unwrap();
            let get =
                |name: aws_sdk_sqs::types::MessageSystemAttributeName| attrs.get(&name).cloned().unwrap_or_default();
            (
                get(aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId),
                get(aws_sdk_sqs::types::MessageSystemAttributeName::MessageDeduplicationId),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("TX-9300001".to_owned(), "choice:0008:BAAS000820251122000001:0".to_owned()),
            ("TX-9300002".to_owned(), "choice:0008:BAAS000820251122000001:1".to_owned())
        ]
    );
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn redelivery_and_resigned_delivery_are_acknowledged_once() {
    for fifo in [false, true] {
        let stack = Stack::new(fifo).await;
        let pipeline = stack.pipeline(Niobi);
        let first = TestRequest::signed_fixture(Niobi, "payout_success", Utc::now());
        assert_eq!(pipeline.process(&first.incoming(), Utc::now(), LEASE).await.unwrap().outcome, Outcome::Accepted);
        assert_eq!(pipeline.process(&first.incoming(), Utc::now(), LEASE).await.unwrap().outcome, Outcome::Duplicate);
        let resalted = TestRequest::signed(
            Niobi,
            &fixture(Niobi, "payout_success").replace("salt value", "another salt"),
            SECRET,
            Utc::now(),
        );
        assert_ne!(resalted.body, first.body);
        assert_eq!(
            pipeline.process(&resalted.incoming(), Utc::now(), LEASE).await.unwrap().outcome,
            Outcome::Duplicate
        );
        assert_eq!(stack.messages().await.len(), 1, "fifo={fifo}");
        assert_eq!(stack.event_records().await.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto_server: run with `make test`"]
async fn twenty_identical_deliveries_at_once_give_one_record_and_one_message() {
    let stack = Stack::new(false).await;
    let pipeline = Arc::new(stack.pipeline(M2Money));
    let sent = Arc::new(TestRequest::signed_fixture(M2Money, "payout_failed", Utc::now()));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (pipeline, sent) = (pipeline.clone(), sent.clone());
            tokio::spawn(async move { pipeline.process(&sent.incoming(), Utc::now(), LEASE).await.map(|p| p.outcome) })
        })
        .collect();
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    for task in tasks {
        let key = match task.await.unwrap() {
            Ok(outcome) => outcome.as_str().to_owned(),
            Err(IngestError::InProgress(_)) => "503".to_owned(),
            Err(other) => panic!("unexpected {other:?}"),
        };
        *outcomes.entry(key).or_default() += 1;
    }
    assert_eq!(outcomes.get("accepted"), Some(&1), "{outcomes:?}");
    assert_eq!(stack.event_records().await.len(), 1);
    assert_eq!(stack.messages().await.len(), 1);
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn queue_failure_is_503_and_the_retry_enqueues_once() {
    let stack = Stack::new(false).await;
    let missing_queue = format!("{}-does-not-exist", stack.queue_url);
    let broken = stack.pipeline_with(Lipia, &stack.table, &missing_queue);
    let sent = TestRequest::signed_fixture(Lipia, "stk_failed", Utc::now());
    let err = broken.process(&sent.incoming(), Utc::now(), LEASE).await.unwrap_err();
    assert!(matches!(err, IngestError::Publish(_)), "{err:?}");
    assert_eq!(err.status().as_u16(), 503);
    let id = "lipia:stk:ws_CO_22112025101700654321:failed";
    let record = stack.record(id).await;
    assert_eq!((text(&record, "state").as_str(), text(&record, "lease_until").as_str()), ("RECEIVED", "0"));

    let healthy = stack.pipeline(Lipia);
    assert_eq!(healthy.process(&sent.incoming(), Utc::now(), LEASE).await.unwrap().outcome, Outcome::Accepted);
    assert_eq!(healthy.process(&sent.incoming(), Utc::now(), LEASE).await.unwrap().outcome, Outcome::Duplicate);
    assert_eq!(text(&stack.record(id).await, "state"), "ENQUEUED");
    assert_eq!(stack.messages().await.len(), 1);
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn missing_table_is_503_and_nothing_is_enqueued() {
    let stack = Stack::new(false).await;
    let pipeline = stack.pipeline_with(Muda, "no-such-table", &stack.queue_url);
    let err = pipeline
        .process(
            &TestRequest::signed_fixture(Muda, "transaction_status_pending", Utc::now()).incoming(),
            Utc::now(),
            LEASE,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, IngestError::Store(_)), "{err:?}");
    assert_eq!(err.status().as_u16(), 503);
    assert!(stack.messages().await.is_empty());
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn content_conflict_is_kept_and_not_enqueued() {
    let stack = Stack::new(false).await;
    let pipeline = stack.pipeline(Muda);
    pipeline
        .process(
            &TestRequest::signed_fixture(Muda, "transaction_status_success", Utc::now()).incoming(),
            Utc::now(),
            LEASE,
        )
        .await
        .unwrap();
    let changed = TestRequest::signed(
        Muda,
        &fixture(Muda, "transaction_status_success").replace("\"10000\"", "\"90000\""),
        SECRET,
        Utc::now(),
    );
    assert_eq!(pipeline.process(&changed.incoming(), Utc::now(), LEASE).await.unwrap().outcome, Outcome::Conflict);
    let records = stack.event_records().await;
    let states: Vec<String> = records.iter().map(|r| text(r, "state")).collect();
    let conflicts: Vec<_> = records.iter().filter(|r| text(r, "state") == "CONFLICT").collect();
    assert_eq!((states.len(), conflicts.len()), (2, 1), "{states:?}");
    let kept = stack.record(&text(conflicts[0], "body_ref")).await;
    assert!(text(&kept, "raw_body").contains("90000"));
    assert_eq!(stack.messages().await.len(), 1);
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn secrets_come_from_an_ssm_secure_string_and_are_read_again() {
    let stack = Stack::new(false).await;
    let param = format!("/payhooks/{}", support::unique("choice"));
    stack
        .ssm
        .put_parameter()
        .name(&param)
        .value("ssm-current,ssm-previous")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let env = |param: String| {
        let vars: HashMap<&str, String> = HashMap::from([
            ("WEBHOOK_SECRETS_PARAM", param),
            ("EVENTS_TABLE", stack.table.clone()),
            ("EVENTS_QUEUE_URL", stack.queue_url.clone()),
            ("SECRETS_REFRESH_SECS", "1".to_owned()),
        ]);
        Config::from_lookup(Choice, move |k| vars.get(k).cloned()).unwrap()
    };
    let pipeline = payhooks::wiring::pipeline(env(param.clone())).await;
    let sent = TestRequest::signed(Choice, &fixture(Choice, "0003_balance_change"), "ssm-previous", Utc::now());
    let done = pipeline.process(&sent.incoming(), Utc::now(), LEASE).await.unwrap();
    assert_eq!((done.outcome, done.verified.secret_index), (Outcome::Accepted, 1));
    assert_eq!(text(&stack.record(&done.event_ids[0]).await, "secret_index"), "1");

    // The previous secret is retired: once the refresh interval has passed, the warm pipeline refuses it.
    stack.ssm.put_parameter().name(&param).value("ssm-next").overwrite(true).send().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let retired = TestRequest::signed(Choice, &fixture(Choice, "0002_transaction"), "ssm-previous", Utc::now());
    let err = pipeline.process(&retired.incoming(), Utc::now(), LEASE).await.unwrap_err();
    assert_eq!((err.status().as_u16(), err.code()), (401, "invalid_signature"));
    let current = TestRequest::signed(Choice, &fixture(Choice, "0002_transaction"), "ssm-next", Utc::now());
    let done = pipeline.process(&current.incoming(), Utc::now(), LEASE).await.unwrap();
    assert_eq!((done.outcome, done.verified.secret_index), (Outcome::Accepted, 0));

    let unreadable = payhooks::wiring::pipeline(env(format!("{param}-missing"))).await;
    let err = unreadable.process(&sent.incoming(), Utc::now(), LEASE).await.unwrap_err();
    assert_eq!((err.status().as_u16(), err.code()), (503, "secrets_unavailable"));
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn conditional_updates_hold_on_dynamodb() {
    use payhooks::ports::{EventStore, Insert, RecordState, SignatureStore};
    let stack = Stack::new(false).await;
    let store = payhooks::aws::DynamoDbStore::new(stack.ddb.clone(), stack.table.clone());
    let record = payhooks::ports::EventRecord {
        scheme: payhooks::verify::Scheme::CanonicalSha256Millis,
        dialect: Some(payhooks::verify::Dialect::Java),
        transaction: Some(payhooks::ports::TransactionRef {
            key: "txn#choice#T1".into(),
            step: payhooks::state::Step::Notification { state: "frozen".into(), at_ms: 9 },
        }),
        ..support::marker("e1", 1_000)
    };
    assert_eq!(store.insert(&record).await.unwrap(), Insert::Created);
    assert_eq!(store.load("e1").await.unwrap(), Some(record.clone()), "a stored record reads back whole");
    assert_eq!(store.insert(&record).await.unwrap(), Insert::Created, "the same delivery's put again is its own");
    let another = payhooks::ports::EventRecord { leased_by: "another delivery".into(), ..record.clone() };
    let Insert::Exists(existing) = store.insert(&another).await.unwrap() else {
        panic!("another delivery's put must find the first")
    };
    assert_eq!(
        (existing.state, existing.lease_until_ms, existing.content_hash.as_str()),
        (RecordState::Received, 1_000, "h")
    );
    assert!(!store.take_over("e1", 999, 5_000, "b").await.unwrap(), "a stale expected lease must not win");
    assert!(store.take_over("e1", 1_000, 5_000, "b").await.unwrap());
    assert!(!store.take_over("e1", 1_000, 6_000, "c").await.unwrap(), "only one takeover wins");
    assert!(!store.take_over("e1", 1_000, 5_000, "c").await.unwrap(), "even with the same lease");
    assert!(store.take_over("e1", 1_000, 5_000, "b").await.unwrap(), "the winner's own takeover again is its own");
    store.mark_sent("e1", RecordState::Enqueued, 7).await.unwrap();
    assert_eq!(store.get("e1").await.unwrap().unwrap().state, RecordState::Enqueued);
    assert!(!store.take_over("e1", 5_000, 9_000, "d").await.unwrap(), "an ENQUEUED record is never taken over");
    assert!(!store.take_over("e1", 1_000, 5_000, "b").await.unwrap(), "nor by its last holder");
    store.release("e1").await.unwrap();
    assert_eq!(store.get("e1").await.unwrap().unwrap().lease_until_ms, 5_000, "release leaves ENQUEUED records alone");
    assert_eq!(store.get("nope").await.unwrap(), None);

    let claim = payhooks::ports::SignatureClaim {
        key: "sig#choice#s".into(),
        content_hash: "h1".into(),
        body_ref: "body#choice#h1".into(),
        scheme: Some(payhooks::verify::Scheme::CanonicalSha256Millis),
        secret_index: 1,
        dialect: Some(payhooks::verify::Dialect::Compact),
        received_at_ms: 5,
        expires_at: 2,
    };
    assert_eq!(store.signature("sig#choice#s").await.unwrap(), None);
    assert_eq!(store.claim_signature(&claim).await.unwrap(), None, "first use");
    assert_eq!(store.signature("sig#choice#s").await.unwrap().as_ref(), Some(&claim), "a claim reads back whole");
    let other = payhooks::ports::SignatureClaim { content_hash: "h2".into(), ..claim.clone() };
    assert_eq!(store.claim_signature(&other).await.unwrap(), Some(claim), "a later claim gets the first one");
}

/// Warm-up during init: secrets from SSM and both connections ready before the first callback; and when a part
/// fails (here a queue that does not exist), the warm-up names it and says why, within its budget.
#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn warm_up_loads_secrets_and_opens_connections_within_its_budget() {
    let stack = Stack::new(true).await;
    assert_eq!(stack.pipeline(Choice).warm_up(std::time::Duration::from_secs(2)).await, Ok(()));

    let unreachable = stack.pipeline_with(Choice, &stack.table, "http://127.0.0.1:9/000000000000/nowhere.fifo");
    let started = std::time::Instant::now();
    let failures = unreachable.warm_up(std::time::Duration::from_millis(300)).await.unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "bounded: {:?}", started.elapsed());
    // Only the queue failed (the client reaches moto, which has no such queue), and it says why, not just
    // the SDK's "service error".
    assert_eq!(failures.iter().map(|(part, _)| *part).collect::<Vec<_>>(), [WarmUpPart::Queue], "{failures:?}");
    assert_eq!(
        failures[0].1,
        "event queue send failed: service error: QueueDoesNotExist: The specified queue does not exist."
    );
}
