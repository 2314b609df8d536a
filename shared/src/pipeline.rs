//! One callback from request to acknowledgement: authenticate and normalise, then record and enqueue
//! every event exactly once.
//!
//! Per event: a conditional insert. New: send, then mark `ENQUEUED`. Already `ENQUEUED`: done. `RECEIVED`
//! under another delivery's lease: poll for `ENQUEUED` (at most [`POLL_LIMIT`]), else 503 so the provider
//! retries. `RECEIVED` with the lease expired or released (an earlier delivery failed or crashed between the
//! writes): take the lease over, send, mark. Same id, different content: the delivery is kept in its own
//! `CONFLICT` record, nothing is sent, the provider is acknowledged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lambda_http::http::HeaderMap;

use crate::config::VerifyConfig;
use crate::error::IngestError;
use crate::event::CloudEvent;
use crate::ports::{EventPublisher, EventRecord, IdempotencyStore, Insert, OutgoingMessage, RecordState, SecretLoader};
use crate::provider::Provider;
use crate::providers::{self, Incoming};
use crate::verify::{SecretSet, Verified};

/// How long a duplicate waits for another delivery of the same event to finish.
pub const POLL_LIMIT: Duration = Duration::from_secs(2);
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// What happened to a callback that was acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// At least one event was new and is now recorded and enqueued.
    Accepted,
    /// Every event had been recorded and enqueued before.
    Duplicate,
    /// An event id was seen before with other content: kept aside, not enqueued.
    Conflict,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::Conflict => "conflict",
        }
    }
}

#[derive(Debug)]
pub struct Processed {
    pub outcome: Outcome,
    pub event_ids: Vec<String>,
    pub verified: Verified,
}

/// Everything one function needs to handle callbacks, built once per cold start.
pub struct Pipeline {
    pub provider: Provider,
    verify: VerifyConfig,
    secrets: Arc<dyn SecretLoader>,
    /// The secrets, loaded at the first request of a cold start (a failed load is retried by the next one).
    loaded: tokio::sync::OnceCell<SecretSet>,
    store: Arc<dyn IdempotencyStore>,
    publisher: Arc<dyn EventPublisher>,
    event_ttl: Duration,
}

impl Pipeline {
    pub fn new(
        provider: Provider,
        verify: VerifyConfig,
        secrets: Arc<dyn SecretLoader>,
        store: Arc<dyn IdempotencyStore>,
        publisher: Arc<dyn EventPublisher>,
        event_ttl: Duration,
    ) -> Self {
        Self { provider, verify, secrets, loaded: tokio::sync::OnceCell::new(), store, publisher, event_ttl }
    }

    /// Handle one callback received at `received`; this delivery may hold an event's lease for `lease`.
    pub async fn process(
        &self,
        req: &Incoming<'_>,
        received: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Processed, IngestError> {
        let secrets = self.loaded.get_or_try_init(|| self.secrets.load()).await?;
        let callback = providers::authenticate_and_normalise(self.provider, &self.verify, secrets, req, received)?;
        let clock = Clock { received_ms: received.timestamp_millis(), started: Instant::now() };
        let headers = safe_headers(req.headers);
        let mut outcomes = Vec::with_capacity(callback.events.len());
        for event in &callback.events {
            let envelope = CloudEvent::new(self.provider, event, received, &callback.payload);
            let record = EventRecord {
                id: event.id.clone(),
                provider: self.provider,
                event_type: envelope.event_type.clone(),
                state: RecordState::Received,
                received_at_ms: clock.received_ms,
                lease_until_ms: clock.received_ms + lease.as_millis() as i64,
                raw_body: callback.body.to_owned(),
                headers: headers.clone(),
                scheme: callback.verified.scheme,
                secret_index: callback.verified.secret_index,
                content_hash: callback.content_hash.clone(),
                expires_at: received.timestamp() + self.event_ttl.as_secs() as i64,
            };
            let message = OutgoingMessage {
                id: event.id.clone(),
                provider: self.provider,
                event_type: envelope.event_type.clone(),
                group: event.reference.clone(),
                body: envelope.to_json(),
            };
            outcomes.push(self.deliver(&record, &message, &clock, lease).await?);
        }
        let outcome = if outcomes.contains(&Outcome::Accepted) {
            Outcome::Accepted
        } else if outcomes.contains(&Outcome::Conflict) {
            Outcome::Conflict
        } else {
            Outcome::Duplicate
        };
        Ok(Processed {
            outcome,
            event_ids: callback.events.iter().map(|e| e.id.clone()).collect(),
            verified: callback.verified,
        })
    }

    async fn deliver(
        &self,
        record: &EventRecord,
        message: &OutgoingMessage,
        clock: &Clock,
        lease: Duration,
    ) -> Result<Outcome, IngestError> {
        let mut current = match self.store.insert(record).await? {
            Insert::Created => return self.send_and_mark(record, message, clock).await,
            Insert::Exists(existing) => existing,
        };
        if current.content_hash != record.content_hash {
            let conflict = EventRecord {
                id: format!("{}#conflict#{}", record.id, &record.content_hash[..16]),
                state: RecordState::Conflict,
                lease_until_ms: 0,
                ..record.clone()
            };
            self.store.insert(&conflict).await?;
            tracing::warn!(event_id = %record.id, conflict_record = %conflict.id, "same event id, different content: kept, not enqueued");
            return Ok(Outcome::Conflict);
        }
        loop {
            if current.state == RecordState::Enqueued {
                return Ok(Outcome::Duplicate);
            }
            let now = clock.now_ms();
            if current.lease_until_ms <= now
                && self.store.take_over(&record.id, current.lease_until_ms, now + lease.as_millis() as i64).await?
            {
                tracing::info!(event_id = %record.id, "took over an unfinished delivery");
                return self.send_and_mark(record, message, clock).await;
            }
            if clock.started.elapsed() >= POLL_LIMIT {
                return Err(IngestError::InProgress(record.id.clone()));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
            current = self.store.get(&record.id).await?.ok_or_else(|| IngestError::InProgress(record.id.clone()))?;
        }
    }

    async fn send_and_mark(
        &self,
        record: &EventRecord,
        message: &OutgoingMessage,
        clock: &Clock,
    ) -> Result<Outcome, IngestError> {
        let result = match self.publisher.publish(message).await {
            Ok(()) => self.store.mark_enqueued(&record.id, clock.now_ms()).await.map_err(IngestError::from),
            Err(e) => Err(e.into()),
        };
        if let Err(err) = result {
            if let Err(release_err) = self.store.release(&record.id).await {
                tracing::warn!(event_id = %record.id, error = %release_err, "could not release the lease after a failure");
            }
            return Err(err);
        }
        Ok(Outcome::Accepted)
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

/// Request headers worth keeping with the record: anything that may carry a credential is dropped.
pub fn safe_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    const SECRET_HINTS: [&str; 6] = ["auth", "cookie", "signature", "token", "secret", "key"];
    let mut kept: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| !SECRET_HINTS.iter().any(|hint| name.as_str().contains(hint)))
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
    fn secret_bearing_headers_are_dropped() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json"),
            ("signature", "abc"),
            ("authorization", "Bearer x"),
            ("x-muda-signature", "def"),
            ("x-api-key", "k"),
            ("user-agent", "GuzzleHttp/7"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        let kept: Vec<String> = safe_headers(&headers).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kept, ["content-type", "user-agent"]);
    }
}
