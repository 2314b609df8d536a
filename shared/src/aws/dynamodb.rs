use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use crate::error::StoreError;
use crate::ports::{BodyRecord, EventRecord, IdempotencyStore, Insert, RecordState, StoredState};
use crate::provider::Provider;
use crate::verify::{Dialect, Scheme};

/// The events table: string partition key `pk`; `expires_at` is its TTL attribute. It holds four kinds of
/// item: event markers (`pk` = event id), conflict records (`{id}#conflict#{hash}`), raw bodies
/// (`body#<provider>#<sha256>`) and one-time signature records (`sig#<provider>#<sha256>`).
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

    async fn get_item(&self, id: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        Ok(out.item)
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
    let mut item = HashMap::from([
        ("pk".to_owned(), s(&r.id)),
        ("provider".to_owned(), s(r.provider.name())),
        ("type".to_owned(), s(&r.event_type)),
        ("state".to_owned(), state(r.state)),
        ("received_at".to_owned(), n(r.received_at_ms)),
        ("lease_until".to_owned(), n(r.lease_until_ms)),
        ("body_ref".to_owned(), s(&r.body_ref)),
        ("scheme".to_owned(), s(r.scheme.as_str())),
        ("secret_index".to_owned(), n(r.secret_index as i64)),
        ("content_hash".to_owned(), s(&r.content_hash)),
        ("group".to_owned(), s(&r.group)),
        ("envelope".to_owned(), s(&r.envelope)),
        ("expires_at".to_owned(), n(r.expires_at)),
    ]);
    if let Some(dialect) = r.dialect {
        item.insert("dialect".to_owned(), s(dialect.as_str()));
    }
    if let Some((reason, field)) = &r.quarantine {
        item.insert("reason".to_owned(), s(reason));
        item.insert("field".to_owned(), s(field));
    }
    item
}

fn text<'i>(item: &'i Item, key: &str) -> Option<&'i str> {
    item.get(key).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn number(item: &Item, key: &str) -> i64 {
    item.get(key).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn state_of(item: &Item) -> Option<StoredState> {
    Some(StoredState {
        state: RecordState::parse(text(item, "state")?)?,
        lease_until_ms: number(item, "lease_until"),
        content_hash: text(item, "content_hash").unwrap_or_default().to_owned(),
    })
}

fn from_item(item: &Item) -> Option<EventRecord> {
    let owned = |key: &str| text(item, key).map(str::to_owned);
    let scheme = text(item, "scheme")?;
    Some(EventRecord {
        id: owned("pk")?,
        provider: text(item, "provider")?.parse::<Provider>().ok()?,
        event_type: owned("type")?,
        state: RecordState::parse(text(item, "state")?)?,
        received_at_ms: number(item, "received_at"),
        lease_until_ms: number(item, "lease_until"),
        body_ref: owned("body_ref")?,
        scheme: Scheme::parse(scheme)?,
        secret_index: number(item, "secret_index") as usize,
        dialect: text(item, "dialect").and_then(Dialect::parse),
        content_hash: owned("content_hash")?,
        group: owned("group")?,
        envelope: owned("envelope")?,
        quarantine: owned("reason").zip(owned("field")),
        expires_at: number(item, "expires_at"),
    })
}

#[async_trait]
impl IdempotencyStore for DynamoDbIdempotencyStore {
    async fn put_body(&self, body: &BodyRecord) -> Result<(), StoreError> {
        let headers: HashMap<String, AttributeValue> = body.headers.iter().map(|(k, v)| (k.clone(), s(v))).collect();
        let item = HashMap::from([
            ("pk".to_owned(), s(&body.key)),
            ("provider".to_owned(), s(body.provider.name())),
            ("raw_body".to_owned(), s(&body.raw_body)),
            ("headers".to_owned(), AttributeValue::M(headers)),
            ("received_at".to_owned(), n(body.received_at_ms)),
            ("expires_at".to_owned(), n(body.expires_at)),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_error("PutItem", e))?;
        Ok(())
    }

    async fn get_body(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.get_item(key).await?.and_then(|item| text(&item, "raw_body").map(str::to_owned)))
    }

    async fn claim_signature(&self, key: &str, content_hash: &str, expires_at: i64) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(key))
            .item("content_hash", s(content_hash))
            .item("expires_at", n(expires_at))
            .condition_expression("attribute_not_exists(pk) OR content_hash = :hash")
            .expression_attribute_values(":hash", s(content_hash))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(store_error("PutItem", e)),
        }
    }

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
                        ccf.item().and_then(state_of)
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
        Ok(self.get_item(id).await?.as_ref().and_then(state_of))
    }

    async fn load(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        Ok(self.get_item(id).await?.as_ref().and_then(from_item))
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

    async fn mark_sent(&self, id: &str, sent: RecordState, at_ms: i64) -> Result<(), StoreError> {
        // A failed condition means the record is already sent: nothing to do.
        self.update(
            "UpdateItem",
            id,
            "SET #state = :sent, sent_at = :at",
            "#state = :received",
            &[(":sent", state(sent)), (":at", n(at_ms)), (":received", state(RecordState::Received))],
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
