//! A throwaway table and queue on the local emulator, per test (moto's state is shared by every client).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use chrono::Utc;
use payhooks::aws::{DynamoDbStore, SqsPublisher};
use payhooks::config::{Retention, VerifyConfig};
use payhooks::ports::{EventRecord, RecordState};
use payhooks::testing::StaticSecrets;
use payhooks::{testing, Pipeline, Provider};

pub const LEASE: Duration = Duration::from_secs(10);

pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}-{}", std::process::id(), Utc::now().timestamp_micros(), N.fetch_add(1, Ordering::SeqCst))
}

/// A new FIFO queue named after `prefix` (unique per test); its URL.
pub async fn fifo_queue(sqs: &aws_sdk_sqs::Client, prefix: &str) -> String {
    sqs.create_queue()
        .queue_name(format!("{}.fifo", unique(prefix)))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .expect("create a FIFO queue")
        .queue_url
        .expect("a queue URL")
}

pub async fn sdk() -> aws_types::SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run these tests with `make test`, which starts moto_server"
    );
    payhooks::aws::sdk_config(payhooks::config::TlsRoots::Amazon)
}

pub struct Stack {
    pub ddb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub table: String,
    pub queue_url: String,
}

impl Stack {
    pub async fn new(fifo: bool) -> Self {
        let sdk = sdk().await;
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let table = unique("events");
        let attribute = |name: &str, kind: ScalarAttributeType| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build().unwrap()
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder().attribute_name(name).key_type(kind).build().unwrap()
        };
        // As infra/template.yaml defines it: `pk`, and the sparse `pending-index` the sweeper queries.
        let pending_index = GlobalSecondaryIndex::builder()
            .index_name(payhooks::aws::PENDING_INDEX)
            .key_schema(key("pending", KeyType::Hash))
            .key_schema(key("lease_until", KeyType::Range))
            .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
            .build()
            .unwrap();
        ddb.create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("pk", ScalarAttributeType::S))
            .attribute_definitions(attribute("pending", ScalarAttributeType::S))
            .attribute_definitions(attribute("lease_until", ScalarAttributeType::N))
            .key_schema(key("pk", KeyType::Hash))
            .global_secondary_indexes(pending_index)
            .send()
            .await
            .expect("create table");
        let mut create = sqs.create_queue();
        if fifo {
            create = create
                .queue_name(format!("{}.fifo", unique("q")))
                .attributes(QueueAttributeName::FifoQueue, "true")
                .attributes(QueueAttributeName::ContentBasedDeduplication, "false")
                // As infra/template.yaml: high-throughput FIFO.
                .attributes(QueueAttributeName::DeduplicationScope, "messageGroup")
                .attributes(QueueAttributeName::FifoThroughputLimit, "perMessageGroupId");
        } else {
            create = create.queue_name(unique("q"));
        }
        let queue_url = create.send().await.expect("create queue").queue_url.unwrap();
        Self { ddb, sqs, ssm: aws_sdk_ssm::Client::new(&sdk), table, queue_url }
    }

    pub fn pipeline(&self, provider: Provider) -> Pipeline {
        self.pipeline_with(provider, &self.table, &self.queue_url)
    }

    /// The table's store through the real adapter.
    pub fn store(&self) -> DynamoDbStore {
        DynamoDbStore::new(self.ddb.clone(), self.table.clone())
    }

    /// A pipeline on this queue with `store` (a wrapper of [`Stack::store`]) and `verify`.
    pub fn pipeline_on(
        &self,
        provider: Provider,
        store: Arc<dyn payhooks::ports::Store>,
        verify: VerifyConfig,
    ) -> Pipeline {
        Pipeline::new(
            provider,
            verify,
            Arc::new(StaticSecrets(testing::secrets().into())),
            store,
            Arc::new(SqsPublisher::new(self.sqs.clone(), self.queue_url.clone())),
            Retention::default(),
        )
    }

    pub fn pipeline_with(&self, provider: Provider, table: &str, queue_url: &str) -> Pipeline {
        Pipeline::new(
            provider,
            VerifyConfig::default(),
            Arc::new(StaticSecrets(testing::secrets().into())),
            Arc::new(DynamoDbStore::new(self.ddb.clone(), table.to_owned())),
            Arc::new(SqsPublisher::new(self.sqs.clone(), queue_url.to_owned())),
            Retention::default(),
        )
    }

    /// Every message now in the queue (received once; they stay invisible for the rest of the test).
    pub async fn messages(&self) -> Vec<Message> {
        let mut all = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(300)
                .wait_time_seconds(0)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .expect("receive");
            let batch = out.messages.unwrap_or_default();
            if batch.is_empty() {
                return all;
            }
            // Every message a test reads holds to the published contract (schema and consumer types).
            for message in &batch {
                crate::contract::assert_contract(message.body().unwrap_or_default());
            }
            all.extend(batch);
        }
    }

    pub async fn records(&self) -> Vec<HashMap<String, AttributeValue>> {
        self.ddb
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .send()
            .await
            .expect("scan")
            .items
            .unwrap_or_default()
    }

    /// The event, quarantine and conflict records (not the bodies and signature records).
    pub async fn event_records(&self) -> Vec<HashMap<String, AttributeValue>> {
        self.records().await.into_iter().filter(|r| r.contains_key("state")).collect()
    }

    pub async fn record(&self, id: &str) -> HashMap<String, AttributeValue> {
        self.ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .expect("get")
            .item
            .unwrap_or_else(|| panic!("no record {id}"))
    }
}

/// A Lipia event's marker, `RECEIVED` under a lease that ends at `lease_until_ms`.
pub fn marker(id: &str, lease_until_ms: i64) -> EventRecord {
    EventRecord {
        id: id.to_owned(),
        provider: Provider::Lipia,
        event_type: "lipia.stk.succeeded".into(),
        state: RecordState::Received,
        received_at_ms: 1,
        lease_until_ms,
        // Each marker is its own delivery's.
        leased_by: unique("delivery"),
        body_ref: "body#lipia#b".into(),
        scheme: payhooks::verify::Scheme::UrlToken,
        secret_index: 0,
        dialect: None,
        content_hash: "h".into(),
        group: "g".into(),
        envelope: format!(r#"{{"id":"{id}","data":{{"provider":"lipia"}}}}"#),
        quarantine: None,
        transaction: None,
        expires_at: 2,
    }
}

pub fn text(item: &HashMap<String, AttributeValue>, key: &str) -> String {
    match item.get(key) {
        Some(AttributeValue::S(s)) => s.clone(),
        Some(AttributeValue::N(n)) => n.clone(),
        other => panic!("{key}: {other:?}"),
    }
}
