//! The sweeper: no acknowledged or recorded event left behind.
//!
//! A delivery whose `SendMessage` failed answers 503 and leaves its record `RECEIVED`; if the provider never
//! retries (Choice stops after 5 sends, Niobi documents no retry), no consumer would ever see the event. On a
//! schedule, the sweeper asks the sparse `pending` index for records still `RECEIVED` whose lease has ended
//! (one query per shard of the index, never a scan), and completes each with the same lease rules as a
//! retry: take the lease over (so a provider retry or another sweep racing it cannot also send), rebuild the
//! message from the stored record and body, send, mark. A quarantined item left `RECEIVED` is completed the
//! same way (as `<provider>.quarantined`: a human must still see it); nothing is ever normalised again here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{BoxError, IngestError, PublishError, StoreError};
use crate::metrics::{self, MetricsSink, StdoutSink};
use crate::pipeline::{self, Courier};
use crate::ports::{EventPublisher, IdempotencyStore, RecordState};
use crate::provider::Provider;

/// The most records one run completes (the next run takes the rest).
pub const SWEEP_LIMIT: usize = 100;

/// What one run did: written as one JSON log line.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Records the index returned.
    pub found: usize,
    /// Records this run sent and marked (the `Swept` count).
    pub swept: usize,
    /// Records another delivery had completed or taken over first.
    pub skipped: usize,
    /// Records that failed (left for the next run) or whose body has expired.
    pub failed: usize,
}

/// Completes stalled deliveries for every provider.
pub struct Sweeper {
    store: Arc<dyn IdempotencyStore>,
    publishers: HashMap<Provider, Arc<dyn EventPublisher>>,
    lease: Duration,
    metrics: Arc<dyn MetricsSink>,
}

impl Sweeper {
    /// `publishers`: each provider's queue; `lease`: how long a sweep holds a record (the function timeout).
    pub fn new(
        store: Arc<dyn IdempotencyStore>,
        publishers: HashMap<Provider, Arc<dyn EventPublisher>>,
        lease: Duration,
    ) -> Self {
        Self { store, publishers, lease, metrics: Arc::new(StdoutSink) }
    }

    /// Send metrics to `sink` instead of standard output.
    pub fn with_metrics_sink(self, sink: Arc<dyn MetricsSink>) -> Self {
        Self { metrics: sink, ..self }
    }

    /// One run at `now`.
    pub async fn run(&self, now: DateTime<Utc>) -> Result<SweepReport, IngestError> {
        let now_ms = now.timestamp_millis();
        let ids = self.store.stalled(now_ms, SWEEP_LIMIT).await?;
        let mut report = SweepReport { found: ids.len(), ..SweepReport::default() };
        for id in ids {
            match self.complete(&id, now_ms).await {
                Ok(true) => report.swept += 1,
                Ok(false) => report.skipped += 1,
                Err(err) => {
                    report.failed += 1;
                    tracing::warn!(event_id = %id, error = %err, "sweep could not complete a delivery; the next run retries");
                }
            }
        }
        Ok(report)
    }

    /// Complete one stalled delivery; `false` if another delivery got there first.
    async fn complete(&self, id: &str, now_ms: i64) -> Result<bool, IngestError> {
        let Some(state) = self.store.get(id).await? else { return Ok(false) };
        if state.state != RecordState::Received || state.lease_until_ms >= now_ms {
            return Ok(false);
        }
        if !self.store.take_over(id, state.lease_until_ms, now_ms + self.lease.as_millis() as i64).await? {
            return Ok(false);
        }
        let store = &*self.store;
        let Some((record, payload)) = pipeline::stored(store, id).await? else {
            let source = format!("{id}: its record or body is gone").into();
            return Err(StoreError { operation: "GetItem", source }.into());
        };
        let publisher = self
            .publishers
            .get(&record.provider)
            .ok_or_else(|| PublishError::Failed(format!("no queue configured for {}", record.provider).into()))?;
        Courier { store, publisher: &**publisher }.send_and_mark(&record, &payload, now_ms).await?;
        tracing::info!(event_id = %id, provider = %record.provider, "swept: a delivery no provider retried is now enqueued");
        Ok(true)
    }
}

/// One scheduled run: the report as one JSON log line. A failed query is an error the schedule retries.
pub async fn handle(sweeper: &Sweeper) -> Result<SweepReport, BoxError> {
    let report = sweeper.run(Utc::now()).await?;
    if let Some(line) = metrics::sweep_emf(&report, Utc::now().timestamp_millis()) {
        sweeper.metrics.emit(&line);
    }
    tracing::info!(
        sweep = %serde_json::to_string(&report).expect("a report always serialises"),
        found = report.found,
        swept = report.swept,
        skipped = report.skipped,
        failed = report.failed,
        "sweep"
    );
    Ok(report)
}
