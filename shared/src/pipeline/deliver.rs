//! Delivery: each record from its known state (new, sent, leased by another delivery, stalled, or in
//! conflict), bounded in concurrency; and the courier that applies the event to its transaction, sends the
//! message and marks the record sent.

use std::time::Duration;

use futures_util::StreamExt;

use crate::envelope::CloudEvent;
use crate::error::{IngestError, PublishError, StoreError};
use crate::metrics;
use crate::ports::{
    BodyStore, EventPublisher, EventRecord, EventStore, Insert, OutgoingMessage, RecordState, Store, StoredState,
    TransactionStore,
};
use crate::providers::{self, Reason};

use super::{Clock, Outcome, Pipeline};

/// How many events of one callback are delivered at once (a Choice batch can hold hundreds).
pub const BATCH_CONCURRENCY: usize = 16;

/// How long a duplicate waits for another delivery of the same event to finish.
pub const POLL_LIMIT: Duration = Duration::from_secs(2);

const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How long after a transaction's hold ended (its holder's lease, the holder's deadline) another delivery
/// may take it: a holder cut off at its deadline may have a send still on its way, which must land before
/// the next event's message.
pub const HOLD_GRACE: Duration = Duration::from_secs(5);

impl Pipeline {
    /// Deliver every record (those of a batch concurrently, bounded), each from its known state. Every
    /// delivery runs to its end, so none is cut off holding a lease; one failure answers 503 and the retry
    /// completes the rest, with no duplicate.
    pub(super) async fn deliver_all(
        &self,
        records: &[EventRecord],
        known: Vec<Option<StoredState>>,
        payload: &str,
        clock: &Clock,
        lease: Duration,
    ) -> Result<Vec<Outcome>, IngestError> {
        let courier = Courier { store: &*self.store, publisher: &*self.publisher };
        let deliveries: Vec<_> = records
            .iter()
            .zip(known)
            .map(|(record, known)| self.deliver(&courier, record, known, payload, clock, lease))
            .collect();
        let results: Vec<Result<Outcome, IngestError>> =
            futures_util::stream::iter(deliveries).buffer_unordered(BATCH_CONCURRENCY).collect().await;
        results.into_iter().collect()
    }

    async fn deliver(
        &self,
        courier: &Courier<'_, dyn Store>,
        record: &EventRecord,
        known: Option<StoredState>,
        payload: &str,
        clock: &Clock,
        lease: Duration,
    ) -> Result<Outcome, IngestError> {
        let mut current = match known {
            Some(existing) => existing,
            None => match self.store.insert(record).await? {
                Insert::Created => {
                    return courier.send_and_mark(record, payload, clock.now_ms(), record.lease_until_ms).await
                }
                Insert::Exists(existing) => existing,
            },
        };
        let mut outcome = Outcome::Duplicate;
        let mut stored = None;
        if current.content_hash != record.content_hash {
            let conflict = EventRecord {
                id: format!("{}#conflict#{}", record.id, &record.content_hash[..16]),
                state: RecordState::Conflict,
                lease_until_ms: 0,
                transaction: None,
                expires_at: record.expires_at.min(clock.received_ms / 1000 + self.retention.body.as_secs() as i64),
                ..record.clone()
            };
            // Kept once: the same conflicting content again writes nothing more.
            if self.store.insert(&conflict).await? == Insert::Created {
                self.store.note_conflict(&record.id, &conflict.id).await?;
                tracing::warn!(event_id = %record.id, conflict_record = %conflict.id, "same event id, different content: kept, not enqueued");
            }
            if current.state.is_sent() {
                return Ok(Outcome::Conflict);
            }
            // The first delivery never reached the queue: complete it, with its own record and body.
            stored = self::stored(&*self.store, &record.id).await?;
            outcome = Outcome::Conflict;
        }
        loop {
            if current.state.is_sent() {
                return Ok(outcome);
            }
            let now = clock.now_ms();
            // A lease that ended, or a sweeper's back-off (no delivery at work): this delivery takes over.
            let until = now + lease.as_millis() as i64;
            if (current.lease_until_ms <= now || current.backed_off)
                && self.store.take_over(&record.id, current.lease_until_ms, until, &record.leased_by).await?
            {
                tracing::info!(event_id = %record.id, "took over an unfinished delivery");
                let sent = match &stored {
                    Some((first, first_payload)) => courier.send_and_mark(first, first_payload, now, until).await?,
                    None => courier.send_and_mark(record, payload, now, until).await?,
                };
                return Ok(if outcome == Outcome::Conflict { outcome } else { sent });
            }
            if clock.started.elapsed() >= POLL_LIMIT {
                return Err(IngestError::InProgress(record.id.clone()));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
            current = self.store.get(&record.id).await?.ok_or_else(|| IngestError::InProgress(record.id.clone()))?;
        }
    }
}

/// Sends a recorded event's message and marks it sent: the last step of a delivery, shared by the pipeline
/// (new events, takeovers) and the [`crate::sweeper`].
pub(crate) struct Courier<'a, S: EventStore + TransactionStore + ?Sized> {
    /// What the courier writes: the event's record and its transaction.
    pub store: &'a S,
    pub publisher: &'a dyn EventPublisher,
}

/// A stored record and its payload ([`providers::payload_of`] its stored body); `None` if either is gone.
pub async fn stored<S: EventStore + BodyStore + ?Sized>(
    store: &S,
    id: &str,
) -> Result<Option<(EventRecord, String)>, IngestError> {
    let Some(record) = store.load(id).await? else { return Ok(None) };
    let Some(raw) = store.get_body(&record.body_ref).await? else { return Ok(None) };
    let unreadable = record.quarantine.as_ref().is_some_and(|(reason, _)| reason == Reason::UnreadableBody.as_str());
    Ok(Some((record, providers::payload_of(&raw, unreadable))))
}

impl<S: EventStore + TransactionStore + ?Sized> Courier<'_, S> {
    /// Move the event's transaction forward, send the message (with where the transaction stands), then
    /// mark the record sent. The delivery holds the record's lease until `until_ms`. On a failure the lease
    /// is released so that a retry can proceed at once.
    pub async fn send_and_mark(
        &self,
        record: &EventRecord,
        payload: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Outcome, IngestError> {
        let result = self.send(record, payload, now_ms, until_ms).await;
        if let Err(err) = result {
            if let Err(release_err) = self.store.release(&record.id).await {
                tracing::warn!(event_id = %record.id, error = %release_err, "could not release the lease after a failure");
            }
            return Err(err);
        }
        Ok(if record.quarantine.is_some() { Outcome::Quarantined } else { Outcome::Accepted })
    }

    /// With the transaction held from its advance until the message is on the queue: no other event of it
    /// can advance it in between, so its messages leave in the order its state moved.
    async fn send(&self, record: &EventRecord, payload: &str, now_ms: i64, until_ms: i64) -> Result<(), IngestError> {
        let Some(transaction) = &record.transaction else {
            self.publish(record, payload, now_ms).await?;
            return self.mark(record, now_ms).await;
        };
        // One delivery of the event at a time holds its lease: the lease's end names this one.
        let holder = format!("{}@{until_ms}", record.id);
        self.hold(&transaction.key, &holder, until_ms, now_ms).await?;
        let published = self.publish(record, payload, now_ms).await;
        if let Err(err) = self.store.let_go(&transaction.key, &holder).await {
            tracing::warn!(event_id = %record.id, error = %err, "could not let go of the transaction: its hold ends with the lease");
        }
        published?;
        self.mark(record, now_ms).await
    }

    /// Wait (as a duplicate waits for its original) until this delivery holds the transaction: until its
    /// holder lets go, or [`HOLD_GRACE`] after that hold ended.
    async fn hold(&self, key: &str, holder: &str, until_ms: i64, now_ms: i64) -> Result<(), IngestError> {
        let started = tokio::time::Instant::now();
        loop {
            let ended_by = now_ms + started.elapsed().as_millis() as i64 - HOLD_GRACE.as_millis() as i64;
            if self.store.hold(key, holder, until_ms, ended_by).await? {
                return Ok(());
            }
            if started.elapsed() >= POLL_LIMIT {
                return Err(IngestError::TransactionBusy(key.to_owned()));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn mark(&self, record: &EventRecord, now_ms: i64) -> Result<(), IngestError> {
        let sent = if record.quarantine.is_some() { RecordState::Quarantined } else { RecordState::Enqueued };
        self.store.mark_sent(&record.id, sent, now_ms).await?;
        Ok(())
    }

    /// Advance the event's transaction and send the message with where the transaction stands.
    async fn publish(&self, record: &EventRecord, payload: &str, now_ms: i64) -> Result<(), IngestError> {
        let view = match &record.transaction {
            Some(transaction) => Some(self.store.advance(transaction, &record.id, now_ms).await?),
            None => None,
        };
        if let Some(view) = &view {
            metrics::transaction_flags(view.regression, view.contradiction);
        }
        if let Some(view) = view.as_ref().filter(|v| v.contradiction) {
            let transaction = record.transaction.as_ref().map(|t| t.key.as_str()).unwrap_or_default();
            tracing::error!(event_id = %record.id, transaction, transaction_status = ?view.status, "event contradicts the transaction's final outcome: a money question for a human");
        }
        let envelope = CloudEvent::stored(&record.envelope)
            .map_err(|e| StoreError { operation: "read a stored envelope", source: Box::new(e) })?;
        let mut message = OutgoingMessage {
            id: record.id.clone(),
            provider: record.provider,
            event_type: record.event_type.clone(),
            group: record.group.clone(),
            body: envelope.message(view.as_ref(), payload),
            deduplication_id: None,
        };
        match self.publisher.publish(&message).await {
            Ok(()) => {}
            // Only a body full of characters the queue needs escaped gets here; the body is in the store.
            Err(PublishError::TooLarge { bytes }) => {
                tracing::warn!(event_id = %record.id, bytes, "message too large for the queue: sent with a null payload");
                message.body = envelope.message(view.as_ref(), "null");
                self.publisher.publish(&message).await?;
            }
            Err(failed) => return Err(failed.into()),
        }
        Ok(())
    }
}
