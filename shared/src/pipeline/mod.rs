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

mod deliver;
mod ingest;
mod secrets;

pub(crate) use deliver::Courier;
pub use deliver::{stored, BATCH_CONCURRENCY, HOLD_GRACE, POLL_LIMIT};
pub use ingest::{stored_headers, ReprocessError, Reprocessed, STORED_HEADERS};

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Retention, VerifyConfig};
use crate::metrics::{MetricsSink, StdoutSink};
use crate::ports::{EventPublisher, SecretLoader, Store};
use crate::provider::Provider;
use crate::providers::Ack;
use crate::verify::Verified;
use secrets::{why_not_ready, SecretCache, DEFAULT_SECRETS_REFRESH};

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
    store: Arc<dyn Store>,
    publisher: Arc<dyn EventPublisher>,
    retention: Retention,
    metrics: Arc<dyn MetricsSink>,
}

impl Pipeline {
    pub fn new(
        provider: Provider,
        verify: VerifyConfig,
        secrets: Arc<dyn SecretLoader>,
        store: Arc<dyn Store>,
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

/// A token naming one delivery of one record (a callback's, or a sweep's): 64 random bits from the OS, so
/// that two deliveries of an event never share one, even in the same millisecond or the same batch. A lease
/// is written with it, so that a write applied with its answer lost, then refused on the SDK's retry, is
/// still known as the delivery's own. Sixteen characters keep a marker within one write unit (1 KB).
pub fn delivery_token() -> String {
    let mut bytes = [0u8; 8];
    if let Err(err) = getrandom::getrandom(&mut bytes) {
        // Never on Lambda's Linux; without a token a lost answer is a 503 again, never a second owner.
        tracing::warn!(error = %err, "no randomness for a delivery token");
        return String::new();
    }
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use lambda_http::http::{HeaderMap, HeaderValue};

    use super::secrets::{SECRETS_REFRESH_BUDGET, SECRETS_REFRESH_RETRY};
    use super::*;
    use crate::error::SecretsError;
    use crate::verify::Secrets;

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
