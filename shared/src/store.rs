//! The two ports the pipeline writes through, and in-memory implementations for tests and local runs.
//!
//! The decisions (duplicate, conflict, lease, takeover) live in [`crate::pipeline`]; an implementation
//! only has to provide these conditional writes atomically.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The life of a record: `RECEIVED` at the put, `ENQUEUED` once the message is on the queue. A delivery
/// whose content differs from the first one with the same id is kept in its own `CONFLICT` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    Received,
    Enqueued,
    Conflict,
}

impl RecordState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Received => "RECEIVED",
            RecordState::Enqueued => "ENQUEUED",
            RecordState::Conflict => "CONFLICT",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "RECEIVED" => Some(RecordState::Received),
            "ENQUEUED" => Some(RecordState::Enqueued),
            "CONFLICT" => Some(RecordState::Conflict),
            _ => None,
        }
    }
}

/// What is written for one event at its first delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// The partition key `pk`: the event id (or `{id}#conflict#{hash}` for a conflicting delivery).
    pub id: String,
    pub provider: &'static str,
    pub event_type: String,
    pub state: RecordState,
    pub received_at_ms: i64,
    /// Until when this delivery owns the record (now + the function timeout).
    pub lease_until_ms: i64,
    pub raw_body: String,
    /// Request headers with every secret-bearing one removed.
    pub headers: Vec<(String, String)>,
    pub scheme: &'static str,
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

#[derive(Debug, thiserror::Error)]
#[error("event store {operation} failed")]
pub struct StoreError {
    pub operation: &'static str,
    #[source]
    pub source: BoxError,
}

#[derive(Debug, thiserror::Error)]
#[error("event queue send failed")]
pub struct PublishError {
    #[source]
    pub source: BoxError,
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
    pub provider: &'static str,
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

/// An [`IdempotencyStore`] in a `HashMap`, with the same conditional semantics as the DynamoDB one.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<String, EventRecord>>,
    unavailable: AtomicBool,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Make every call fail, as if DynamoDB were unreachable.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    pub fn record(&self, id: &str) -> Option<EventRecord> {
        self.records.lock().unwrap().get(id).cloned()
    }

    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.records.lock().unwrap().keys().cloned().collect();
        ids.sort();
        ids
    }

    fn check(&self, operation: &'static str) -> Result<(), StoreError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(StoreError { operation, source: "memory store set unavailable".into() });
        }
        Ok(())
    }
}

fn stored(record: &EventRecord) -> StoredState {
    StoredState {
        state: record.state,
        lease_until_ms: record.lease_until_ms,
        content_hash: record.content_hash.clone(),
    }
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn insert(&self, record: &EventRecord) -> Result<Insert, StoreError> {
        self.check("PutItem")?;
        let mut records = self.records.lock().unwrap();
        if let Some(existing) = records.get(&record.id) {
            return Ok(Insert::Exists(stored(existing)));
        }
        records.insert(record.id.clone(), record.clone());
        Ok(Insert::Created)
    }

    async fn get(&self, id: &str) -> Result<Option<StoredState>, StoreError> {
        self.check("GetItem")?;
        Ok(self.records.lock().unwrap().get(id).map(stored))
    }

    async fn take_over(&self, id: &str, expired_lease_ms: i64, new_lease_ms: i64) -> Result<bool, StoreError> {
        self.check("UpdateItem")?;
        let mut records = self.records.lock().unwrap();
        match records.get_mut(id) {
            Some(r) if r.state == RecordState::Received && r.lease_until_ms == expired_lease_ms => {
                r.lease_until_ms = new_lease_ms;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn mark_enqueued(&self, id: &str, _at_ms: i64) -> Result<(), StoreError> {
        self.check("UpdateItem")?;
        if let Some(r) = self.records.lock().unwrap().get_mut(id) {
            if r.state == RecordState::Received {
                r.state = RecordState::Enqueued;
            }
        }
        Ok(())
    }

    async fn release(&self, id: &str) -> Result<(), StoreError> {
        self.check("UpdateItem")?;
        if let Some(r) = self.records.lock().unwrap().get_mut(id) {
            if r.state == RecordState::Received {
                r.lease_until_ms = 0;
            }
        }
        Ok(())
    }
}

/// An [`EventPublisher`] that keeps messages in a `Vec`.
#[derive(Debug, Default)]
pub struct MemoryPublisher {
    messages: Mutex<Vec<OutgoingMessage>>,
    unavailable: AtomicBool,
}

impl MemoryPublisher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Make every send fail, as if SQS were unreachable.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    pub fn messages(&self) -> Vec<OutgoingMessage> {
        self.messages.lock().unwrap().clone()
    }
}

#[async_trait]
impl EventPublisher for MemoryPublisher {
    async fn publish(&self, message: &OutgoingMessage) -> Result<(), PublishError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(PublishError { source: "memory publisher set unavailable".into() });
        }
        self.messages.lock().unwrap().push(message.clone());
        Ok(())
    }
}
