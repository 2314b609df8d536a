//! `payhooks-admin` against moto: each command on real records and queues.

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName;
use chrono::Utc;
use payhooks::config::VerifyConfig;
use payhooks::ports::RecordState;
use payhooks::testing::{fixture, TestRequest, SECRET};
use payhooks::Provider::{self, *};
use payhooks_admin::{verify, Admin};

use crate::support::{Stack, LEASE};

fn admin(stack: &Stack) -> Admin {
    let queues: HashMap<Provider, String> = Provider::ALL.into_iter().map(|p| (p, stack.queue_url.clone())).collect();
    Admin::new(stack.ddb.clone(), stack.sqs.clone(), stack.table.clone(), queues)
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn inspect_shows_the_record_its_transaction_and_its_conflicts() {
    let stack = Stack::new(true).await;
    let pipeline = stack.pipeline(M2Money);
    let first = TestRequest::signed_fixture(M2Money, "payout_success", Utc::now());
    pipeline.process(&first.incoming(), Utc::now(), LEASE).await.unwrap();
    let changed = fixture(M2Money, "payout_success").replace("1500.00", "1600.00");
    pipeline
        .process(&TestRequest::signed(M2Money, &changed, SECRET, Utc::now()).incoming(), Utc::now(), LEASE)
        .await
        .unwrap();

    let found = admin(&stack).inspect("m2money:payout:ORD2025112200017:payout.transfer.success", false).await.unwrap();
    let r = &found.record;
    assert_eq!(r["state"], "ENQUEUED");
    assert_eq!((r["scheme"].as_str(), r["secret_index"].as_i64()), (Some("m2money-hmac-sha256"), Some(0)));
    assert_eq!(r["content_hash"].as_str().unwrap().len(), 64);
    assert!(r["received_at"].as_str().unwrap().starts_with("20"), "times are readable");
    assert!(!r.contains_key("raw_body") && !r.contains_key("envelope"));
    assert_eq!(found.transaction.as_ref().unwrap()["status"], "succeeded");
    assert_eq!(found.conflicts.len(), 1);
    assert_eq!(found.conflicts[0]["state"], "CONFLICT");
    let printed = serde_json::to_string(&found).unwrap();
    assert!(!printed.contains(SECRET), "never a secret");
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn list_reads_the_index_for_received_and_scans_for_the_rest() {
    let stack = Stack::new(true).await;
    let pipeline = stack.pipeline(Lipia);
    for name in ["stk_success", "stk_failed"] {
        pipeline
            .process(&TestRequest::signed_fixture(Lipia, name, Utc::now()).incoming(), Utc::now(), LEASE)
            .await
            .unwrap();
    }
    let broken = stack.pipeline_with(Lipia, &stack.table, &format!("{}-missing", stack.queue_url));
    let stuck = TestRequest::signed_fixture(Lipia, "stk_success_unwrapped", Utc::now());
    assert!(broken.process(&stuck.incoming(), Utc::now(), LEASE).await.is_err());

    let admin = admin(&stack);
    let received = admin.list(Lipia, RecordState::Received, None).await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["pk"], "lipia:stk:ws_CO_22112025102000777777:success");
    assert_eq!(admin.list(Lipia, RecordState::Enqueued, None).await.unwrap().len(), 2);
    assert_eq!(admin.list(Muda, RecordState::Enqueued, None).await.unwrap().len(), 0, "by provider");
    let future = Utc::now() + chrono::Duration::hours(1);
    assert!(admin.list(Lipia, RecordState::Enqueued, Some(future)).await.unwrap().is_empty(), "--since filters");
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn replay_sends_the_stored_event_again_past_fifo_deduplication() {
    let stack = Stack::new(true).await;
    let req = TestRequest::signed_fixture(Niobi, "payin_ussd_push", Utc::now());
    stack.pipeline(Niobi).process(&req.incoming(), Utc::now(), LEASE).await.unwrap();
    let id = "niobi:payin:A7KQ2M9XW001:000000";
    let admin = admin(&stack);
    let plan = admin.replay_plan(id, Utc::now()).await.unwrap();
    assert_eq!(plan.body["id"], id);
    assert!(plan.body["replayed"].as_str().unwrap().ends_with('Z'));
    assert_eq!(plan.body["data"]["transaction_status"], "succeeded");
    assert_eq!(plan.body["data"]["payload"]["params"]["depositId"], "A7KQ2M9XW001", "with its stored payload");
    assert_ne!(plan.deduplication_id, id);
    admin.replay(&plan).await.unwrap();
    // Both in the transaction's group: the original, then the replay (past the 5-minute deduplication window;
    // a plan alone, as `--dry-run` shows it, sent nothing).
    let messages = stack.messages().await;
    assert_eq!(messages.len(), 2, "the replay got past FIFO deduplication");
    assert!(serde_json::from_str::<serde_json::Value>(messages[0].body().unwrap()).unwrap().get("replayed").is_none());
    let body: serde_json::Value = serde_json::from_str(messages[1].body().unwrap()).unwrap();
    assert_eq!((body["id"].as_str(), body["replayed"].is_string()), (Some(id), true));
    assert_eq!(
        admin
            .ids_since(
                Niobi,
                &[RecordState::Enqueued, RecordState::Quarantined],
                Utc::now() - chrono::Duration::hours(1)
            )
            .await
            .unwrap(),
        [id]
    );
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn redrive_moves_the_dead_letter_queue_back() {
    let stack = Stack::new(true).await;
    let dlq = crate::support::fifo_queue(&stack.sqs, "dlq").await;
    let dlq_arn = stack
        .sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let policy = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}).to_string();
    stack
        .sqs
        .set_queue_attributes()
        .queue_url(&stack.queue_url)
        .attributes(QueueAttributeName::RedrivePolicy, policy)
        .send()
        .await
        .unwrap();
    for i in 0..3 {
        stack
            .sqs
            .send_message()
            .queue_url(&dlq)
            // A message as payhooks sends one (what a redrive moves back is held to the contract too).
            .message_body(format!(
                r#"{{"specversion":"1.0","id":"choice:0002:E{i}","source":"payhooks/choice","type":"choice.transaction.succeeded","time":"2026-12-07T00:00:00.000Z","subject":"R","datacontenttype":"application/json","data":{{"provider":"choice","kind":"transaction","reference":"R","merchant_reference":null,"status":"succeeded","provider_status":"8","amount":"1.00","currency":"KES","payload":{{}}}}}}"#
            ))
            .message_group_id("g")
            // At SQS's limit of 128 characters: what the redrive sends must stay within it.
            .message_deduplication_id(format!("{}{i}", "e".repeat(127)))
            .send()
            .await
            .unwrap();
    }
    let done = admin(&stack).redrive(Choice).await.unwrap();
    assert_eq!((done.moved, done.method), (3, "receive/send/delete"));
    let moved = stack.messages().await;
    assert_eq!(moved.len(), 3);
    for m in &moved {
        let dedup = &m.attributes().unwrap()[&aws_sdk_sqs::types::MessageSystemAttributeName::MessageDeduplicationId];
        assert!(dedup.len() <= 128, "{dedup}");
    }
    let left = stack.sqs.receive_message().queue_url(&dlq).wait_time_seconds(0).send().await.unwrap();
    assert!(left.messages.unwrap_or_default().is_empty(), "the DLQ is empty");
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn verify_says_what_payhooks_would_do_and_masks_the_secret() {
    let now = Utc::now();
    let secrets = payhooks::testing::secrets().into();
    let config = VerifyConfig::default();
    let genuine = TestRequest::signed_fixture(Choice, "0002_transaction", now);
    let ok = verify(Choice, &config, &secrets, &genuine.body, &[], None, now).unwrap();
    assert_eq!((ok.status, ok.scheme.as_deref(), ok.dialect.as_deref()), (200, Some("choice-sha256"), Some("postman")));
    assert_eq!(ok.events[0]["id"], "choice:0002:BAAS000220251122000001");

    let forged = genuine.body_text().replace("1500.00", "9500.00");
    let refused = verify(Choice, &config, &secrets, forged.as_bytes(), &[], None, now).unwrap();
    assert_eq!((refused.status, refused.error.as_deref()), (401, Some("invalid_signature")));
    assert_eq!(refused.canonical.len(), 5, "one signed string per dialect");
    let postman = refused.canonical[0].1.as_deref().unwrap();
    assert!(postman.contains("senderKey=<secret>") && postman.contains("params.amount=9500.00"), "{postman}");
    assert!(!serde_json::to_string(&refused).unwrap().contains(SECRET), "the secret is masked");
    assert!(!refused.accepted(), "a refusal is not a pass (the command exits 1)");
    assert_eq!(refused.would_pass_with, None, "a tampered body verifies under no setting");

    // Signed with the other Niobi hash, or in a dialect left out of the configuration: it says which setting
    // would have verified it.
    let hmac = payhooks::signing::SignOptions {
        canonical_hash: payhooks::verify::CanonicalHash::HmacSha256,
        ..Default::default()
    };
    let niobi = TestRequest::from_signed(
        Niobi,
        &payhooks::testing::sign_with(Niobi, &fixture(Niobi, "payin_ussd_push"), SECRET, &hmac, now),
    );
    let refused = verify(Niobi, &config, &secrets, &niobi.body, &[], None, now).unwrap();
    assert_eq!(refused.would_pass_with.as_deref(), Some("NIOBI_SIGNATURE_HASH=hmac-sha256"));
    let postman_only = VerifyConfig { dialects: vec![payhooks::verify::Dialect::Postman], ..VerifyConfig::default() };
    // `compact` leaves the `null` out of what it signs, so the Postman string differs.
    let compact = payhooks::signing::SignOptions { dialect: payhooks::verify::Dialect::Compact, ..Default::default() };
    let with_null = fixture(Choice, "0002_transaction").replace("\"errorCode\": \"\"", "\"errorCode\": null");
    let choice =
        TestRequest::from_signed(Choice, &payhooks::testing::sign_with(Choice, &with_null, SECRET, &compact, now));
    let refused = verify(Choice, &postman_only, &secrets, &choice.body, &[], None, now).unwrap();
    assert_eq!(refused.would_pass_with.as_deref(), Some("CANONICAL_DIALECTS with compact"));

    let lipia = TestRequest::signed_fixture(Lipia, "stk_success", now);
    let headers = [("Content-Type".to_owned(), "application/json".to_owned())];
    let by_token = verify(Lipia, &config, &secrets, &lipia.body, &headers, Some(&lipia.path), now).unwrap();
    assert_eq!((by_token.status, by_token.scheme.as_deref()), (200, Some("url-token")));
}

/// A body an earlier version quarantined (an event shape its model did not know), as that version stored it:
/// the body, and the quarantine record pointing to it.
async fn quarantined_by_an_earlier_version(stack: &Stack, provider: Provider, body: &str) -> String {
    use payhooks::ports::{BodyRecord, BodyStore, EventStore};
    let store = stack.store();
    let hash = format!("{:016x}", body.len() as u64 * 0x9e37_79b9);
    let body_ref = format!("body#{provider}#{hash}");
    let now = Utc::now();
    store
        .put_body(&BodyRecord {
            key: body_ref.clone(),
            provider,
            raw_body: body.as_bytes().to_vec(),
            headers: Vec::new(),
            received_at_ms: now.timestamp_millis(),
            expires_at: now.timestamp() + 86_400,
        })
        .await
        .unwrap();
    let id = format!("{provider}:quarantined:{hash}");
    let mut record = crate::support::marker(&id, 0);
    record.provider = provider;
    record.event_type = format!("{provider}.quarantined");
    record.body_ref = body_ref;
    record.scheme = payhooks::verify::Scheme::BodyHmacSha256;
    record.quarantine = Some(("unknown_shape".into(), "event".into()));
    record.state = RecordState::Quarantined;
    store.insert(&record).await.unwrap();
    id
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn reprocess_turns_a_quarantined_body_into_its_events_once() {
    let stack = Stack::new(true).await;
    let body = fixture(M2Money, "payout_success");
    let id = quarantined_by_an_earlier_version(&stack, M2Money, &body).await;
    let admin = admin(&stack);
    let event = "m2money:payout:ORD2025112200017:payout.transfer.success";

    let plan = admin.reprocess(std::slice::from_ref(&id), false, Default::default(), Utc::now()).await.unwrap();
    assert_eq!(plan[0].events, [(event.to_owned(), "m2money.payout.succeeded".to_owned())], "{plan:?}");
    assert!(plan[0].still_quarantined.is_empty() && plan[0].counts.is_none());
    assert!(stack.messages().await.is_empty(), "a dry run sends nothing");
    assert_eq!(stack.event_records().await.len(), 1, "and records nothing");

    let done = admin.reprocess(std::slice::from_ref(&id), true, Default::default(), Utc::now()).await.unwrap();
    assert_eq!(done[0].counts.unwrap().accepted, 1);
    let messages = stack.messages().await;
    assert_eq!(messages.len(), 1);
    let message: serde_json::Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!((message["id"].as_str(), message["type"].as_str()), (Some(event), Some("m2money.payout.succeeded")));
    assert_eq!(crate::support::text(&stack.record(event).await, "state"), "ENQUEUED");

    // Again, and the provider's own retry of the same body: each a duplicate, nothing sent twice.
    let again = admin.reprocess(std::slice::from_ref(&id), true, Default::default(), Utc::now()).await.unwrap();
    assert_eq!((again[0].counts.unwrap().accepted, again[0].counts.unwrap().duplicate), (0, 1));
    let retry = TestRequest::signed(M2Money, &body, SECRET, Utc::now());
    stack.pipeline(M2Money).process(&retry.incoming(), Utc::now(), LEASE).await.unwrap();
    assert!(stack.messages().await.is_empty(), "no message after the first (which the last read holds)");

    // What is not a quarantine is refused with what to do.
    let err = admin.reprocess(&[event.to_owned()], false, Default::default(), Utc::now()).await.unwrap_err();
    assert!(err.to_string().contains("not a quarantine record"), "{err}");
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn inspect_body_shows_the_stored_body_as_received() {
    let stack = Stack::new(true).await;
    let sent = TestRequest::signed_fixture(M2Money, "payout_success", Utc::now());
    stack.pipeline(M2Money).process(&sent.incoming(), Utc::now(), LEASE).await.unwrap();
    let id = "m2money:payout:ORD2025112200017:payout.transfer.success";
    let found = admin(&stack).inspect(id, true).await.unwrap();
    assert_eq!(found.body.as_deref().map(str::as_bytes), Some(&sent.body[..]));
    assert!(admin(&stack).inspect(id, false).await.unwrap().body.is_none());
}

/// `doctor` on a local stack (the environment `make dev` writes): the table, queues, inline secrets and each
/// function's configuration, every failure named; no alarms to check.
#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn doctor_checks_a_local_stack_from_its_environment() {
    use payhooks_admin::deployment::Deployment;
    use payhooks_admin::doctor::{doctor, Clients};
    let stack = Stack::new(true).await;
    let mut env = std::collections::BTreeMap::from([("EVENTS_TABLE".to_owned(), stack.table.clone())]);
    for provider in Provider::ALL {
        let name = provider.name().to_ascii_uppercase();
        env.insert(format!("{name}_EVENTS_QUEUE_URL"), stack.queue_url.clone());
        if provider != Muda {
            env.insert(format!("{name}_WEBHOOK_SECRETS"), format!("demo-{}", provider.name()));
        }
    }
    let sdk = crate::support::sdk().await;
    let clients = Clients {
        ddb: stack.ddb.clone(),
        sqs: stack.sqs.clone(),
        ssm: payhooks::aws::SsmClient::new(&sdk),
        lambda: aws_sdk_lambda::Client::new(&sdk),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
        cloudformation: aws_sdk_cloudformation::Client::new(&sdk),
    };
    let checks = doctor(&Deployment::Environment(env), &clients).await;
    let find = |name: &str| checks.iter().find(|c| c.check == name).unwrap_or_else(|| panic!("{name}: {checks:?}"));
    // The test table has no time to live (the local stack's has): named, with why it matters.
    assert!(find(&format!("table {}", stack.table)).detail.contains("expires_at"), "{checks:?}");
    let queue = find("niobi queue");
    assert!(!queue.ok && queue.detail.contains("no dead-letter queue"), "{queue:?}");
    assert!(find("niobi secrets").ok && find("niobi configuration").ok, "{checks:?}");
    let muda = find("muda secrets");
    assert!(!muda.ok && muda.detail.contains("WEBHOOK_SECRETS"), "{muda:?}");
    assert!(!find("muda configuration").ok);
    assert!(find("alarms").ok && find("alarms").detail.contains("not checked"));
    assert!(!format!("{checks:?}").contains("demo-niobi"), "no secret in the report");
}
