//! The ports the pipeline works through: where events are recorded, where they are sent, where secrets
//! come from. The AWS adapters are in [`crate::aws`]; in-memory ones for tests in `testing` (feature
//! `test-util`).
//!
//! The decisions (duplicate, conflict, lease, takeover) live in [`crate::pipeline`]; an implementation
//! only has to provide these conditional writes atomically.

use async_trait::async_trait;

use crate::error::{PublishError, SecretsError, StoreError};
use crate::provider::Provider;
use crate::verify::{Scheme, SecretSet};

/// The life of a record: `RECEIVED` at the put, `ENQUEUED` once the message is on the queue. A delivery
/// whose content differs from the first one with the same id is kept in its own `CONFLICT` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    Received,
    Enqueued,
    Conflict,
}

impl RecordState {
    pub const ALL: [RecordState; 3] = [RecordState::Received, RecordState::Enqueued, RecordState::Conflict];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Received => "RECEIVED",
            RecordState::Enqueued => "ENQUEUED",
            RecordState::Conflict => "CONFLICT",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

/// What is written for one event at its first delivery.
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
    pub raw_body: String,
    /// Request headers with every secret-bearing one removed.
    pub headers: Vec<(String, String)>,
    pub scheme: Scheme,
    pub secret_index: usize,
    pub content_hash: String,
    /// TTL attribute, Unix seconds.
    pub expires_at: i64,
}

/// The part of an existing record the pipeline decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredState {
    pub state: RecordState,
    pub lease_until_ms: i64,
    pub content_hash: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Insert {
    Created,
    Exists(StoredState),
}

/// Records events once: the idempotency half of a delivery.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Write `record` unless a record with its id exists; if one does, return its state.
    async fn insert(&self, record: &EventRecord) -> Result<Insert, StoreError>;
    /// The current state of a record.
    async fn get(&self, id: &str) -> Result<Option<StoredState>, StoreError>;
    /// Take over a `RECEIVED` record whose lease is still `expired_lease_ms`; false if someone else did first.
    async fn take_over(&self, id: &str, expired_lease_ms: i64, new_lease_ms: i64) -> Result<bool, StoreError>;
    /// `RECEIVED` -> `ENQUEUED`.
    async fn mark_enqueued(&self, id: &str, at_ms: i64) -> Result<(), StoreError>;
    /// End this delivery's lease early (after a failure) so that the next retry can proceed at once.
    async fn release(&self, id: &str) -> Result<(), StoreError>;
}

/// One queue message: the CloudEvents JSON and what the queue needs to route and deduplicate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub id: String,
    pub provider: Provider,
    pub event_type: String,
    /// The provider's transaction reference: the FIFO message group (per-transaction order).
    pub group: String,
    pub body: String,
}

/// Hands events to downstream consumers.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, message: &OutgoingMessage) -> Result<(), PublishError>;
}

/// Where a function's secrets come from, read once per cold start.
#[async_trait]
pub trait SecretLoader: Send + Sync {
    async fn load(&self) -> Result<SecretSet, SecretsError>;
}

/// Secrets given directly (`WEBHOOK_SECRETS`: local runs and tests).
#[derive(Debug, Clone)]
pub struct StaticSecrets(pub SecretSet);

#[async_trait]
impl SecretLoader for StaticSecrets {
    async fn load(&self) -> Result<SecretSet, SecretsError> {
        Ok(self.0.clone())
    }
}
