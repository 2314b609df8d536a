//! The sweeper: no acknowledged or recorded event left behind.
//!
//! A delivery whose `SendMessage` failed answers 503 and leaves its record `RECEIVED`; if the provider never
//! retries (Choice stops after 5 sends, Niobi documents no retry), no consumer would ever see the event. On a
//! schedule, the sweeper asks the sparse `pending` index for records still `RECEIVED` whose lease has ended
//! (one query per shard of the index, never a scan), and completes each with the same lease rules as a
//! retry: take the lease over (so a provider retry or another sweep racing it cannot also send), rebuild the
//! message from the stored record and body, send, mark. A quarantined item left `RECEIVED` is completed the
//! same way (as `<provider>.quarantined`: a human must still see it); nothing is ever normalised again here.
//!
//! A record the sweep cannot complete (its queue is broken, its body expired) backs off: its lease is set
//! ahead, longer after each failure ([`backoff`]), so the next queries find other records, and a run goes
//! on querying while pages come back full ([`SWEEP_ROUNDS`]): records stuck on one queue never starve the
//! others. Failures are counted (`SweepFailed`) and alarmed on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{BoxError, IngestError, PublishError, StoreError};
use crate::metrics::{Emf, MetricsSink, StdoutSink};
use crate::pipeline::{self, Courier};
use crate::ports::{EventPublisher, RecordState, Store};
use crate::provider::Provider;
use serde_json::json;

/// The most records one query of the index returns.
pub const SWEEP_LIMIT: usize = 100;
/// The most queries one run makes: while pages come back full, the run goes on (records that failed have
/// backed off, so each query finds others), so that records stuck on one broken queue cannot fill every
/// sweep while healthy records of other providers wait.
pub const SWEEP_ROUNDS: usize = 5;
/// A record a sweep failed to complete is left alone this long after its first failure, doubling with each
/// failure up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(60);
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// A run takes no further record once less than this is left before its deadline: the time one record may
/// take (its reads, its transaction, its send and its mark, each with the SDK's retries).
pub const LAST_RECORD_TIME: Duration = Duration::from_secs(2);

/// What one run did: written as one JSON log line.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Records the index returned (the `SweepFound` count).
    pub found: usize,
    /// Records this run sent and marked (the `Swept` count).
    pub swept: usize,
    /// Records another delivery had completed or taken over first.
    pub skipped: usize,
    /// Records that failed (backed off for the next runs) or whose body has expired (the `SweepFailed` count).
    pub failed: usize,
    /// Records found but left to the next run, because this run's time was nearly up.
    pub left: usize,
}

impl SweepReport {
    /// The EMF line for one sweep: `Swept`, `SweepFound` and `SweepFailed`, with no dimension.
    pub fn to_emf(&self, timestamp_ms: i64) -> Option<String> {
        let mut emf = Emf::new();
        emf.directive(
            &[],
            vec![
                ("Swept", "Count", Some(json!(self.swept))),
                ("SweepFound", "Count", Some(json!(self.found))),
                ("SweepFailed", "Count", Some(json!(self.failed))),
            ],
        );
        emf.render(timestamp_ms)
    }
}

/// How long the sweeper leaves a record alone after its `failures`-th failure (counting from 0).
pub fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF.saturating_mul(1 << failures.min(16)).min(MAX_BACKOFF)
}

/// Completes stalled deliveries for every provider.
pub struct Sweeper {
    store: Arc<dyn Store>,
    publishers: HashMap<Provider, Arc<dyn EventPublisher>>,
    lease: Duration,
    metrics: Arc<dyn MetricsSink>,
}

impl Sweeper {
    /// `publishers`: each provider's queue; `lease`: how long a sweep holds a record (the function timeout).
    pub fn new(store: Arc<dyn Store>, publishers: HashMap<Provider, Arc<dyn EventPublisher>>, lease: Duration) -> Self {
        Self { store, publishers, lease, metrics: Arc::new(StdoutSink) }
    }

    /// Send metrics to `sink` instead of standard output.
    pub fn with_metrics_sink(self, sink: Arc<dyn MetricsSink>) -> Self {
        Self { metrics: sink, ..self }
    }

    /// One run at `now`, with the function's timeout (the sweeper's lease) to do it in.
    pub async fn run(&self, now: DateTime<Utc>) -> Result<SweepReport, IngestError> {
        self.run_until(now, now.timestamp_millis() + self.lease.as_millis() as i64).await
    }

    /// One run at `now` that must end by `deadline_ms` (the invocation's deadline, when Lambda ends it): it
    /// takes no record once less than [`LAST_RECORD_TIME`] is left, so that it is never cut off holding one,
    /// and what it found and did not take is left to the next run. A record it takes is leased until the
    /// deadline.
    pub async fn run_until(&self, now: DateTime<Utc>, deadline_ms: i64) -> Result<SweepReport, IngestError> {
        let started = tokio::time::Instant::now();
        let clock = || now.timestamp_millis() + started.elapsed().as_millis() as i64;
        let mut report = SweepReport::default();
        for round in 0..SWEEP_ROUNDS {
            let ids = match self.store.stalled(clock(), SWEEP_LIMIT).await {
                Ok(ids) => ids,
                Err(err) if round == 0 => return Err(err.into()),
                Err(err) => {
                    tracing::warn!(error = %crate::error::chain(&err), "sweep: a further query failed; the next run goes on");
                    break;
                }
            };
            report.found += ids.len();
            let full = ids.len() == SWEEP_LIMIT;
            for (n, id) in ids.iter().enumerate() {
                if clock() + LAST_RECORD_TIME.as_millis() as i64 > deadline_ms {
                    report.left += ids.len() - n;
                    tracing::warn!(left = ids.len() - n, "sweep: its time is nearly up; the next run goes on");
                    return Ok(report);
                }
                match self.complete(id, clock(), deadline_ms).await {
                    Ok(true) => report.swept += 1,
                    Ok(false) => report.skipped += 1,
                    Err(err) => {
                        report.failed += 1;
                        tracing::error!(event_id = %id, error = %crate::error::chain(&err), "sweep could not complete a delivery; it backs off and a later run retries");
                    }
                }
            }
            if !full {
                break;
            }
        }
        Ok(report)
    }

    /// Complete one stalled delivery; `false` if another delivery got there first. A failure after the
    /// takeover backs the record off (its lease set ahead, longer after each failure).
    async fn complete(&self, id: &str, now_ms: i64, held: i64) -> Result<bool, IngestError> {
        let Some(state) = self.store.get(id).await? else { return Ok(false) };
        if state.state != RecordState::Received || state.lease_until_ms >= now_ms {
            return Ok(false);
        }
        if !self.store.take_over(id, state.lease_until_ms, held, &pipeline::delivery_token()).await? {
            return Ok(false);
        }
        let result = self.send(id, now_ms, held).await;
        if let Err(err) = &result {
            let until = now_ms + backoff(state.sweep_failures).as_millis() as i64;
            match self.store.back_off(id, held, until).await {
                Ok(true) => {
                    tracing::warn!(event_id = %id, failures = state.sweep_failures + 1, error = %err, backoff_until_ms = until, "sweep failed: backed off")
                }
                Ok(false) => tracing::info!(event_id = %id, "sweep failed; another delivery holds the record now"),
                Err(back_off_err) => {
                    tracing::warn!(event_id = %id, error = %back_off_err, "could not back off after a failed sweep")
                }
            }
        }
        result.map(|()| true)
    }

    /// Rebuild a taken-over record's message from the store, send it and mark it.
    async fn send(&self, id: &str, now_ms: i64, held_until_ms: i64) -> Result<(), IngestError> {
        let store = &*self.store;
        let Some((record, payload)) = pipeline::stored(store, id).await? else {
            let source = format!("{id}: its record or body is gone").into();
            return Err(StoreError { operation: "GetItem", source }.into());
        };
        let publisher = self
            .publishers
            .get(&record.provider)
            .ok_or_else(|| PublishError::Failed(format!("no queue configured for {}", record.provider).into()))?;
        Courier { store, publisher: &**publisher }.send_and_mark(&record, &payload, now_ms, held_until_ms).await?;
        tracing::info!(event_id = %id, provider = %record.provider, "swept: a delivery no provider retried is now enqueued");
        Ok(())
    }
}

/// One scheduled run: the report as one JSON log line. A failed query is an error the schedule retries.
pub async fn handle(sweeper: &Sweeper, deadline_ms: Option<i64>) -> Result<SweepReport, BoxError> {
    let now = Utc::now();
    let report = match deadline_ms {
        Some(deadline_ms) => sweeper.run_until(now, deadline_ms).await?,
        None => sweeper.run(now).await?,
    };
    if let Some(line) = report.to_emf(Utc::now().timestamp_millis()) {
        sweeper.metrics.emit(&line);
    }
    tracing::info!(
        sweep = %serde_json::to_string(&report).expect("a report always serialises"),
        found = report.found,
        swept = report.swept,
        skipped = report.skipped,
        failed = report.failed,
        left = report.left,
        "sweep"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_an_hour() {
        let minutes: Vec<u64> = (0..8).map(|n| backoff(n).as_secs() / 60).collect();
        assert_eq!(minutes, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
