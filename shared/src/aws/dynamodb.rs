use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue, ReturnValuesOnConditionCheckFailure};

use crate::error::StoreError;
use crate::metrics;
use crate::ports::{
    BodyRecord, BodyStore, EventRecord, EventStore, Insert, RecordState, SignatureClaim, SignatureStore, StoredState,
    TransactionRef, TransactionStore,
};
use crate::provider::Provider;
use crate::state::{payment_view, PaymentStatus, Step, TransactionView};
use crate::verify::{Dialect, Scheme};

/// The table's attribute names, spelled once: the adapter writes and reads them, the admin tool shows them.
pub mod attribute {
    pub const AT: &str = "at";
    pub const BACKED_OFF: &str = "backed_off";
    pub const BODY_REF: &str = "body_ref";
    pub const CONTENT_HASH: &str = "content_hash";
    pub const DIALECT: &str = "dialect";
    pub const ENVELOPE: &str = "envelope";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const FIELD: &str = "field";
    pub const GROUP: &str = "group";
    pub const HEADERS: &str = "headers";
    pub const HELD_BY: &str = "held_by";
    pub const HELD_UNTIL: &str = "held_until";
    pub const LEASE_UNTIL: &str = "lease_until";
    pub const LEASED_BY: &str = "leased_by";
    pub const NOTICE: &str = "notice";
    pub const PENDING: &str = "pending";
    pub const PK: &str = "pk";
    pub const PROVIDER: &str = "provider";
    pub const RANK: &str = "rank";
    pub const RAW_BODY: &str = "raw_body";
    pub const RAW_BYTES: &str = "raw_bytes";
    pub const REASON: &str = "reason";
    pub const RECEIVED_AT: &str = "received_at";
    pub const SCHEME: &str = "scheme";
    pub const SECRET_INDEX: &str = "secret_index";
    pub const STATE: &str = "state";
    pub const STATUS: &str = "status";
    pub const SWEEP_FAILURES: &str = "sweep_failures";
    pub const TXN_AT: &str = "txn_at";
    pub const TXN_KEY: &str = "txn_key";
    pub const TXN_STATE: &str = "txn_state";
    pub const TXN_STATUS: &str = "txn_status";
    pub const TYPE: &str = "type";
    pub const SENT_AT: &str = "sent_at";
    pub const UPDATED_AT: &str = "updated_at";
}

/// The events table: string partition key `pk`; `expires_at` is its TTL attribute. It holds five kinds of
/// item: event markers (`pk` = event id), conflict records (`{id}#conflict#{hash}`), raw bodies
/// (`body#<provider>#<sha256>`), one-time signature records (`sig#<provider>#<sha256>`) and transaction
/// states (`txn#<provider>#<reference>`). Event and quarantine markers still `RECEIVED` carry `pending` (their
/// shard, [`pending_shard`]), the key of the sparse index [`PENDING_INDEX`] (with `lease_until` as its sort
/// key) that the sweeper queries.
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

type Item = HashMap<String, AttributeValue>;

/// The sparse index of event markers still `RECEIVED`: partition key `pending`, sort key `lease_until`.
pub const PENDING_INDEX: &str = "pending-index";

/// How many values `pending` takes. Every event writes the index twice (its marker enters it, then leaves it
/// when marked sent), and DynamoDB gives one partition key value at most 1,000 write units a second: with
/// one value, the whole table would be throttled at about 500 events a second (a Choice batch of a few
/// hundred items, 16 at a time, comes close), and since `lease_until` only grows, splitting that partition
/// by sort key would not help. So the key is sharded ("GSI write sharding" in DynamoDB's best practices) and
/// a sweep queries every shard. Never lowered: markers written before sharding carry "1", one of the shards.
pub const PENDING_SHARDS: u32 = 10;

/// The `pending` value of the marker with this id: `"0"` to `"9"`, the same for the same id (FNV-1a).
pub fn pending_shard(id: &str) -> String {
    let hash = id.bytes().fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193));
    (hash % PENDING_SHARDS).to_string()
}

/// Every value of `pending`: what a reader of the whole index queries.
pub fn pending_shards() -> impl Iterator<Item = String> {
    (0..PENDING_SHARDS).map(|shard| shard.to_string())
}

impl DynamoDbStore {
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
        Ok(self.update_or_old(operation, id, set, condition, values).await?.is_ok())
    }

    /// A conditional update of one record; `Err(the item as it stood)` when the condition did not hold.
    async fn update_or_old(
        &self,
        operation: &'static str,
        id: &str,
        set: &str,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<Result<(), Option<Item>>, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attribute::PK, s(id))
            .update_expression(set)
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        // DynamoDB refuses a name placeholder the expressions do not use.
        if set.contains("#state") || condition.contains("#state") {
            update = update.expression_attribute_names("#state", attribute::STATE);
        }
        for (name, value) in values {
            update = update.expression_attribute_values(*name, value.clone());
        }
        Ok(conditional(operation, metrics::store_call(update.send()).await)?.map(|_| ()))
    }

    async fn get_item(&self, id: &str) -> Result<Option<Item>, StoreError> {
        let get = self.client.get_item().table_name(&self.table).key(attribute::PK, s(id)).consistent_read(true);
        let out = metrics::store_call(get.send()).await.map_err(|e| store_error("GetItem", e))?;
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

/// A write error that may be its condition failing, with the item as it stood then.
trait ConditionFailed: Sized {
    fn is_condition_failed(&self) -> bool;
    /// The item as it stood when the condition failed, where DynamoDB returned it (older emulators do not).
    fn old_item(self) -> Option<Item>;
}

impl ConditionFailed for PutItemError {
    fn is_condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
    fn old_item(self) -> Option<Item> {
        match self {
            PutItemError::ConditionalCheckFailedException(failed) => failed.item,
            _ => None,
        }
    }
}

impl ConditionFailed for UpdateItemError {
    fn is_condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
    fn old_item(self) -> Option<Item> {
        match self {
            UpdateItemError::ConditionalCheckFailedException(failed) => failed.item,
            _ => None,
        }
    }
}

/// A conditional write's answer: `Ok(output)` when written, `Err(item as it stood)` when its condition did
/// not hold (the item `None` where DynamoDB did not return it); any other failure is a [`StoreError`].
fn conditional<T, E: ConditionFailed, R>(
    operation: &'static str,
    result: Result<T, SdkError<E, R>>,
) -> Result<Result<T, Option<Item>>, StoreError>
where
    SdkError<E, R>: std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(out) => Ok(Ok(out)),
        Err(SdkError::ServiceError(failed)) if failed.err().is_condition_failed() => {
            Ok(Err(failed.into_err().old_item()))
        }
        Err(e) => Err(store_error(operation, e)),
    }
}

fn to_item(r: &EventRecord) -> Item {
    let mut item = HashMap::from([
        (attribute::PK.to_owned(), s(&r.id)),
        (attribute::PROVIDER.to_owned(), s(r.provider.name())),
        (attribute::TYPE.to_owned(), s(&r.event_type)),
        (attribute::STATE.to_owned(), state(r.state)),
        (attribute::RECEIVED_AT.to_owned(), n(r.received_at_ms)),
        (attribute::LEASE_UNTIL.to_owned(), n(r.lease_until_ms)),
        (attribute::LEASED_BY.to_owned(), s(&r.leased_by)),
        (attribute::BODY_REF.to_owned(), s(&r.body_ref)),
        (attribute::SCHEME.to_owned(), s(r.scheme.as_str())),
        (attribute::SECRET_INDEX.to_owned(), n(r.secret_index as i64)),
        (attribute::CONTENT_HASH.to_owned(), s(&r.content_hash)),
        (attribute::GROUP.to_owned(), s(&r.group)),
        (attribute::ENVELOPE.to_owned(), s(&r.envelope)),
        (attribute::EXPIRES_AT.to_owned(), n(r.expires_at)),
    ]);
    if r.state == RecordState::Received {
        item.insert(attribute::PENDING.to_owned(), s(&pending_shard(&r.id)));
    }
    if let Some(transaction) = &r.transaction {
        item.insert(attribute::TXN_KEY.to_owned(), s(&transaction.key));
        match &transaction.step {
            Step::Payment(status) => {
                item.insert(attribute::TXN_STATUS.to_owned(), s(status.as_str()));
            }
            Step::Notification { state, at_ms } => {
                item.insert(attribute::TXN_STATE.to_owned(), s(state));
                item.insert(attribute::TXN_AT.to_owned(), n(*at_ms));
            }
            Step::Unknown => {}
        }
    }
    if let Some(dialect) = r.dialect {
        item.insert(attribute::DIALECT.to_owned(), s(dialect.as_str()));
    }
    if let Some((reason, field)) = &r.quarantine {
        item.insert(attribute::REASON.to_owned(), s(reason));
        item.insert(attribute::FIELD.to_owned(), s(field));
    }
    item
}

/// Whether a record's lease was written by delivery `holder` (never by one without a token).
fn is_leased_by(item: &Item, holder: &str) -> bool {
    !holder.is_empty() && text(item, attribute::LEASED_BY) == Some(holder)
}

fn text<'i>(item: &'i Item, key: &str) -> Option<&'i str> {
    item.get(key).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn number(item: &Item, key: &str) -> i64 {
    item.get(key).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Where a transaction item says the transaction stands: its payment status once one is ranked, else the
/// latest notification's state (`status` on items written before notifications kept their own).
fn standing(item: &Item) -> Option<String> {
    let payment = item.contains_key(attribute::RANK).then(|| text(item, attribute::STATUS)).flatten();
    payment.or_else(|| text(item, attribute::NOTICE)).or_else(|| text(item, attribute::STATUS)).map(str::to_owned)
}

fn state_of(item: &Item) -> Option<StoredState> {
    Some(StoredState {
        state: RecordState::parse(text(item, attribute::STATE)?)?,
        lease_until_ms: number(item, attribute::LEASE_UNTIL),
        content_hash: text(item, attribute::CONTENT_HASH).unwrap_or_default().to_owned(),
        sweep_failures: number(item, attribute::SWEEP_FAILURES).clamp(0, i64::from(u32::MAX)) as u32,
        backed_off: item.contains_key(attribute::BACKED_OFF),
    })
}

fn claim_of(item: &Item) -> Option<SignatureClaim> {
    Some(SignatureClaim {
        key: text(item, attribute::PK)?.to_owned(),
        content_hash: text(item, attribute::CONTENT_HASH)?.to_owned(),
        body_ref: text(item, attribute::BODY_REF).unwrap_or_default().to_owned(),
        scheme: text(item, attribute::SCHEME).and_then(Scheme::parse),
        secret_index: number(item, attribute::SECRET_INDEX) as usize,
        dialect: text(item, attribute::DIALECT).and_then(Dialect::parse),
        received_at_ms: number(item, attribute::RECEIVED_AT),
        expires_at: number(item, attribute::EXPIRES_AT),
    })
}

fn from_item(item: &Item) -> Option<EventRecord> {
    let owned = |key: &str| text(item, key).map(str::to_owned);
    let scheme = text(item, attribute::SCHEME)?;
    Some(EventRecord {
        id: owned(attribute::PK)?,
        provider: text(item, attribute::PROVIDER)?.parse::<Provider>().ok()?,
        event_type: owned(attribute::TYPE)?,
        state: RecordState::parse(text(item, attribute::STATE)?)?,
        received_at_ms: number(item, attribute::RECEIVED_AT),
        lease_until_ms: number(item, attribute::LEASE_UNTIL),
        leased_by: owned(attribute::LEASED_BY).unwrap_or_default(),
        body_ref: owned(attribute::BODY_REF)?,
        scheme: Scheme::parse(scheme)?,
        secret_index: number(item, attribute::SECRET_INDEX) as usize,
        dialect: text(item, attribute::DIALECT).and_then(Dialect::parse),
        content_hash: owned(attribute::CONTENT_HASH)?,
        group: owned(attribute::GROUP)?,
        envelope: owned(attribute::ENVELOPE)?,
        quarantine: owned(attribute::REASON).zip(owned(attribute::FIELD)),
        transaction: owned(attribute::TXN_KEY).map(|key| TransactionRef {
            key,
            step: match (text(item, attribute::TXN_STATUS).and_then(PaymentStatus::parse), owned(attribute::TXN_STATE))
            {
                (Some(status), _) => Step::Payment(status),
                (None, Some(state)) => Step::Notification { state, at_ms: number(item, attribute::TXN_AT) },
                (None, None) => Step::Unknown,
            },
        }),
        expires_at: number(item, attribute::EXPIRES_AT),
    })
}

#[async_trait]
impl BodyStore for DynamoDbStore {
    async fn put_body(&self, body: &BodyRecord) -> Result<(), StoreError> {
        let headers: HashMap<String, AttributeValue> = body.headers.iter().map(|(k, v)| (k.clone(), s(v))).collect();
        // Text as text (readable in the console); other bytes as binary, never expanded by a lossy decoding.
        let raw = match std::str::from_utf8(&body.raw_body) {
            Ok(text) => (attribute::RAW_BODY, s(text)),
            Err(_) => (attribute::RAW_BYTES, AttributeValue::B(Blob::new(body.raw_body.clone()))),
        };
        let item = HashMap::from([
            (attribute::PK.to_owned(), s(&body.key)),
            (attribute::PROVIDER.to_owned(), s(body.provider.name())),
            (raw.0.to_owned(), raw.1),
            (attribute::HEADERS.to_owned(), AttributeValue::M(headers)),
            (attribute::RECEIVED_AT.to_owned(), n(body.received_at_ms)),
            (attribute::EXPIRES_AT.to_owned(), n(body.expires_at)),
        ]);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)");
        // Stored already (the same content, another delivery): kept as first written.
        conditional("PutItem", metrics::store_call(put.send()).await).map(|_| ())
    }

    async fn get_body(&self, key: &str) -> Result<Option<String>, StoreError> {
        let Some(item) = self.get_item(key).await? else { return Ok(None) };
        Ok(match (text(&item, attribute::RAW_BODY), item.get(attribute::RAW_BYTES).and_then(|v| v.as_b().ok())) {
            (Some(body), _) => Some(body.to_owned()),
            (None, Some(bytes)) => Some(String::from_utf8_lossy(bytes.as_ref()).into_owned()),
            (None, None) => None,
        })
    }
}

#[async_trait]
impl SignatureStore for DynamoDbStore {
    async fn signature(&self, key: &str) -> Result<Option<SignatureClaim>, StoreError> {
        Ok(self.get_item(key).await?.as_ref().and_then(claim_of))
    }

    async fn claim_signature(&self, claim: &SignatureClaim) -> Result<Option<SignatureClaim>, StoreError> {
        let mut item = HashMap::from([
            (attribute::PK.to_owned(), s(&claim.key)),
            (attribute::CONTENT_HASH.to_owned(), s(&claim.content_hash)),
            (attribute::BODY_REF.to_owned(), s(&claim.body_ref)),
            (attribute::SECRET_INDEX.to_owned(), n(claim.secret_index as i64)),
            (attribute::RECEIVED_AT.to_owned(), n(claim.received_at_ms)),
            (attribute::EXPIRES_AT.to_owned(), n(claim.expires_at)),
        ]);
        if let Some(scheme) = claim.scheme {
            item.insert(attribute::SCHEME.to_owned(), s(scheme.as_str()));
        }
        if let Some(dialect) = claim.dialect {
            item.insert(attribute::DIALECT.to_owned(), s(dialect.as_str()));
        }
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match conditional("PutItem", metrics::store_call(put.send()).await)? {
            Ok(_) => Ok(None),
            Err(old) => match old.as_ref().and_then(claim_of) {
                Some(first) => Ok(Some(first)),
                // Older emulators do not return the old item: read it.
                None => self.signature(&claim.key).await?.map(Some).ok_or_else(|| StoreError {
                    operation: "PutItem",
                    source: "signature claimed but the claim could not be read".into(),
                }),
            },
        }
    }
}

#[async_trait]
impl EventStore for DynamoDbStore {
    async fn states(&self, ids: &[&str]) -> Result<Vec<Option<StoredState>>, StoreError> {
        // BatchGetItem takes 100 distinct keys a call; keys it leaves unprocessed (throttling) are asked again.
        let mut found: HashMap<String, StoredState> = HashMap::with_capacity(ids.len());
        let mut distinct: Vec<&str> = ids.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        for chunk in distinct.chunks(100) {
            let keys: Vec<Item> = chunk.iter().map(|id| HashMap::from([(attribute::PK.to_owned(), s(id))])).collect();
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .projection_expression("pk, #state, lease_until, content_hash, sweep_failures, backed_off")
                    .expression_attribute_names("#state", attribute::STATE)
                    .build()
                    .map_err(|e| StoreError { operation: "BatchGetItem", source: Box::new(e) })?,
            );
            for attempt in 0.. {
                let Some(keys) = request.take() else { break };
                if attempt == 8 {
                    return Err(StoreError {
                        operation: "BatchGetItem",
                        source: "keys left unprocessed 8 times".into(),
                    });
                }
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(25 << attempt)).await;
                }
                let get = self.client.batch_get_item().request_items(&self.table, keys);
                let out = metrics::store_call(get.send()).await.map_err(|e| store_error("BatchGetItem", e))?;
                for item in out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default() {
                    if let (Some(id), Some(state)) = (text(&item, attribute::PK), state_of(&item)) {
                        found.insert(id.to_owned(), state);
                    }
                }
                request = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).filter(|k| !k.keys.is_empty());
            }
        }
        Ok(ids.iter().map(|id| found.get(*id).cloned()).collect())
    }

    async fn insert(&self, record: &EventRecord) -> Result<Insert, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let old = match conditional("PutItem", metrics::store_call(put.send()).await)? {
            Ok(_) => return Ok(Insert::Created),
            // Older emulators do not return the old item: read it.
            Err(None) => self.get_item(&record.id).await?,
            Err(old) => old,
        };
        let Some(existing) = old.as_ref().and_then(|item| Some((item, state_of(item)?))) else {
            return Err(StoreError { operation: "PutItem", source: "record exists but could not be read".into() });
        };
        // The SDK's retry of this delivery's own put, whose first answer was lost, finds it.
        if is_leased_by(existing.0, &record.leased_by) && existing.1.lease_until_ms == record.lease_until_ms {
            return Ok(Insert::Created);
        }
        Ok(Insert::Exists(existing.1))
    }

    async fn get(&self, id: &str) -> Result<Option<StoredState>, StoreError> {
        Ok(self.get_item(id).await?.as_ref().and_then(state_of))
    }

    async fn load(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        Ok(self.get_item(id).await?.as_ref().and_then(from_item))
    }

    async fn take_over(
        &self,
        id: &str,
        expired_lease_ms: i64,
        new_lease_ms: i64,
        holder: &str,
    ) -> Result<bool, StoreError> {
        let taken = self
            .update_or_old(
                "UpdateItem",
                id,
                "SET lease_until = :new, leased_by = :holder REMOVE backed_off",
                "#state = :received AND lease_until = :old",
                &[
                    (":new", n(new_lease_ms)),
                    (":holder", s(holder)),
                    (":old", n(expired_lease_ms)),
                    (":received", state(RecordState::Received)),
                ],
            )
            .await?;
        // Refused, but this delivery's own takeover (the SDK's retry of one whose first answer was lost).
        Ok(match taken {
            Ok(()) => true,
            Err(old) => old.as_ref().is_some_and(|item| {
                is_leased_by(item, holder)
                    && number(item, attribute::LEASE_UNTIL) == new_lease_ms
                    && state_of(item).is_some_and(|s| s.state == RecordState::Received)
            }),
        })
    }

    async fn mark_sent(&self, id: &str, sent: RecordState, at_ms: i64) -> Result<(), StoreError> {
        // A failed condition means the record is already sent: nothing to do.
        self.update(
            "UpdateItem",
            id,
            "SET #state = :sent, sent_at = :at REMOVE pending",
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

    async fn back_off(&self, id: &str, held_until_ms: i64, until_ms: i64) -> Result<bool, StoreError> {
        self.update(
            "UpdateItem",
            id,
            "SET lease_until = :until, backed_off = :yes ADD sweep_failures :one",
            "#state = :received AND lease_until <= :held",
            &[
                (":until", n(until_ms)),
                (":yes", AttributeValue::Bool(true)),
                (":one", n(1)),
                (":held", n(held_until_ms)),
                (":received", state(RecordState::Received)),
            ],
        )
        .await
    }

    async fn note_conflict(&self, id: &str, conflict_id: &str) -> Result<(), StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attribute::PK, s(id))
            .update_expression("ADD conflicts :id")
            .expression_attribute_values(":id", AttributeValue::Ss(vec![conflict_id.to_owned()]));
        metrics::store_call(update.send()).await.map_err(|e| store_error("UpdateItem", e))?;
        Ok(())
    }

    async fn warm(&self) -> Result<(), StoreError> {
        // A read of a key that never exists: allowed by the functions' policy, and it opens the connection.
        self.get_item("warm#").await.map(|_| ())
    }

    async fn stalled(&self, now_ms: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        // Each shard's oldest leases (at most `limit` each, keys only), then the oldest `limit` of them all:
        // what one query gave when the index had one partition.
        let limit = limit.min(1000);
        let queries = pending_shards().map(|shard| {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(PENDING_INDEX)
                .key_condition_expression("pending = :pending AND lease_until < :now")
                .expression_attribute_values(":pending", s(&shard))
                .expression_attribute_values(":now", n(now_ms))
                .limit(limit as i32);
            async move { metrics::store_call(query.send()).await.map_err(|e| store_error("Query", e)) }
        });
        let pages = futures_util::future::try_join_all(queries).await?;
        let mut found: Vec<(i64, &str)> = pages
            .iter()
            .flat_map(|page| page.items())
            .filter_map(|item| Some((number(item, attribute::LEASE_UNTIL), text(item, attribute::PK)?)))
            .collect();
        found.sort_unstable();
        Ok(found.into_iter().take(limit).map(|(_, id)| id.to_owned()).collect())
    }
}

#[async_trait]
impl TransactionStore for DynamoDbStore {
    async fn advance(
        &self,
        transaction: &TransactionRef,
        event_id: &str,
        now_ms: i64,
    ) -> Result<TransactionView, StoreError> {
        // A payment status raises `rank` and sets `status`; a notification sets its own `notice` and `at`,
        // never `status`, so a notification can neither move nor hide a payment's state.
        let (set, condition, mut values, names) = match &transaction.step {
            Step::Payment(incoming) => {
                // Forward only: a higher rank, and a reversal never over a failure (see `state`).
                let mut condition =
                    "attribute_not_exists(pk) OR attribute_not_exists(#rank) OR #rank < :rank".to_owned();
                let mut values = vec![(":status", s(incoming.as_str())), (":rank", n(i64::from(incoming.rank())))];
                if *incoming == PaymentStatus::Reversed {
                    condition = format!("({condition}) AND (attribute_not_exists(#status) OR #status <> :failed)");
                    values.push((":failed", s(PaymentStatus::Failed.as_str())));
                }
                (
                    "#status = :status, #rank = :rank",
                    condition,
                    values,
                    vec![("#status", attribute::STATUS), ("#rank", attribute::RANK)],
                )
            }
            Step::Notification { state, at_ms } => (
                "notice = :notice, #at = :at",
                "attribute_not_exists(pk) OR attribute_not_exists(#at) OR #at <= :at".to_owned(),
                vec![(":notice", s(state)), (":at", n(*at_ms))],
                vec![("#at", attribute::AT)],
            ),
            Step::Unknown => {
                let item = self.get_item(&transaction.key).await?;
                return Ok(TransactionView {
                    status: item.as_ref().and_then(standing),
                    regression: false,
                    contradiction: false,
                });
            }
        };
        values.push((":ids", AttributeValue::L(vec![s(event_id)])));
        values.push((":empty", AttributeValue::L(vec![])));
        values.push((":now", n(now_ms)));
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attribute::PK, s(&transaction.key))
            .update_expression(format!(
                "SET {set}, updated_at = :now, event_ids = list_append(if_not_exists(event_ids, :empty), :ids)"
            ))
            .condition_expression(condition)
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (name, attribute) in names {
            update = update.expression_attribute_names(name, attribute);
        }
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        // The item after the write, or as it stood when the condition failed (`Err`).
        let item = match conditional("UpdateItem", metrics::store_call(update.send()).await)? {
            Ok(out) => Ok(out.attributes),
            Err(Some(old)) => Err(Some(old)),
            // Older emulators do not return the old item: read it.
            Err(None) => Err(self.get_item(&transaction.key).await?),
        };
        Ok(match (&transaction.step, item) {
            (Step::Payment(incoming), Ok(_)) => payment_view(None, *incoming),
            (Step::Payment(incoming), Err(old)) => payment_view(
                old.as_ref().and_then(|i| text(i, attribute::STATUS)).and_then(PaymentStatus::parse),
                *incoming,
            ),
            (_, Ok(item) | Err(item)) => {
                TransactionView { status: item.as_ref().and_then(standing), regression: false, contradiction: false }
            }
        })
    }

    async fn hold(&self, key: &str, holder: &str, until_ms: i64, ended_by_ms: i64) -> Result<bool, StoreError> {
        self.update(
            "UpdateItem",
            key,
            "SET held_by = :holder, held_until = :until",
            // Free, ended, or already this delivery's (an SDK retry of a hold whose answer was lost).
            "attribute_not_exists(held_until) OR held_until <= :ended OR held_by = :holder",
            &[(":holder", s(holder)), (":until", n(until_ms)), (":ended", n(ended_by_ms))],
        )
        .await
    }

    async fn let_go(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        self.update("UpdateItem", key, "REMOVE held_by, held_until", "held_by = :holder", &[(":holder", s(holder))])
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_marker_has_one_shard_of_the_index_and_the_shards_share_the_markers() {
        let mut per_shard: BTreeMap<String, usize> = pending_shards().map(|shard| (shard, 0)).collect();
        for i in 0..2_000 {
            let id = format!("choice:0008:BAAS000820251122{i:06}:{}", i % 7);
            let shard = pending_shard(&id);
            assert_eq!(shard, pending_shard(&id), "the same id, the same shard");
            *per_shard.get_mut(&shard).unwrap_or_else(|| panic!("{shard} is not a shard")) += 1;
        }
        // 200 each if even: none may take half as much again.
        assert!(per_shard.values().all(|&n| (100..=300).contains(&n)), "{per_shard:?}");
        assert!(per_shard.contains_key("1"), "markers written before sharding carry \"1\": it must stay a shard");
    }
}
