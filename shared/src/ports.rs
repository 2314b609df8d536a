//! The ports the pipeline works through: where events are recorded, where they are sent, where secrets
//! come from. The AWS adapters are in [`crate::aws`]; in-memory ones for tests in `testing` (feature
//! `test-util`).
//!
//! The decisions (duplicate, conflict, lease, takeover) live in [`crate::pipeline`]; an implementation
//! only has to provide these conditional writes atomically.

use async_trait::async_trait;

use crate::error::{PublishError, SecretsError, StoreError};
use crate::provider::Provider;
use crate::state::{Step, TransactionView};
use crate::verify::Secrets;
use crate::verify::{Dialect, Scheme};

/// The life of a record: `RECEIVED` at the put, then `ENQUEUED` (an event) or `QUARANTINED` (what could not
/// be normalised) once its message is on the queue. A delivery whose content differs from the first one
/// with the same id is kept in its own `CONFLICT` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum RecordState {
    Received,
    Enqueued,
    Quarantined,
    Conflict,
}

impl RecordState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// Whether the record's message is on the queue: nothing more to do for its id.
    pub fn is_sent(self) -> bool {
        matches!(self, RecordState::Enqueued | RecordState::Quarantined)
    }
}

/// The raw body of one callback, stored once per content (`body#<provider>#<content hash>`, so that another
/// encoding of the same content is the same item) and never rewritten; its events point to it. It expires
/// after `EVENT_TTL_DAYS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyRecord {
    pub key: String,
    pub provider: Provider,
    /// The bytes as received: stored as text when they are UTF-8, else as binary (never expanded).
    pub raw_body: Vec<u8>,
    /// Request headers on the allowlist only.
    pub headers: Vec<(String, String)>,
    pub received_at_ms: i64,
    /// TTL attribute, Unix seconds.
    pub expires_at: i64,
}

impl BodyRecord {
    /// The body as text, U+FFFD for what is not UTF-8 (what `get_body` answers).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw_body).into_owned()
    }
}

/// The first use of a Choice or Niobi signature (`sig#<provider>#<sha256 of the signature>`): what a later body
/// carrying the same signature is a duplicate of. Written only once the first delivery's body is stored, so
/// that the first delivery can always be completed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureClaim {
    pub key: String,
    pub content_hash: String,
    /// The first delivery's [`BodyRecord`] (empty on claims written before claims named their body).
    pub body_ref: String,
    /// How the first delivery was verified (scheme, secret index, dialect), to read its body again.
    pub scheme: Option<Scheme>,
    pub secret_index: usize,
    pub dialect: Option<Dialect>,
    pub received_at_ms: i64,
    /// TTL attribute, Unix seconds.
    pub expires_at: i64,
}

/// What is written for one event (or quarantined item) at its first delivery: a small item, well under
/// 1 KB, that is the idempotency marker for its id and holds what rebuilds its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// The partition key `pk`: the event id (or `{id}#conflict#{hash}` for a conflicting delivery).
    pub id: String,
    pub provider: Provider,
    pub event_type: String,
    pub state: RecordState,
    pub received_at_ms: i64,
    /// Until when this delivery owns the record (now + the function timeout).
    pub lease_until_ms: i64,
    /// The delivery that owns the lease (a [`crate::pipeline::delivery_token`]): what tells a delivery's own
    /// write, applied with its answer lost and refused on the SDK's retry, from another delivery's.
    pub leased_by: String,
    /// The key of the callback's [`BodyRecord`].
    pub body_ref: String,
    pub scheme: Scheme,
    pub secret_index: usize,
    /// Niobi and Choice: the canonical-string dialect that verified.
    pub dialect: Option<Dialect>,
    pub content_hash: String,
    /// The FIFO message group.
    pub group: String,
    /// The message as sent, without `data.payload` (taken from the body when the message is rebuilt).
    pub envelope: String,
    /// Why the item is quarantined, and the field at fault.
    pub quarantine: Option<(String, String)>,
    /// The transaction the event moves (none for quarantined items and conflict records).
    pub transaction: Option<TransactionRef>,
    /// TTL attribute, Unix seconds: `IDEMPOTENCY_TTL_DAYS` for events, `EVENT_TTL_DAYS` for conflicts.
    pub expires_at: i64,
}

/// An event's transaction (`txn#<provider>#<reference>`) and what the event says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRef {
    pub key: String,
    pub step: Step,
}

/// The part of an existing record the pipeline decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredState {
    pub state: RecordState,
    pub lease_until_ms: i64,
    pub content_hash: String,
    /// How many sweeps failed to complete the record.
    pub sweep_failures: u32,
    /// The lease is a sweeper's back-off after a failure, not a delivery at work: a provider's retry may take
    /// the record over at once.
    pub backed_off: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Insert {
    Created,
    Exists(StoredState),
}

/// Raw bodies (`body#<provider>#<content hash>`), stored once per content and never rewritten.
#[async_trait]
pub trait BodyStore: Send + Sync {
    /// Store a callback's raw body unless its key is stored already: a stored body is never rewritten.
    async fn put_body(&self, body: &BodyRecord) -> Result<(), StoreError>;
    /// A stored raw body (its bytes as text, U+FFFD for what is not UTF-8), if it has not expired.
    async fn get_body(&self, key: &str) -> Result<Option<String>, StoreError>;
}

/// The first use of each Choice and Niobi signature (`sig#<provider>#<hash>`).
#[async_trait]
pub trait SignatureStore: Send + Sync {
    /// The first use of a signature, if it is recorded (a read).
    async fn signature(&self, key: &str) -> Result<Option<SignatureClaim>, StoreError>;
    /// Record `claim` as the first use of its signature unless one is recorded; `None` when this is the first
    /// use, else the first use (written by another delivery in the meantime).
    async fn claim_signature(&self, claim: &SignatureClaim) -> Result<Option<SignatureClaim>, StoreError>;
}

/// Event records: the idempotency markers, their leases and states, conflicts, and the sweeper's index.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Write `record` unless a record with its id exists; if one does, return its state (`Created` when it
    /// is `record`'s own write, by its `leased_by`, whose first answer was lost).
    async fn insert(&self, record: &EventRecord) -> Result<Insert, StoreError>;
    /// The current state of a record.
    async fn get(&self, id: &str) -> Result<Option<StoredState>, StoreError>;
    /// The current state of each record in `ids`, in order: reads only, so that a duplicate delivery writes
    /// nothing.
    async fn states(&self, ids: &[&str]) -> Result<Vec<Option<StoredState>>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.get(id).await?);
        }
        Ok(out)
    }
    /// The whole record (to rebuild its message).
    async fn load(&self, id: &str) -> Result<Option<EventRecord>, StoreError>;
    /// Take over a `RECEIVED` record whose lease is still `expired_lease_ms`, for delivery `holder` until
    /// `new_lease_ms`; false if someone else did first.
    async fn take_over(
        &self,
        id: &str,
        expired_lease_ms: i64,
        new_lease_ms: i64,
        holder: &str,
    ) -> Result<bool, StoreError>;
    /// `RECEIVED` -> `state` (`ENQUEUED` or `QUARANTINED`) once the message is on the queue.
    async fn mark_sent(&self, id: &str, state: RecordState, at_ms: i64) -> Result<(), StoreError>;
    /// End this delivery's lease early (after a failure) so that the next retry can proceed at once.
    async fn release(&self, id: &str) -> Result<(), StoreError>;
    /// After a sweep failed to complete a `RECEIVED` record whose lease it held until `held_until_ms` (or
    /// released): keep the sweeper off it until `until_ms` and count the failure, so that other records are
    /// swept meanwhile. False if another delivery holds it now.
    async fn back_off(&self, id: &str, held_until_ms: i64, until_ms: i64) -> Result<bool, StoreError>;
    /// Note on record `id` that a delivery with other content was kept as `conflict_id`.
    async fn note_conflict(&self, id: &str, conflict_id: &str) -> Result<(), StoreError>;
    /// Ids of event records still `RECEIVED` whose lease ended before `now_ms` (through the sparse `pending`
    /// index: one query, never a scan), at most `limit`.
    async fn stalled(&self, now_ms: i64, limit: usize) -> Result<Vec<String>, StoreError>;
    /// Open the connection (TLS, credentials) before the first callback needs it: a cheap read.
    async fn warm(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Where each transaction stands.
#[async_trait]
pub trait TransactionStore: Send + Sync {
    /// Apply an event to its transaction's state with one conditional write (forward only, see
    /// [`crate::state`]) and say where the transaction stands after it.
    async fn advance(
        &self,
        transaction: &TransactionRef,
        event_id: &str,
        now_ms: i64,
    ) -> Result<TransactionView, StoreError>;

    /// Hold the transaction for one delivery (`holder`) from its advance until its message is on the queue,
    /// so that a transaction's messages reach the queue in the order its state moved, and its last message
    /// says where it stands. `false` if another delivery holds it and that hold had not ended by
    /// `ended_by_ms`; a hold ends at `until_ms`, the holder's lease, so a crashed holder's hold ends with it.
    async fn hold(&self, key: &str, holder: &str, until_ms: i64, ended_by_ms: i64) -> Result<bool, StoreError>;

    /// End `holder`'s hold (nothing if it ended and another delivery holds the transaction now).
    async fn let_go(&self, key: &str, holder: &str) -> Result<(), StoreError>;
}

/// The four kinds of item in one store (one DynamoDB table): what the pipeline and the sweeper are given.
/// Each step takes only the part it uses.
pub trait Store: BodyStore + SignatureStore + EventStore + TransactionStore {}

impl<T: BodyStore + SignatureStore + EventStore + TransactionStore + ?Sized> Store for T {}

/// One queue message: the CloudEvents JSON and what the queue needs to route and deduplicate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub id: String,
    pub provider: Provider,
    pub event_type: String,
    /// The provider's transaction reference: the FIFO message group (per-transaction order).
    pub group: String,
    pub body: String,
    /// The FIFO deduplication id when it is not the event id (a replay must not be dropped by SQS).
    pub deduplication_id: Option<String>,
}

/// Hands events to downstream consumers.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, message: &OutgoingMessage) -> Result<(), PublishError>;
    /// Open the connection before the first callback needs it: a cheap read.
    async fn warm(&self) -> Result<(), PublishError> {
        Ok(())
    }
}

/// Where a function's secrets come from: read during init, then again every `SECRETS_REFRESH_SECS`.
#[async_trait]
pub trait SecretLoader: Send + Sync {
    async fn load(&self) -> Result<Secrets, SecretsError>;
}
