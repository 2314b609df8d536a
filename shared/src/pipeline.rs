//! One callback from request to acknowledgement: authenticate and normalise, then record and enqueue
//! every event (and every quarantined item) exactly once.
//!
//! Per callback: first reads only (the signature's first use, every record's state), so that a duplicate,
//! however it is encoded, writes nothing. A callback with a record still to send stores its raw body (once per
//! content, never rewritten), then, for Choice and Niobi, claims its signature, pointing at that body: a later
//! body carrying the signature with other content is a duplicate of the first delivery, never new events, and
//! is acknowledged only once that first delivery is complete (completing it from the stored body if need be).
//!
//! Per event (the events of a batch concurrently, at most [`BATCH_CONCURRENCY`] at once): a conditional
//! insert of a small marker. New: send, then mark `ENQUEUED` (`QUARANTINED` for
//! what could not be normalised). Already sent: done. `RECEIVED` under another delivery's lease: poll (at
//! most [`POLL_LIMIT`]), else 503 so the provider retries. `RECEIVED` with the lease expired or released (an
//! earlier delivery failed or crashed between the writes): take the lease over, send, mark. Same id,
//! different content: this delivery is kept in its own `CONFLICT` record; if the first delivery never
//! reached the queue, this one completes it with the first delivery's own message, so a conflict never
//! hides a loss. A 2xx therefore means every event of the callback is on the queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use lambda_http::http::HeaderMap;

use crate::config::{Retention, VerifyConfig};
use crate::envelope::CloudEvent;
use crate::error::{IngestError, PublishError, SecretsError, StoreError};
use crate::metrics::{self, MetricsSink, StdoutSink};
use crate::ports::{
    BodyRecord, EventPublisher, EventRecord, IdempotencyStore, Insert, OutgoingMessage, RecordState, SecretLoader,
    SignatureClaim, StoredState, TransactionRef,
};
use crate::provider::Provider;
use crate::providers::{self, Ack, Callback, Incoming, Reason};
use crate::state::Step;
use crate::verify::Secrets;
use crate::verify::Verified;

/// How many events of one callback are delivered at once (a Choice batch can hold hundreds).
pub const BATCH_CONCURRENCY: usize = 16;

/// How long a duplicate waits for another delivery of the same event to finish.
pub const POLL_LIMIT: Duration = Duration::from_secs(2);
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The request headers kept with a body: nothing that can carry a credential.
pub const STORED_HEADERS: [&str; 7] = [
    "content-type",
    "content-length",
    "user-agent",
    "x-forwarded-for",
    "x-amzn-trace-id",
    "x-muda-timestamp",
    "x-muda-event-type",
];

/// What happened to a callback that was acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Outcome {
    /// At least one event was new and is now recorded and enqueued.
    Accepted,
    /// Nothing could be normalised; what was new is recorded and enqueued as `<provider>.quarantined`.
    Quarantined,
    /// An event id was seen before with other content: kept aside (the first delivery is on the queue).
    Conflict,
    /// Every event had been recorded and enqueued before.
    Duplicate,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug)]
pub struct Processed {
    pub outcome: Outcome,
    /// The provider's acknowledgement, to answer with.
    pub ack: Ack,
    pub event_ids: Vec<String>,
    pub quarantined_ids: Vec<String>,
    pub verified: Verified,
    /// How many events (and quarantined items) ended each way.
    pub counts: OutcomeCounts,
    /// The provider's send time, where it has one.
    pub sent_at_ms: Option<i64>,
}

/// Outcomes per event.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct OutcomeCounts {
    pub accepted: u32,
    pub duplicate: u32,
    pub conflict: u32,
    pub quarantined: u32,
}

impl OutcomeCounts {
    fn of(outcomes: &[Outcome]) -> Self {
        let n = |o: Outcome| outcomes.iter().filter(|x| **x == o).count() as u32;
        Self {
            accepted: n(Outcome::Accepted),
            duplicate: n(Outcome::Duplicate),
            conflict: n(Outcome::Conflict),
            quarantined: n(Outcome::Quarantined),
        }
    }
}

/// Everything one function needs to handle callbacks, built once per cold start.
pub struct Pipeline {
    pub provider: Provider,
    verify: VerifyConfig,
    secrets: SecretCache,
    store: Arc<dyn IdempotencyStore>,
    publisher: Arc<dyn EventPublisher>,
    retention: Retention,
    metrics: Arc<dyn MetricsSink>,
}

impl Pipeline {
    pub fn new(
        provider: Provider,
        verify: VerifyConfig,
        secrets: Arc<dyn SecretLoader>,
        store: Arc<dyn IdempotencyStore>,
        publisher: Arc<dyn EventPublisher>,
        retention: Retention,
    ) -> Self {
        Self {
            provider,
            verify,
            secrets: SecretCache::new(secrets, DEFAULT_SECRETS_REFRESH),
            store,
            publisher,
            retention,
            metrics: Arc::new(StdoutSink),
        }
    }

    /// During init, within `budget`: load the secrets and open the connections to DynamoDB and SQS, so the
    /// first callback pays no SSM call and no TLS handshake. Whatever does not finish in time (or fails) is
    /// done lazily by the first callback, as without a warm-up. Each part that is not ready is logged with
    /// why (a certificate the trust store refuses, a missing permission, an unreachable endpoint) and returned.
    pub async fn warm_up(&self, budget: Duration) -> Result<(), Vec<(WarmUpPart, String)>> {
        let (secrets, store, queue) = tokio::join!(
            tokio::time::timeout(budget, self.secrets.get()),
            tokio::time::timeout(budget, self.store.warm()),
            tokio::time::timeout(budget, self.publisher.warm()),
        );
        let failures: Vec<(WarmUpPart, String)> = [
            (WarmUpPart::Secrets, why_not_ready(secrets, budget)),
            (WarmUpPart::Store, why_not_ready(store, budget)),
            (WarmUpPart::Queue, why_not_ready(queue, budget)),
        ]
        .into_iter()
        .filter_map(|(part, why)| why.map(|why| (part, why)))
        .collect();
        for (part, why) in &failures {
            tracing::warn!(provider = %self.provider, part = part.as_str(), error = %why, "warm-up: not ready; the first callback does it");
        }
        if failures.is_empty() {
            tracing::info!(provider = %self.provider, secrets = true, store = true, queue = true, "warm-up");
            Ok(())
        } else {
            Err(failures)
        }
    }

    /// Read the secrets from their source again once they are older than `refresh` (`SECRETS_REFRESH_SECS`).
    /// A wiring step: the pipeline starts with no secrets loaded.
    pub fn with_secrets_refresh(self, refresh: Duration) -> Self {
        Self { secrets: SecretCache::new(self.secrets.loader, refresh), ..self }
    }

    /// Send metrics to `sink` instead of standard output.
    pub fn with_metrics_sink(self, sink: Arc<dyn MetricsSink>) -> Self {
        Self { metrics: sink, ..self }
    }

    /// Where this pipeline's metrics go.
    pub fn metrics_sink(&self) -> &dyn MetricsSink {
        &*self.metrics
    }

    /// Handle one callback received at `received`; this delivery may hold an event's lease for `lease`.
    pub async fn process(
        &self,
        req: &Incoming<'_>,
        received: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Processed, IngestError> {
        let secrets = self.secrets.get().await?;
        let callback = providers::authenticate_and_normalise(self.provider, &self.verify, &secrets, req, received)?;
        let clock = Clock { received_ms: received.timestamp_millis(), started: Instant::now() };
        let processed = |callback: &Callback<'_>, outcome, counts| Processed {
            outcome,
            ack: callback.ack,
            event_ids: callback.events.iter().map(|e| e.id.clone()).collect(),
            quarantined_ids: callback.quarantined.iter().map(|q| q.id.clone()).collect(),
            verified: callback.verified,
            counts,
            sent_at_ms: callback.sent_at_ms,
        };

        // A body carrying a signature used before with other content stands for that first delivery.
        let signature = callback.signature_key.as_ref().map(|sig| format!("sig#{}#{sig}", self.provider));
        let mut first_use = None;
        if let Some(key) = &signature {
            first_use = self.store.signature(key).await?;
            if let Some(first) = first_use.as_ref().filter(|first| first.content_hash != callback.content_hash) {
                self.complete_first_use(first, &clock, lease).await?;
                return Ok(processed(&callback, Outcome::Duplicate, duplicates(&callback)));
            }
        }

        let body = BodyRecord {
            key: format!("body#{}#{}", self.provider, callback.content_hash),
            provider: self.provider,
            raw_body: req.body.to_vec(),
            headers: stored_headers(req.headers),
            received_at_ms: clock.received_ms,
            expires_at: received.timestamp() + self.retention.body.as_secs() as i64,
        };
        let records = self.records(&callback, &body.key, received, &clock, lease);
        // What is recorded already (reads): a delivery whose every record is sent writes nothing at all.
        let known = self.store.states(&records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>()).await?;
        // New, still completing, or other content under a known id (kept as a conflict, with its body).
        let to_record = known.iter().any(|k| {
            k.as_ref().is_none_or(|stored| !stored.state.is_sent() || stored.content_hash != callback.content_hash)
        });
        if to_record {
            // The body is durable before anything points to it (the signature claim, the markers), so that
            // whatever fails after this, a retry or the sweeper can complete the delivery from it.
            self.store.put_body(&body).await?;
            if let (Some(key), None) = (&signature, &first_use) {
                let claim = SignatureClaim {
                    key: key.clone(),
                    content_hash: callback.content_hash.clone(),
                    body_ref: body.key.clone(),
                    scheme: Some(callback.verified.scheme),
                    secret_index: callback.verified.secret_index,
                    dialect: callback.verified.dialect,
                    received_at_ms: clock.received_ms,
                    // A timestamp that could not be judged leaves replay protection to this record: it lasts
                    // as long as the markers.
                    expires_at: received.timestamp()
                        + if callback.sent_at_ms.is_some() { self.retention.body } else { self.retention.marker }
                            .as_secs() as i64,
                };
                if let Some(first) = self.store.claim_signature(&claim).await? {
                    if first.content_hash != callback.content_hash {
                        self.complete_first_use(&first, &clock, lease).await?;
                        return Ok(processed(&callback, Outcome::Duplicate, duplicates(&callback)));
                    }
                }
            }
        }
        let outcomes = self.deliver_all(&records, known, &callback.payload, &clock, lease).await?;
        for q in &callback.quarantined {
            tracing::warn!(provider = %self.provider, quarantine_id = %q.id, reason = q.reason.as_str(), field = %q.field, "authenticated callback could not be normalised: quarantined");
        }
        let outcome = [Outcome::Accepted, Outcome::Quarantined, Outcome::Conflict]
            .into_iter()
            .find(|o| outcomes.contains(o))
            .unwrap_or(Outcome::Duplicate);
        Ok(processed(&callback, outcome, OutcomeCounts::of(&outcomes)))
    }

    /// Deliver every record (those of a batch concurrently, bounded), each from its known state. Every
    /// delivery runs to its end, so none is cut off holding a lease; one failure answers 503 and the retry
    /// completes the rest, with no duplicate.
    async fn deliver_all(
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

    /// A body carrying a signature first used with other content is a duplicate of that first delivery: it is
    /// acknowledged only once every event the first delivery stands for is sent, so the first delivery is
    /// completed here from its stored body if it is not (its own delivery failed or crashed part way).
    async fn complete_first_use(
        &self,
        first: &SignatureClaim,
        clock: &Clock,
        lease: Duration,
    ) -> Result<(), IngestError> {
        tracing::warn!(provider = %self.provider, "signature already used with other content: a duplicate of its first delivery");
        // A claim written before claims named their body: its delivery wrote its markers before the claim.
        let (Some(scheme), false) = (first.scheme, first.body_ref.is_empty()) else { return Ok(()) };
        // The body is stored before its claim, so it is gone only once expired (`EVENT_TTL_DAYS`): what the
        // first delivery left by then, the sweeper could not complete either.
        let Some(raw) = self.store.get_body(&first.body_ref).await? else {
            tracing::warn!(provider = %self.provider, body = %first.body_ref, "the first delivery's body has expired: nothing more to complete");
            return Ok(());
        };
        let verified = Verified { scheme, secret_index: first.secret_index, dialect: first.dialect };
        let callback = providers::stored_callback(self.provider, &raw, verified)
            .map_err(|why| IngestError::InProgress(format!("{}: stored body unreadable: {why}", first.key)))?;
        let received = DateTime::from_timestamp_millis(first.received_at_ms).unwrap_or_default();
        let records = self.records(&callback, &first.body_ref, received, clock, lease);
        let known = self.store.states(&records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>()).await?;
        self.deliver_all(&records, known, &callback.payload, clock, lease).await?;
        Ok(())
    }

    /// `payhooks-admin reprocess`: the body a quarantine record was made from, taken apart again by the code
    /// running now (a model fixed since), as its first delivery was authenticated. With `deliver`, every
    /// event it now yields is recorded and sent exactly as a first delivery would (one already sent is a
    /// duplicate and writes nothing); without, nothing is written.
    pub async fn reprocess(
        &self,
        quarantine_id: &str,
        deliver: bool,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Reprocessed, ReprocessError> {
        let record =
            self.store.load(quarantine_id).await?.ok_or_else(|| ReprocessError::NoRecord(quarantine_id.to_owned()))?;
        if record.quarantine.is_none() {
            return Err(ReprocessError::NotQuarantined(quarantine_id.to_owned()));
        }
        let raw = self
            .store
            .get_body(&record.body_ref)
            .await?
            .ok_or_else(|| ReprocessError::BodyExpired(quarantine_id.to_owned()))?;
        let verified = Verified { scheme: record.scheme, secret_index: record.secret_index, dialect: record.dialect };
        let callback = providers::stored_callback(self.provider, &raw, verified)
            .map_err(|why| ReprocessError::StillUnreadable(quarantine_id.to_owned(), why.to_string()))?;
        let mut out = Reprocessed {
            quarantine_id: quarantine_id.to_owned(),
            events: callback.events.iter().map(|e| (e.id.clone(), e.event_type(self.provider))).collect(),
            still_quarantined: callback
                .quarantined
                .iter()
                .map(|q| (q.id.clone(), q.reason.as_str().to_owned()))
                .collect(),
            counts: None,
        };
        if deliver {
            let clock = Clock { received_ms: now.timestamp_millis(), started: Instant::now() };
            let received = DateTime::from_timestamp_millis(record.received_at_ms).unwrap_or(now);
            let records = self.records(&callback, &record.body_ref, received, &clock, lease);
            let known = self.store.states(&records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>()).await?;
            let outcomes = self.deliver_all(&records, known, &callback.payload, &clock, lease).await?;
            out.counts = Some(OutcomeCounts::of(&outcomes));
        }
        Ok(out)
    }

    /// The records of a callback's events, then of its quarantined items.
    fn records(
        &self,
        callback: &Callback<'_>,
        body_ref: &str,
        received: DateTime<Utc>,
        clock: &Clock,
        lease: Duration,
    ) -> Vec<EventRecord> {
        let record = |id: &str, event_type: String, group: String, envelope: String| EventRecord {
            id: id.to_owned(),
            provider: self.provider,
            event_type,
            state: RecordState::Received,
            received_at_ms: clock.received_ms,
            lease_until_ms: clock.received_ms + lease.as_millis() as i64,
            body_ref: body_ref.to_owned(),
            scheme: callback.verified.scheme,
            secret_index: callback.verified.secret_index,
            dialect: callback.verified.dialect,
            content_hash: callback.content_hash.clone(),
            group,
            envelope,
            quarantine: None,
            transaction: None,
            expires_at: received.timestamp() + self.retention.marker.as_secs() as i64,
        };
        let mut out = Vec::with_capacity(callback.events.len() + callback.quarantined.len());
        for event in &callback.events {
            let stored = CloudEvent::event(self.provider, event, received);
            let mut record =
                record(&event.id, stored.event_type.to_string(), event.reference.clone(), stored.to_json());
            record.transaction = Some(TransactionRef {
                key: format!("txn#{}#{}", self.provider, event.reference),
                step: Step::of(event.status, callback.sent_at_ms.unwrap_or(clock.received_ms)),
            });
            out.push(record);
        }
        for q in &callback.quarantined {
            let (reason, field) = (q.reason.as_str(), q.field.as_str());
            let stored = CloudEvent::quarantined(self.provider, &q.id, reason, field, received);
            let mut record = record(&q.id, stored.event_type.to_string(), q.id.clone(), stored.to_json());
            record.quarantine = Some((reason.to_owned(), q.field.clone()));
            out.push(record);
        }
        out
    }

    async fn deliver(
        &self,
        courier: &Courier<'_>,
        record: &EventRecord,
        known: Option<StoredState>,
        payload: &str,
        clock: &Clock,
        lease: Duration,
    ) -> Result<Outcome, IngestError> {
        let mut current = match known {
            Some(existing) => existing,
            None => match self.store.insert(record).await? {
                Insert::Created => return courier.send_and_mark(record, payload, clock.now_ms()).await,
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
            if (current.lease_until_ms <= now || current.backed_off)
                && self.store.take_over(&record.id, current.lease_until_ms, now + lease.as_millis() as i64).await?
            {
                tracing::info!(event_id = %record.id, "took over an unfinished delivery");
                let sent = match &stored {
                    Some((first, first_payload)) => courier.send_and_mark(first, first_payload, now).await?,
                    None => courier.send_and_mark(record, payload, now).await?,
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

/// Every event and quarantined item of `callback` counted as a duplicate.
fn duplicates(callback: &Callback<'_>) -> OutcomeCounts {
    let n = (callback.events.len() + callback.quarantined.len()) as u32;
    OutcomeCounts { duplicate: n, ..OutcomeCounts::default() }
}

/// How long loaded secrets are used before their source is read again, unless configured.
const DEFAULT_SECRETS_REFRESH: Duration = Duration::from_secs(crate::config::DEFAULT_SECRETS_REFRESH_SECS);
/// How long a refresh may take before the secrets already loaded are used for this callback.
const SECRETS_REFRESH_BUDGET: Duration = Duration::from_secs(2);
/// After a failed refresh, how long the secrets already loaded are used before the source is tried again.
const SECRETS_REFRESH_RETRY: Duration = Duration::from_secs(30);

/// The secrets a function verifies with. Loaded during init (or by the first callback, whose failure answers
/// 503), then read again from their source once they are older than `refresh`, so that a secret added for a
/// rotation, or removed because it leaked, reaches instances that stay warm for hours. A refresh that fails or
/// takes too long keeps the secrets already loaded (a callback is never refused because SSM is slow) and is
/// tried again [`SECRETS_REFRESH_RETRY`] later.
struct SecretCache {
    loader: Arc<dyn SecretLoader>,
    refresh: Duration,
    current: tokio::sync::Mutex<Option<LoadedSecrets>>,
}

struct LoadedSecrets {
    secrets: Arc<Secrets>,
    /// When the source is to be read again.
    due: tokio::time::Instant,
}

impl SecretCache {
    fn new(loader: Arc<dyn SecretLoader>, refresh: Duration) -> Self {
        Self { loader, refresh, current: tokio::sync::Mutex::new(None) }
    }

    async fn get(&self) -> Result<Arc<Secrets>, SecretsError> {
        let mut current = self.current.lock().await;
        let now = tokio::time::Instant::now();
        let Some(loaded) = current.as_mut() else {
            let secrets = Arc::new(self.loader.load().await?);
            *current = Some(LoadedSecrets { secrets: secrets.clone(), due: now + self.refresh });
            return Ok(secrets);
        };
        if now < loaded.due {
            return Ok(loaded.secrets.clone());
        }
        match tokio::time::timeout(SECRETS_REFRESH_BUDGET, self.loader.load()).await {
            Ok(Ok(fresh)) => *loaded = LoadedSecrets { secrets: Arc::new(fresh), due: now + self.refresh },
            failed => {
                let why = why_not_ready(failed, SECRETS_REFRESH_BUDGET).unwrap_or_default();
                tracing::warn!(error = %why, "secrets could not be read again: the ones loaded before stay in use");
                loaded.due = now + SECRETS_REFRESH_RETRY;
            }
        }
        Ok(loaded.secrets.clone())
    }
}

/// A part of the init warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum WarmUpPart {
    /// The provider secrets (SSM `GetParameter`).
    Secrets,
    /// The DynamoDB connection.
    Store,
    /// The SQS connection.
    Queue,
}

impl WarmUpPart {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Why a step (a warm-up part, a secret refresh) is not done: its error with every cause
/// ([`crate::error::chain`]), or that it ran out of `budget`; `None` if it is done.
fn why_not_ready<T, E: std::error::Error>(
    result: Result<Result<T, E>, tokio::time::error::Elapsed>,
    budget: Duration,
) -> Option<String> {
    match result {
        Ok(Ok(_)) => None,
        Ok(Err(err)) => Some(crate::error::chain(&err)),
        Err(_) => Some(format!("not done within {} ms", budget.as_millis())),
    }
}

/// What a stored quarantined callback yields under the code running now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reprocessed {
    pub quarantine_id: String,
    /// Each event's id and type.
    pub events: Vec<(String, String)>,
    /// What still cannot be normalised: id and reason.
    pub still_quarantined: Vec<(String, String)>,
    /// What delivering them did (`None` for a dry run).
    pub counts: Option<OutcomeCounts>,
}

/// Why a quarantine record cannot be reprocessed.
#[derive(Debug, thiserror::Error)]
pub enum ReprocessError {
    #[error("no record {0}")]
    NoRecord(String),
    #[error("{0} is not a quarantine record (ids look like <provider>:quarantined:<hash>; `payhooks-admin list --state QUARANTINED` lists them)")]
    NotQuarantined(String),
    #[error("the body of {0} has expired (EVENT_TTL_DAYS): it cannot be read again")]
    BodyExpired(String),
    #[error("{0}: the stored body still cannot be read: {1}")]
    StillUnreadable(String, String),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

impl From<crate::error::StoreError> for ReprocessError {
    fn from(e: crate::error::StoreError) -> Self {
        ReprocessError::Ingest(e.into())
    }
}

/// Sends a recorded event's message and marks it sent: the last step of a delivery, shared by the pipeline
/// (new events, takeovers) and the [`crate::sweeper`].
pub(crate) struct Courier<'a> {
    pub store: &'a dyn IdempotencyStore,
    pub publisher: &'a dyn EventPublisher,
}

/// A stored record and its payload ([`providers::payload_of`] its stored body); `None` if either is gone.
pub async fn stored(store: &dyn IdempotencyStore, id: &str) -> Result<Option<(EventRecord, String)>, IngestError> {
    let Some(record) = store.load(id).await? else { return Ok(None) };
    let Some(raw) = store.get_body(&record.body_ref).await? else { return Ok(None) };
    let unreadable = record.quarantine.as_ref().is_some_and(|(reason, _)| reason == Reason::UnreadableBody.as_str());
    Ok(Some((record, providers::payload_of(&raw, unreadable))))
}

impl Courier<'_> {
    /// Move the event's transaction forward, send the message (with where the transaction stands), then
    /// mark the record sent. On a failure the lease is released so that a retry can proceed at once.
    pub async fn send_and_mark(
        &self,
        record: &EventRecord,
        payload: &str,
        now_ms: i64,
    ) -> Result<Outcome, IngestError> {
        let result = self.send(record, payload, now_ms).await;
        if let Err(err) = result {
            if let Err(release_err) = self.store.release(&record.id).await {
                tracing::warn!(event_id = %record.id, error = %release_err, "could not release the lease after a failure");
            }
            return Err(err);
        }
        Ok(if record.quarantine.is_some() { Outcome::Quarantined } else { Outcome::Accepted })
    }

    async fn send(&self, record: &EventRecord, payload: &str, now_ms: i64) -> Result<(), IngestError> {
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
        let sent = if record.quarantine.is_some() { RecordState::Quarantined } else { RecordState::Enqueued };
        self.store.mark_sent(&record.id, sent, now_ms).await?;
        Ok(())
    }
}

/// The time as this callback sees it: its received time plus what has elapsed since.
struct Clock {
    received_ms: i64,
    started: Instant,
}

impl Clock {
    fn now_ms(&self) -> i64 {
        self.received_ms + self.started.elapsed().as_millis() as i64
    }
}

/// The request headers on the allowlist ([`STORED_HEADERS`]), sorted.
pub fn stored_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut kept: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| STORED_HEADERS.contains(&name.as_str()))
        .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str().to_owned(), v.to_owned())))
        .collect();
    kept.sort();
    kept
}

#[cfg(test)]
mod tests {
    use lambda_http::http::HeaderValue;

    use super::*;

    #[test]
    fn only_allowlisted_headers_are_kept() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json"),
            ("signature", "abc"),
            ("authorization", "Bearer x"),
            ("x-muda-signature", "def"),
            ("x-api-key", "k"),
            ("x-webhook-password", "p"),
            ("x-hmac-sha256", "h"),
            ("x-sig", "s"),
            ("x-muda-timestamp", "1763800000"),
            ("user-agent", "GuzzleHttp/7"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        let kept: Vec<String> = stored_headers(&headers).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kept, ["content-type", "user-agent", "x-muda-timestamp"]);
    }

    /// What the test's secret source does when read.
    #[derive(Clone, Copy)]
    enum Answer {
        Values(&'static str),
        Fails,
        Hangs,
    }

    /// A secret source that answers what the test tells it to, and counts its reads.
    struct Rotating {
        answer: std::sync::Mutex<Answer>,
        reads: std::sync::atomic::AtomicUsize,
    }

    impl Rotating {
        fn new(answer: Answer) -> Arc<Self> {
            Arc::new(Self { answer: std::sync::Mutex::new(answer), reads: Default::default() })
        }
        fn answer(&self, answer: Answer) {
            *self.answer.lock().unwrap() = answer;
        }
        fn reads(&self) -> usize {
            self.reads.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    #[async_trait::async_trait]
    impl SecretLoader for Rotating {
        async fn load(&self) -> Result<Secrets, SecretsError> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let answer = *self.answer.lock().unwrap();
            match answer {
                Answer::Values(values) => {
                    Ok(crate::verify::SecretSet::parse(values, "WEBHOOK_SECRETS").unwrap().into())
                }
                Answer::Fails => {
                    Err(SecretsError { source_name: "the test's SSM".into(), source: "ThrottlingException".into() })
                }
                Answer::Hangs => std::future::pending().await,
            }
        }
    }

    /// A Lipia callback with URL token `token` through `pipeline`: the HTTP status it is answered.
    async fn lipia_status(pipeline: &Pipeline, token: &str) -> u16 {
        use crate::testing::{fixture, TestRequest};
        let now = chrono::Utc::now();
        let req = TestRequest::signed(Provider::Lipia, &fixture(Provider::Lipia, "stk_success"), token, now);
        match pipeline.process(&req.incoming(), now, Duration::from_secs(10)).await {
            Ok(_) => 200,
            Err(err) => err.status().as_u16(),
        }
    }

    fn lipia_pipeline(secrets: Arc<dyn SecretLoader>) -> Pipeline {
        use crate::testing::{MemoryPublisher, MemoryStore};
        let (store, publisher) = (Arc::new(MemoryStore::new()), Arc::new(MemoryPublisher::new()));
        Pipeline::new(Provider::Lipia, VerifyConfig::default(), secrets, store, publisher, Retention::default())
            .with_secrets_refresh(Duration::from_secs(300))
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotation_reaches_a_warm_instance_within_the_refresh_interval() {
        let source = Rotating::new(Answer::Values("old-token"));
        let pipeline = lipia_pipeline(source.clone());
        assert_eq!(lipia_status(&pipeline, "old-token").await, 200);
        // The operator replaces a leaked token: until the interval ends, the loaded secrets stand.
        source.answer(Answer::Values("new-token"));
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(lipia_status(&pipeline, "old-token").await, 200);
        assert_eq!(source.reads(), 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(lipia_status(&pipeline, "old-token").await, 401, "a removed token stops working");
        assert_eq!(lipia_status(&pipeline, "new-token").await, 200);
        assert_eq!(source.reads(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_or_hanging_refresh_keeps_the_loaded_secrets_and_is_tried_again_later() {
        for failure in [Answer::Fails, Answer::Hangs] {
            let source = Rotating::new(Answer::Values("token"));
            let pipeline = lipia_pipeline(source.clone());
            assert_eq!(lipia_status(&pipeline, "token").await, 200);
            source.answer(failure);
            tokio::time::advance(Duration::from_secs(300)).await;
            let started = tokio::time::Instant::now();
            assert_eq!(lipia_status(&pipeline, "token").await, 200, "SSM failing never refuses a callback");
            assert!(started.elapsed() <= SECRETS_REFRESH_BUDGET, "{:?}", started.elapsed());
            assert_eq!(source.reads(), 2);
            tokio::time::advance(SECRETS_REFRESH_RETRY - Duration::from_secs(3)).await;
            assert_eq!(lipia_status(&pipeline, "token").await, 200);
            assert_eq!(source.reads(), 2, "not read again before the retry interval");
            source.answer(Answer::Values("token,next"));
            tokio::time::advance(Duration::from_secs(3)).await;
            assert_eq!(lipia_status(&pipeline, "next").await, 200);
            assert_eq!(source.reads(), 3);
        }
    }

    #[tokio::test]
    async fn a_warm_up_part_that_hangs_is_given_up_at_the_budget_and_named() {
        let started = Instant::now();
        let hanging = lipia_pipeline(Rotating::new(Answer::Hangs));
        let failures = hanging.warm_up(Duration::from_millis(50)).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        assert_eq!(failures, [(WarmUpPart::Secrets, "not done within 50 ms".to_owned())]);
        let ready = lipia_pipeline(Rotating::new(Answer::Values("token")));
        assert_eq!(ready.warm_up(Duration::from_millis(50)).await, Ok(()));
    }
}
