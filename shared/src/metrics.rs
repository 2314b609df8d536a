//! Metrics in CloudWatch Embedded Metric Format: one JSON object per callback (and per sweep) on the log
//! stream, namespace `Payhooks`, dimension `Provider` (plus `Reason` for refusals, `Dialect` for which
//! canonical dialect verified). No metric, dimension or value carries a secret, token, signature or payload
//! value: reasons are error codes, dialects are names.
//!
//! The AWS calls of a callback are timed where they are made (the DynamoDB and SQS adapters) into a
//! recorder scoped to that callback's task, so concurrent callbacks never mix their figures.

use std::cell::RefCell;
use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::provider::Provider;
use crate::verify::Dialect;

pub const NAMESPACE: &str = "Payhooks";

/// What one callback did, as metrics.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CallbackMetrics {
    pub accepted: u32,
    pub duplicate: u32,
    pub conflict: u32,
    pub quarantined: u32,
    /// The error code of a refused callback (`invalid_signature`, `stale_timestamp`, ...).
    pub rejected: Option<&'static str>,
    /// Refused because it could not be authenticated (any 401).
    pub auth_failed: bool,
    /// Which configured secret verified (0 current, 1+ old).
    pub secret_index: Option<usize>,
    pub dialect: Option<Dialect>,
    /// Receive time minus the provider's send timestamp, where it has one.
    pub clock_skew_ms: Option<i64>,
    pub recorded: Recorded,
    pub ingest_ms: f64,
}

/// What is recorded while a callback's task runs.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Recorded {
    pub store_ms: Vec<f64>,
    pub queue_ms: Vec<f64>,
    pub regression: u32,
    pub contradiction: u32,
}

tokio::task_local! {
    static RECORDER: RefCell<Recorded>;
}

/// Run `fut` with a fresh recorder; return its output and what was recorded.
pub async fn recording<F: Future>(fut: F) -> (F::Output, Recorded) {
    let (out, recorded) = RECORDER
        .scope(RefCell::new(Recorded::default()), async {
            let out = fut.await;
            (out, RECORDER.with(|r| r.take()))
        })
        .await;
    (out, recorded)
}

fn record(f: impl FnOnce(&mut Recorded)) {
    let _ = RECORDER.try_with(|r| f(&mut r.borrow_mut()));
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

/// Time one DynamoDB call.
pub async fn store_call<F: Future>(call: F) -> F::Output {
    let started = Instant::now();
    let out = call.await;
    record(|r| r.store_ms.push(millis(started.elapsed())));
    out
}

/// Time one SQS call.
pub async fn queue_call<F: Future>(call: F) -> F::Output {
    let started = Instant::now();
    let out = call.await;
    record(|r| r.queue_ms.push(millis(started.elapsed())));
    out
}

/// Count where an event left its transaction.
pub fn transaction_flags(regression: bool, contradiction: bool) {
    record(|r| {
        r.regression += u32::from(regression);
        r.contradiction += u32::from(contradiction);
    });
}

/// Where EMF lines go: the log stream (stdout) in Lambda, a buffer in tests.
pub trait MetricsSink: Send + Sync {
    fn emit(&self, line: &str);
}

/// Standard output: Lambda sends it to CloudWatch Logs, which extracts the metrics.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl MetricsSink for StdoutSink {
    fn emit(&self, line: &str) {
        println!("{line}");
    }
}

/// One EMF document: directives (dimension sets with their metrics) and the values they point to.
pub(crate) struct Emf {
    directives: Vec<Value>,
    fields: Map<String, Value>,
}

impl Emf {
    pub(crate) fn new() -> Self {
        Self { directives: Vec::new(), fields: Map::new() }
    }

    /// A directive over `dimensions` (name, value) for `metrics` (name, unit, value); metrics with no value
    /// are left out, and so is a directive left with none.
    pub(crate) fn directive(&mut self, dimensions: &[(&str, String)], metrics: Vec<(&str, &str, Option<Value>)>) {
        let present: Vec<_> = metrics.into_iter().filter_map(|(n, u, v)| v.map(|v| (n, u, v))).collect();
        if present.is_empty() {
            return;
        }
        for (name, value) in dimensions {
            self.fields.insert((*name).to_owned(), Value::String(value.clone()));
        }
        let definitions: Vec<Value> = present.iter().map(|(n, u, _)| json!({"Name": n, "Unit": u})).collect();
        for (name, _, value) in present {
            self.fields.insert(name.to_owned(), value);
        }
        let names: Vec<&str> = dimensions.iter().map(|(n, _)| *n).collect();
        self.directives.push(json!({"Namespace": NAMESPACE, "Dimensions": [names], "Metrics": definitions}));
    }

    pub(crate) fn render(mut self, timestamp_ms: i64) -> Option<String> {
        if self.directives.is_empty() {
            return None;
        }
        self.fields.insert("_aws".into(), json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": self.directives}));
        Some(Value::Object(self.fields).to_string())
    }
}

fn count(n: u32) -> Option<Value> {
    (n > 0).then(|| json!(n))
}

fn samples(values: &[f64]) -> Option<Value> {
    // EMF takes at most 100 values per metric in one document.
    (!values.is_empty()).then(|| json!(values.iter().take(100).collect::<Vec<_>>()))
}

impl CallbackMetrics {
    /// The EMF line for one callback of `provider` at `timestamp_ms`.
    pub fn to_emf(&self, provider: Provider, timestamp_ms: i64) -> Option<String> {
        let mut emf = Emf::new();
        let p = || ("Provider", provider.name().to_owned());
        let r = &self.recorded;
        emf.directive(
            &[p()],
            vec![
                ("Accepted", "Count", count(self.accepted)),
                ("Duplicate", "Count", count(self.duplicate)),
                ("Conflict", "Count", count(self.conflict)),
                ("Quarantined", "Count", count(self.quarantined)),
                ("AuthFailed", "Count", count(u32::from(self.auth_failed))),
                ("SecretIndex", "None", self.secret_index.map(|i| json!(i))),
                ("ClockSkew", "Milliseconds", self.clock_skew_ms.map(|ms| json!(ms))),
                ("Regression", "Count", count(r.regression)),
                ("Contradiction", "Count", count(r.contradiction)),
                ("StoreLatency", "Milliseconds", samples(&r.store_ms)),
                ("QueueLatency", "Milliseconds", samples(&r.queue_ms)),
                ("IngestDuration", "Milliseconds", Some(json!(self.ingest_ms))),
            ],
        );
        // Across providers too, for the template's alarms on any quarantine, contradiction or conflict.
        emf.directive(
            &[],
            vec![
                ("Quarantined", "Count", count(self.quarantined)),
                ("Contradiction", "Count", count(r.contradiction)),
                ("Conflict", "Count", count(self.conflict)),
            ],
        );
        if let Some(reason) = self.rejected {
            emf.directive(&[p(), ("Reason", reason.to_owned())], vec![("Rejected", "Count", Some(json!(1)))]);
        }
        if let Some(dialect) = self.dialect {
            emf.directive(
                &[p(), ("Dialect", dialect.as_str().to_owned())],
                vec![("DialectVerified", "Count", Some(json!(1)))],
            );
        }
        emf.render(timestamp_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_document_with_each_dimension_set() {
        let m = CallbackMetrics {
            accepted: 2,
            rejected: None,
            secret_index: Some(1),
            dialect: Some(Dialect::Java),
            clock_skew_ms: Some(-120),
            recorded: Recorded { store_ms: vec![3.5, 4.0], queue_ms: vec![5.0], regression: 1, contradiction: 0 },
            ingest_ms: 12.5,
            ..Default::default()
        };
        let doc: Value = serde_json::from_str(&m.to_emf(Provider::Choice, 1_700_000_000_000).unwrap()).unwrap();
        assert_eq!(doc["Provider"], "choice");
        assert_eq!(doc["Accepted"], 2);
        assert_eq!(doc["SecretIndex"], 1);
        assert_eq!(doc["StoreLatency"], json!([3.5, 4.0]));
        assert!(doc.get("Duplicate").is_none(), "zero counts are left out");
        let directives = doc["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 2, "no quarantine or contradiction: no dimensionless directive");
        assert_eq!(directives[0]["Namespace"], NAMESPACE);
        assert_eq!(directives[1]["Dimensions"], json!([["Provider", "Dialect"]]));
        assert_eq!(doc["Dialect"], "java");
    }

    #[tokio::test]
    async fn each_task_records_its_own_calls() {
        let (_, recorded) = recording(async {
            store_call(async {}).await;
            queue_call(async {}).await;
            transaction_flags(true, false);
        })
        .await;
        assert_eq!((recorded.store_ms.len(), recorded.queue_ms.len(), recorded.regression), (1, 1, 1));
        // Outside a recording scope nothing is recorded and nothing fails.
        store_call(async {}).await;
    }
}
