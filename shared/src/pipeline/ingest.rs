//! Ingest: one callback taken apart, its reads (a duplicate writes nothing), its body stored once, its
//! signature claimed, then every record handed to delivery; and a stored quarantine taken apart again.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lambda_http::http::HeaderMap;

use crate::envelope::CloudEvent;
use crate::error::IngestError;
use crate::ports::{BodyRecord, EventRecord, RecordState, SignatureClaim, TransactionRef};
use crate::providers::{self, Callback, Incoming};
use crate::state::Step;
use crate::verify::Verified;

use super::{Clock, Outcome, OutcomeCounts, Pipeline, Processed};

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

impl Pipeline {
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
            leased_by: super::delivery_token(),
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
}

/// Every event and quarantined item of `callback` counted as a duplicate.
fn duplicates(callback: &Callback<'_>) -> OutcomeCounts {
    let n = (callback.events.len() + callback.quarantined.len()) as u32;
    OutcomeCounts { duplicate: n, ..OutcomeCounts::default() }
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
