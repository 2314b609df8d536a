//! The reference consumer (`examples/consumer`) against moto, under SQS FIFO's real semantics: the demo's
//! messages (every fixture of every provider, as `make demo` sends them) and a quarantine, each delivered
//! twice, groups interleaved at random, batches of 10, a ledger failure injected mid-batch (the rest of
//! that group must wait and come again, in order). Every payment must be credited exactly once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use chrono::Utc;
use payhooks::testing::{all_fixtures, fixture, TestPipeline, TestRequest, SECRET};
use payhooks::Provider::{self, *};
use payhooks_consumer_example::{Applied, Change, Consumer, ConsumerError, DynamoDbLedger, Ledger, SqsHumans};
use payhooks_events::{Data, Event, Status};

use crate::support::{sdk, unique, LEASE};

/// The ledger, failing once on the chosen event (a DynamoDB fault in the middle of a batch).
struct FailingOnce {
    inner: DynamoDbLedger,
    fail_on: String,
    failures: AtomicUsize,
}

#[async_trait]
impl Ledger for FailingOnce {
    async fn apply(&self, event_id: &str, change: &Change) -> Result<Applied, ConsumerError> {
        if event_id == self.fail_on && self.failures.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(ConsumerError::Ledger("injected: the table did not answer".into()));
        }
        self.inner.apply(event_id, change).await
    }
}

/// One queued message: its body, group and a message id per delivery.
#[derive(Clone)]
struct Queued {
    body: String,
    group: String,
}

/// A small deterministic random sequence (the test replays the same interleaving every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n
    }
}

/// The demo's messages in the order payhooks sent them, and the group of each.
async fn demo_messages() -> Vec<Queued> {
    let mut out = Vec::new();
    for provider in Provider::ALL {
        let t = TestPipeline::new(provider);
        let mut bodies: Vec<String> = all_fixtures(provider).into_iter().map(|(_, body)| body).collect();
        if provider == M2Money {
            bodies.push(fixture(M2Money, "payout_success").replace("\"1500.00\"", "\"1,750.00\""));
        }
        for body in &bodies {
            let now = Utc::now();
            t.pipeline.process(&TestRequest::signed(provider, body, SECRET, now).incoming(), now, LEASE).await.unwrap();
        }
        out.extend(
            t.publisher
                .messages()
                .into_iter()
                .map(|m| Queued { body: m.body, group: format!("{provider}/{}", m.group) }),
        );
    }
    out
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn the_reference_consumer_credits_each_payment_once_under_fifo_redelivery() {
    let sdk = sdk().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let table = unique("ledger");
    ddb.create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .send()
        .await
        .unwrap();
    let humans_url = crate::support::fifo_queue(&sqs, "humans").await;

    let sent = demo_messages().await;
    let events: Vec<Event> = sent.iter().map(|q| Event::from_json(&q.body).unwrap()).collect();
    // The failure lands on a payment with more events after it in its group (M2Money's: failure, reversal, success).
    let fail_on = events.iter().find(|e| e.event_type == "m2money.payout.failed").unwrap().id.clone();
    let consumer = Consumer {
        ledger: FailingOnce {
            inner: DynamoDbLedger { client: ddb.clone(), table: table.clone() },
            fail_on: fail_on.clone(),
            failures: AtomicUsize::new(0),
        },
        humans: SqsHumans { client: sqs.clone(), queue_url: humans_url.clone() },
    };

    // Each message twice (a provider retry, SQS's at-least-once), in its group's order; groups interleaved.
    let mut groups: BTreeMap<String, VecDeque<Queued>> = BTreeMap::new();
    for q in sent.iter().chain(sent.iter()) {
        groups.entry(q.group.clone()).or_default().push_back(q.clone());
    }
    let mut rng = Lcg(20_261_207);
    let (mut delivered, mut batches, mut reported_failed, mut next_id) = (0, 0, 0, 0);
    while groups.values().any(|g| !g.is_empty()) {
        // A batch of up to 10: groups picked at random, each giving its oldest messages in order.
        let mut batch: Vec<(String, Queued)> = Vec::new();
        let mut open: Vec<String> = groups.iter().filter(|(_, g)| !g.is_empty()).map(|(k, _)| k.clone()).collect();
        // The group of the failing event comes first and whole, so the failure has later messages to block.
        let failing = |g: &String| groups[g].iter().any(|q| q.body.contains(&format!("\"id\":\"{fail_on}\"")));
        open.sort_by_key(|g| !failing(g));
        while batch.len() < 10 && !open.is_empty() {
            let whole = failing(&open[0]);
            let group = if whole { open.remove(0) } else { open.remove(rng.below(open.len())) };
            let take = if whole { 10 } else { 1 + rng.below(3) };
            for q in groups[&group].iter().take(take) {
                if batch.len() < 10 {
                    next_id += 1;
                    batch.push((format!("m{next_id}"), q.clone()));
                }
            }
        }
        let mut event = SqsEvent::default();
        for (id, q) in &batch {
            let mut message = SqsMessage::default();
            message.message_id = Some(id.clone());
            message.body = Some(q.body.clone());
            message.attributes.insert("MessageGroupId".into(), q.group.clone());
            event.records.push(message);
        }
        let response = consumer.handle(event).await;
        let failed: BTreeSet<String> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        // FIFO: after a failure, nothing later of that group may have been taken.
        let mut seen_failure: BTreeSet<&str> = BTreeSet::new();
        for (id, q) in &batch {
            if seen_failure.contains(q.group.as_str()) {
                assert!(failed.contains(id), "a message after its group's failure was not reported failed");
            }
            if failed.contains(id) {
                seen_failure.insert(&q.group);
            }
        }
        // What succeeded leaves its queue; what failed comes again, first, in order.
        for (id, q) in &batch {
            if !failed.contains(id) {
                let head = groups.get_mut(&q.group).unwrap().pop_front().unwrap();
                assert_eq!(head.body, q.body, "in order");
            }
        }
        delivered += batch.len();
        reported_failed += failed.len();
        batches += 1;
        assert!(batches < 1_000, "the consumer makes no progress");
    }
    assert!(reported_failed >= 2, "the injected failure blocked the rest of its group ({reported_failed})");

    // What the ledger must hold: one credit per payment whose transaction succeeded, the amount as sent.
    let mut want: BTreeMap<String, String> = BTreeMap::new();
    let mut to_humans: BTreeSet<String> = BTreeSet::new();
    for e in &events {
        match &e.data {
            Data::Quarantine(_) => {
                to_humans.insert(e.id.clone());
            }
            Data::Event(d) if d.contradiction == Some(true) => {
                to_humans.insert(e.id.clone());
            }
            Data::Event(d) => {
                if d.status == Status::Succeeded
                    && d.transaction_status == Some(Some(Status::Succeeded))
                    && d.regression != Some(true)
                {
                    if let Some(amount) = &d.amount {
                        want.entry(format!("credit#{}#{}", d.provider.as_str(), d.reference))
                            .or_insert_with(|| amount.clone());
                    }
                }
            }
        }
    }
    let items = ddb.scan().table_name(&table).send().await.unwrap().items.unwrap_or_default();
    let text = |i: &std::collections::HashMap<String, AttributeValue>, k: &str| match i.get(k) {
        Some(AttributeValue::S(s)) | Some(AttributeValue::N(s)) => s.clone(),
        _ => String::new(),
    };
    let credits: BTreeMap<String, String> = items
        .iter()
        .filter(|i| text(i, "pk").starts_with("credit#"))
        .map(|i| (text(i, "pk"), text(i, "amount")))
        .collect();
    let seen = items.iter().filter(|i| text(i, "pk").starts_with("seen#")).count();
    // DynamoDB keeps numbers' value, not their text: compare amounts as decimals.
    let decimal = |s: &str| s.trim_end_matches('0').trim_end_matches('.').to_owned();
    assert_eq!(credits.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "each payment credited once");
    for (k, amount) in &want {
        assert_eq!(decimal(&credits[k]), decimal(amount), "{k}");
    }
    // Each provider's balance is the sum of its credits, each counted once (exact decimals, scaled by 10^4).
    let scaled = |s: &str| -> i128 {
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        whole.parse::<i128>().unwrap() * 10_000 + format!("{frac:0<4}")[..4].parse::<i128>().unwrap()
    };
    let mut want_balance: BTreeMap<String, i128> = BTreeMap::new();
    for (k, amount) in &want {
        *want_balance.entry(k.split('#').nth(1).unwrap().to_owned()).or_default() += scaled(amount);
    }
    let balances: BTreeMap<String, i128> = items
        .iter()
        .filter_map(|i| Some((text(i, "pk").strip_prefix("balance#")?.to_owned(), scaled(&text(i, "amount")))))
        .collect();
    assert_eq!(balances, want_balance, "balances: each credit once");
    let distinct: BTreeSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(seen, distinct.len(), "every event recorded once");
    let mut human_ids = BTreeSet::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&humans_url)
            .max_number_of_messages(10)
            .visibility_timeout(300)
            .send()
            .await
            .unwrap();
        let batch = out.messages.unwrap_or_default();
        if batch.is_empty() {
            break;
        }
        for m in batch {
            let note: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
            assert!(human_ids.insert(note["event"]["id"].as_str().unwrap().to_owned()), "a person hears of each once");
        }
    }
    assert_eq!(human_ids, to_humans, "quarantines and contradictions, and nothing else, went to a person");
    println!(
        "consumer: {} messages ({} distinct events) delivered {delivered} times in {batches} batches, \
         {reported_failed} reported failed; {} payments credited once each; {} to a person",
        sent.len() * 2,
        distinct.len(),
        credits.len(),
        human_ids.len()
    );
}
