//! In-memory ports with the DynamoDB adapter's conditional semantics, one that fails on command, a publisher, a metrics sink and secrets given directly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::{PublishError, StoreError};
use crate::ports::{
    BodyRecord, BodyStore, EventPublisher, EventRecord, EventStore, Insert, OutgoingMessage, RecordState,
    SignatureClaim, SignatureStore, StoredState, TransactionRef, TransactionStore,
};
use crate::state::{payment_view, PaymentStatus, Step, TransactionView};
use crate::verify::Secrets;

use crate::error::SecretsError;
use crate::metrics::MetricsSink;
use crate::ports::SecretLoader;

/// A [`Store`](crate::ports::Store) in a `HashMap`, with the same conditional semantics as the DynamoDB one.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<String, EventRecord>>,
    bodies: Mutex<HashMap<String, BodyRecord>>,
    signatures: Mutex<HashMap<String, SignatureClaim>>,
    transactions: Mutex<HashMap<String, Transaction>>,
    /// Per record: failed sweeps, and whether its lease is a back-off.
    sweeps: Mutex<HashMap<String, (u32, bool)>>,
    /// How many times `stalled` was asked (what one sweep costs).
    pub stalled_queries: std::sync::atomic::AtomicUsize,
    unavailable: AtomicBool,
}

/// A transaction's recorded state, as the DynamoDB item holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transaction {
    /// The payment status, ranked.
    pub status: Option<String>,
    /// The latest non-payment notification's state, and its time.
    pub notice: Option<String>,
    pub at_ms: Option<i64>,
    /// The events that set the state, in order.
    pub event_ids: Vec<String>,
    /// The delivery holding the transaction while its message is sent, and until when.
    pub held: Option<(String, i64)>,
}

impl Transaction {
    /// Where the transaction stands: its payment status, else the latest notification's state.
    pub fn standing(&self) -> Option<String> {
        self.status.clone().or_else(|| self.notice.clone())
    }
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

    /// The raw body an event record points to.
    pub fn body_of(&self, id: &str) -> Option<String> {
        let body_ref = self.record(id)?.body_ref;
        self.bodies.lock().unwrap().get(&body_ref).map(|b| b.text())
    }

    /// A transaction's recorded state (`txn#<provider>#<reference>`).
    pub fn transaction(&self, key: &str) -> Option<Transaction> {
        self.transactions.lock().unwrap().get(key).cloned()
    }

    /// The stored bodies.
    pub fn bodies(&self) -> Vec<BodyRecord> {
        self.bodies.lock().unwrap().values().cloned().collect()
    }

    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.records.lock().unwrap().keys().cloned().collect();
        ids.sort();
        ids
    }

    fn check_available(&self, operation: &'static str) -> Result<(), StoreError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(StoreError { operation, source: "memory store set unavailable".into() });
        }
        Ok(())
    }
}

fn stored(record: &EventRecord, sweeps: &HashMap<String, (u32, bool)>) -> StoredState {
    let (sweep_failures, backed_off) = sweeps.get(&record.id).copied().unwrap_or_default();
    StoredState {
        state: record.state,
        lease_until_ms: record.lease_until_ms,
        content_hash: record.content_hash.clone(),
        sweep_failures,
        backed_off,
    }
}

#[async_trait]
impl BodyStore for MemoryStore {
    async fn put_body(&self, body: &BodyRecord) -> Result<(), StoreError> {
        self.check_available("PutItem")?;
        self.bodies.lock().unwrap().entry(body.key.clone()).or_insert_with(|| body.clone());
        Ok(())
    }

    async fn get_body(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.check_available("GetItem")?;
        Ok(self.bodies.lock().unwrap().get(key).map(|b| b.text()))
    }
}

#[async_trait]
impl SignatureStore for MemoryStore {
    async fn signature(&self, key: &str) -> Result<Option<SignatureClaim>, StoreError> {
        self.check_available("GetItem")?;
        Ok(self.signatures.lock().unwrap().get(key).cloned())
    }

    async fn claim_signature(&self, claim: &SignatureClaim) -> Result<Option<SignatureClaim>, StoreError> {
        self.check_available("PutItem")?;
        let mut signatures = self.signatures.lock().unwrap();
        match signatures.get(&claim.key) {
            Some(first) => Ok(Some(first.clone())),
            None => {
                signatures.insert(claim.key.clone(), claim.clone());
                Ok(None)
            }
        }
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn insert(&self, record: &EventRecord) -> Result<Insert, StoreError> {
        self.check_available("PutItem")?;
        let mut records = self.records.lock().unwrap();
        if let Some(existing) = records.get(&record.id) {
            // As the DynamoDB adapter: the record's own write (a retry of it) is not another delivery's.
            let own = !record.leased_by.is_empty()
                && existing.leased_by == record.leased_by
                && existing.lease_until_ms == record.lease_until_ms;
            if !own {
                return Ok(Insert::Exists(stored(existing, &self.sweeps.lock().unwrap())));
            }
            return Ok(Insert::Created);
        }
        records.insert(record.id.clone(), record.clone());
        Ok(Insert::Created)
    }

    async fn get(&self, id: &str) -> Result<Option<StoredState>, StoreError> {
        self.check_available("GetItem")?;
        let records = self.records.lock().unwrap();
        Ok(records.get(id).map(|r| stored(r, &self.sweeps.lock().unwrap())))
    }

    async fn load(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        self.check_available("GetItem")?;
        Ok(self.record(id))
    }

    async fn take_over(
        &self,
        id: &str,
        expired_lease_ms: i64,
        new_lease_ms: i64,
        holder: &str,
    ) -> Result<bool, StoreError> {
        self.check_available("UpdateItem")?;
        let mut records = self.records.lock().unwrap();
        match records.get_mut(id) {
            Some(r) if r.state == RecordState::Received && r.lease_until_ms == expired_lease_ms => {
                r.lease_until_ms = new_lease_ms;
                r.leased_by = holder.to_owned();
                if let Some(sweep) = self.sweeps.lock().unwrap().get_mut(id) {
                    sweep.1 = false;
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn mark_sent(&self, id: &str, sent: RecordState, _at_ms: i64) -> Result<(), StoreError> {
        self.check_available("UpdateItem")?;
        if let Some(r) = self.records.lock().unwrap().get_mut(id) {
            if r.state == RecordState::Received {
                r.state = sent;
            }
        }
        Ok(())
    }

    async fn release(&self, id: &str) -> Result<(), StoreError> {
        self.check_available("UpdateItem")?;
        if let Some(r) = self.records.lock().unwrap().get_mut(id) {
            if r.state == RecordState::Received {
                r.lease_until_ms = 0;
            }
        }
        Ok(())
    }

    async fn back_off(&self, id: &str, held_until_ms: i64, until_ms: i64) -> Result<bool, StoreError> {
        self.check_available("UpdateItem")?;
        let mut records = self.records.lock().unwrap();
        match records.get_mut(id) {
            Some(r) if r.state == RecordState::Received && r.lease_until_ms <= held_until_ms => {
                r.lease_until_ms = until_ms;
                let mut sweeps = self.sweeps.lock().unwrap();
                let sweep = sweeps.entry(id.to_owned()).or_default();
                *sweep = (sweep.0 + 1, true);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn note_conflict(&self, _id: &str, _conflict_id: &str) -> Result<(), StoreError> {
        self.check_available("UpdateItem")
    }

    async fn stalled(&self, now_ms: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        self.check_available("Query")?;
        self.stalled_queries.fetch_add(1, Ordering::SeqCst);
        let records = self.records.lock().unwrap();
        let mut ids: Vec<String> = records
            .values()
            .filter(|r| r.state == RecordState::Received && r.lease_until_ms < now_ms)
            .map(|r| r.id.clone())
            .collect();
        ids.sort();
        ids.truncate(limit);
        Ok(ids)
    }
}

#[async_trait]
impl TransactionStore for MemoryStore {
    async fn advance(
        &self,
        transaction: &TransactionRef,
        event_id: &str,
        _now_ms: i64,
    ) -> Result<TransactionView, StoreError> {
        self.check_available("UpdateItem")?;
        let mut transactions = self.transactions.lock().unwrap();
        let entry = transactions.entry(transaction.key.clone()).or_default();
        Ok(match &transaction.step {
            Step::Payment(incoming) => {
                let recorded = entry.status.as_deref().and_then(PaymentStatus::parse);
                if recorded.is_none_or(|r| incoming.replaces(r)) {
                    entry.status = Some(incoming.as_str().to_owned());
                    entry.event_ids.push(event_id.to_owned());
                }
                payment_view(recorded, *incoming)
            }
            Step::Notification { state, at_ms } => {
                if entry.at_ms.is_none_or(|at| at <= *at_ms) {
                    entry.notice = Some(state.clone());
                    entry.at_ms = Some(*at_ms);
                    entry.event_ids.push(event_id.to_owned());
                }
                TransactionView { status: entry.standing(), regression: false, contradiction: false }
            }
            Step::Unknown => TransactionView { status: entry.standing(), regression: false, contradiction: false },
        })
    }

    async fn hold(&self, key: &str, holder: &str, until_ms: i64, ended_by_ms: i64) -> Result<bool, StoreError> {
        self.check_available("UpdateItem")?;
        let mut transactions = self.transactions.lock().unwrap();
        let entry = transactions.entry(key.to_owned()).or_default();
        let free = entry.held.as_ref().is_none_or(|(by, until)| *until <= ended_by_ms || by == holder);
        if free {
            entry.held = Some((holder.to_owned(), until_ms));
        }
        Ok(free)
    }

    async fn let_go(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        self.check_available("UpdateItem")?;
        if let Some(entry) = self.transactions.lock().unwrap().get_mut(key) {
            entry.held = entry.held.take().filter(|(by, _)| by != holder);
        }
        Ok(())
    }
}

/// A [`Store`](crate::ports::Store) that fails the calls it is told to (by port method name: `"insert"`,
/// `"mark_sent"`...) and passes every other call to `inner`: a fault at one chosen point of a delivery. It
/// also keeps the name of every call made, in order.
pub struct FaultyStore<S> {
    pub inner: S,
    failing: Mutex<Vec<&'static str>>,
    calls: Mutex<Vec<&'static str>>,
}

impl<S> FaultyStore<S> {
    pub fn new(inner: S) -> Self {
        Self { inner, failing: Mutex::new(Vec::new()), calls: Mutex::new(Vec::new()) }
    }

    /// Every call made so far (failed ones too), by port method name.
    pub fn calls(&self) -> Vec<&'static str> {
        self.calls.lock().unwrap().clone()
    }

    /// Fail every call to `call` from now on (until [`FaultyStore::heal`]).
    pub fn fail(&self, call: &'static str) {
        self.failing.lock().unwrap().push(call);
    }

    pub fn heal(&self) {
        self.failing.lock().unwrap().clear();
    }

    fn check(&self, call: &'static str) -> Result<(), StoreError> {
        self.calls.lock().unwrap().push(call);
        if self.failing.lock().unwrap().contains(&call) {
            return Err(StoreError { operation: call, source: "injected fault".into() });
        }
        Ok(())
    }
}

#[async_trait]
impl<S: BodyStore> BodyStore for FaultyStore<S> {
    async fn put_body(&self, body: &BodyRecord) -> Result<(), StoreError> {
        self.check("put_body")?;
        self.inner.put_body(body).await
    }

    async fn get_body(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.check("get_body")?;
        self.inner.get_body(key).await
    }
}

#[async_trait]
impl<S: SignatureStore> SignatureStore for FaultyStore<S> {
    async fn signature(&self, key: &str) -> Result<Option<SignatureClaim>, StoreError> {
        self.check("signature")?;
        self.inner.signature(key).await
    }

    async fn claim_signature(&self, claim: &SignatureClaim) -> Result<Option<SignatureClaim>, StoreError> {
        self.check("claim_signature")?;
        self.inner.claim_signature(claim).await
    }
}

#[async_trait]
impl<S: EventStore> EventStore for FaultyStore<S> {
    async fn insert(&self, record: &EventRecord) -> Result<Insert, StoreError> {
        self.check("insert")?;
        self.inner.insert(record).await
    }

    async fn get(&self, id: &str) -> Result<Option<StoredState>, StoreError> {
        self.check("get")?;
        self.inner.get(id).await
    }

    async fn states(&self, ids: &[&str]) -> Result<Vec<Option<StoredState>>, StoreError> {
        self.check("states")?;
        self.inner.states(ids).await
    }

    async fn load(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        self.check("load")?;
        self.inner.load(id).await
    }

    async fn take_over(
        &self,
        id: &str,
        expired_lease_ms: i64,
        new_lease_ms: i64,
        holder: &str,
    ) -> Result<bool, StoreError> {
        self.check("take_over")?;
        self.inner.take_over(id, expired_lease_ms, new_lease_ms, holder).await
    }

    async fn mark_sent(&self, id: &str, state: RecordState, at_ms: i64) -> Result<(), StoreError> {
        self.check("mark_sent")?;
        self.inner.mark_sent(id, state, at_ms).await
    }

    async fn release(&self, id: &str) -> Result<(), StoreError> {
        self.check("release")?;
        self.inner.release(id).await
    }

    async fn back_off(&self, id: &str, held_until_ms: i64, until_ms: i64) -> Result<bool, StoreError> {
        self.check("back_off")?;
        self.inner.back_off(id, held_until_ms, until_ms).await
    }

    async fn note_conflict(&self, id: &str, conflict_id: &str) -> Result<(), StoreError> {
        self.check("note_conflict")?;
        self.inner.note_conflict(id, conflict_id).await
    }

    async fn stalled(&self, now_ms: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        self.check("stalled")?;
        self.inner.stalled(now_ms, limit).await
    }
}

#[async_trait]
impl<S: TransactionStore> TransactionStore for FaultyStore<S> {
    async fn advance(
        &self,
        transaction: &TransactionRef,
        event_id: &str,
        now_ms: i64,
    ) -> Result<TransactionView, StoreError> {
        self.check("advance")?;
        self.inner.advance(transaction, event_id, now_ms).await
    }

    async fn hold(&self, key: &str, holder: &str, until_ms: i64, ended_by_ms: i64) -> Result<bool, StoreError> {
        self.check("hold")?;
        self.inner.hold(key, holder, until_ms, ended_by_ms).await
    }

    async fn let_go(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        self.check("let_go")?;
        self.inner.let_go(key, holder).await
    }
}

/// An [`EventPublisher`] that keeps messages in a `Vec`.
#[derive(Debug, Default)]
pub struct MemoryPublisher {
    messages: Mutex<Vec<OutgoingMessage>>,
    unavailable: AtomicBool,
    /// How many of the next sends fail.
    failing: std::sync::atomic::AtomicUsize,
    /// A send held at the queue's door until the test opens it.
    held: Mutex<Option<(String, std::sync::Arc<HeldSend>)>>,
    /// How long each send takes, in milliseconds (a slow queue).
    delay_ms: std::sync::atomic::AtomicU64,
}

/// A send of one event id held before it reaches the queue: the test sees it arrive, then lets it through.
#[derive(Debug)]
pub struct HeldSend {
    arrived: tokio::sync::watch::Sender<bool>,
    open: tokio::sync::watch::Sender<bool>,
}

impl HeldSend {
    /// Wait until the send has arrived (and is being held).
    pub async fn arrived(&self) {
        let _ = self.arrived.subscribe().wait_for(|arrived| *arrived).await;
    }

    /// Let the send through.
    pub fn open(&self) {
        self.open.send_replace(true);
    }
}

impl MemoryPublisher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Make every send fail, as if SQS were unreachable.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// Make each send take `delay` (a slow queue).
    pub fn set_delay(&self, delay: std::time::Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Make the next `n` sends fail (a partial outage).
    pub fn fail_next(&self, n: usize) {
        self.failing.store(n, Ordering::SeqCst);
    }

    pub fn messages(&self) -> Vec<OutgoingMessage> {
        self.messages.lock().unwrap().clone()
    }

    /// Hold the next send of `id` until [`HeldSend::open`]: a delivery slow between its transaction's
    /// advance and its send.
    pub fn hold(&self, id: &str) -> std::sync::Arc<HeldSend> {
        let held = std::sync::Arc::new(HeldSend {
            arrived: tokio::sync::watch::channel(false).0,
            open: tokio::sync::watch::channel(false).0,
        });
        *self.held.lock().unwrap() = Some((id.to_owned(), held.clone()));
        held
    }
}

#[async_trait]
impl EventPublisher for MemoryPublisher {
    async fn publish(&self, message: &OutgoingMessage) -> Result<(), PublishError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(PublishError::Failed("memory publisher set unavailable".into()));
        }
        let failing = self.failing.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failing.is_ok() {
            return Err(PublishError::Failed("memory publisher failing this send".into()));
        }
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        let held = self.held.lock().unwrap().take_if(|(id, _)| *id == message.id);
        if let Some((_, held)) = held {
            let mut open = held.open.subscribe();
            held.arrived.send_replace(true);
            let _ = open.wait_for(|open| *open).await;
        }
        self.messages.lock().unwrap().push(message.clone());
        Ok(())
    }
}

/// Keeps the lines (tests).
#[derive(Debug, Default)]
pub struct MemorySink(pub Mutex<Vec<String>>);

impl MetricsSink for MemorySink {
    fn emit(&self, line: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line.to_owned());
    }
}

/// Secrets given directly, for tests.
#[derive(Debug, Clone)]
pub struct StaticSecrets(pub Secrets);

#[async_trait]
impl SecretLoader for StaticSecrets {
    async fn load(&self) -> Result<Secrets, SecretsError> {
        Ok(self.0.clone())
    }
}
