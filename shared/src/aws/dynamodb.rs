use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use crate::error::StoreError;
use crate::ports::{EventRecord, IdempotencyStore, Insert, RecordState, StoredState};

/// The events table: string partition key `pk` = event id; `expires_at` is its TTL attribute.
#[derive(Debug, Clone)]
pub struct DynamoDbIdempotencyStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

type Item = HashMap<String, AttributeValue>;

impl DynamoDbIdempotencyStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self { client, table }
    }

    /// A conditional update of one record; `Ok(false)` when the condition did not hold.
    async fn update(
        &self,
        operation: &'static str,
        id: &str,
        set: &str,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<bool, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(id))
            .update_expression(set)
            .condition_expression(condition)
            .expression_attribute_names("#state", "state");
        for (name, value) in values {
            update = update.expression_attribute_values(*name, value.clone());
        }
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(store_error(operation, e)),
        }
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn state(value: RecordState) -> AttributeValue {
    s(value.as_str())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn store_error<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
where
    SdkError<E, R>: std::error::Error + Send + Sync + 'static,
{
    StoreError { operation, source: Box::new(err) }
}

fn to_item(r: &EventRecord) -> Item {
    let headers: HashMap<String, AttributeValue> = r.headers.iter().map(|(k, v)| (k.clone(), s(v))).collect();
    HashMap::from([
        ("pk".to_owned(), s(&r.id)),
        ("provider".to_owned(), s(r.provider.name())),
        ("type".to_owned(), s(&r.event_type)),
        ("state".to_owned(), state(r.state)),
        ("received_at".to_owned(), n(r.received_at_ms)),
        ("lease_until".to_owned(), n(r.lease_until_ms)),
        ("raw_body".to_owned(), s(&r.raw_body)),
        ("headers".to_owned(), AttributeValue::M(headers)),
        ("scheme".to_owned(), s(r.scheme.as_str())),
        ("secret_index".to_owned(), n(r.secret_index as i64)),
        ("content_hash".to_owned(), s(&r.content_hash)),
        ("expires_at".to_owned(), n(r.expires_at)),
    ])
}

fn from_item(item: &Item) -> Option<StoredState> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    Some(StoredState {
        state: RecordState::parse(&text("state")?)?,
        lease_until_ms: item.get("lease_until").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0),
        content_hash: text("content_hash").unwrap_or_default(),
    })
}

#[async_trait]
impl IdempotencyStore for DynamoDbIdempotencyStore {
    async fn insert(&self, record: &EventRecord) -> Result<Insert, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Insert::Created),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_conditional_check_failed_exception()) => {
                let old = e.into_service_error();
                let from_error = match &old {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(ccf) => {
                        ccf.item().and_then(from_item)
                    }
                    _ => None,
                };
                match from_error {
                    Some(state) => Ok(Insert::Exists(state)),
                    // Older emulators do not return the old item: read it.
                    None => self.get(&record.id).await?.map(Insert::Exists).ok_or_else(|| StoreError {
                        operation: "PutItem",
                        source: "record exists but could not be read".into(),
                    }),
                }
            }
            Err(e) => Err(store_error("PutItem", e)),
        }
    }

    async fn get(&self, id: &str) -> Result<Option<StoredState>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        Ok(out.item().and_then(from_item))
    }

    async fn take_over(&self, id: &str, expired_lease_ms: i64, new_lease_ms: i64) -> Result<bool, StoreError> {
        self.update(
            "UpdateItem",
            id,
            "SET lease_until = :new",
            "#state = :received AND lease_until = :old",
            &[(":new", n(new_lease_ms)), (":old", n(expired_lease_ms)), (":received", state(RecordState::Received))],
        )
        .await
    }

    async fn mark_enqueued(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        // A failed condition means the record is already ENQUEUED: nothing to do.
        self.update(
            "UpdateItem",
            id,
            "SET #state = :enqueued, enqueued_at = :at",
            "#state = :received",
            &[
                (":enqueued", state(RecordState::Enqueued)),
                (":at", n(at_ms)),
                (":received", state(RecordState::Received)),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn release(&self, id: &str) -> Result<(), StoreError> {
        self.update(
            "UpdateItem",
            id,
            "SET lease_until = :zero",
            "#state = :received",
            &[(":zero", n(0)), (":received", state(RecordState::Received))],
        )
        .await
        .map(|_| ())
    }
}
