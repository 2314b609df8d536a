//! Test helpers, in one place behind the `test-util` feature (the Lambdas build without it): in-memory
//! ports, fixtures, signed test requests and API Gateway events. Used by the shared crate's tests, the
//! emulator tests in `tests/` and the benchmark. The signers themselves are in `signing`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use lambda_http::http::{HeaderMap, HeaderValue, Method};

use crate::config::Retention;
use crate::config::VerifyConfig;
use crate::error::{PublishError, Rejection, StoreError};
use crate::metrics::MemorySink;
use crate::pipeline::Pipeline;
use crate::ports::{
    BodyRecord, BodyStore, EventPublisher, EventRecord, EventStore, Insert, OutgoingMessage, RecordState,
    SignatureClaim, SignatureStore, StaticSecrets, StoredState, TransactionRef, TransactionStore,
};
use crate::provider::Provider;
use crate::providers::signing::{self as signer, SignOptions};
use crate::providers::Signer;
use crate::providers::{self, Callback, Incoming};
use crate::state::{payment_view, PaymentStatus, Step, TransactionView};
use crate::verify::canonical::{CanonicalPairs, SIGNATURE_FIELD};
use crate::verify::json::{self, ReadError};
use crate::verify::signing::{self, CanonicalHash};
use crate::verify::Secrets;
use crate::verify::{Dialect, Secret, SecretSet};

pub use crate::providers::fields::{decimal, is_plain};
pub use crate::verify::signing::hmac_sha256;

/// The current test secret, and the previous one (still accepted during rotation).
pub const SECRET: &str = "test-secret-current";
pub const OLD_SECRET: &str = "test-secret-previous";

/// Both test secrets, current first.
pub fn secrets() -> SecretSet {
    SecretSet::parse(&format!("{SECRET},{OLD_SECRET}"), "WEBHOOK_SECRETS").expect("two secrets")
}

pub use crate::providers::signing::SignedRequest;

/// Sign `body` as `provider` would at `now`, with the default options (Niobi: plain SHA-256).
pub fn sign(provider: Provider, body: &str, secret: &str, now: DateTime<Utc>) -> SignedRequest {
    sign_with(provider, body, secret, &SignOptions::default(), now)
}

/// Sign `body` as `provider` would at `now`.
pub fn sign_with(
    provider: Provider,
    body: &str,
    secret: &str,
    options: &SignOptions,
    now: DateTime<Utc>,
) -> SignedRequest {
    signer::sign(provider, body, &Secret::new(secret), options, now).expect("fixture bodies are JSON objects")
}

/// Choice or Niobi: `body` signed as it is (its `timestamp` untouched, however odd), Postman dialect, SHA-256.
pub fn sign_as_sent(body: &str, secret: &str) -> SignedRequest {
    let signed = signing::sign_canonical_body(body, &Secret::new(secret), CanonicalHash::Sha256, Dialect::Postman);
    SignedRequest::new(signed.expect("a JSON object"))
}

/// A Choice 0002 (the fixture) for transaction `TX-9000005` with `txStatus` `tx_status`, as request `request_id`.
pub fn choice_transaction(tx_status: &str, request_id: &str) -> String {
    fixture(Provider::Choice, "0002_transaction")
        .replace("\"txStatus\": 8", &format!("\"txStatus\": {tx_status}"))
        .replace("TX-9000001", "TX-9000005")
        .replace("BAAS000220251122000001", request_id)
}

/// A body's canonical string without `senderKey`: its `path=value` pairs in signing order, joined with `&`.
pub fn canonical_string(body: &str) -> Result<String, ReadError> {
    Ok(crate::verify::canonical::CanonicalPairs::of(&json::read(body)?).joined())
}

/// Whether a body reads (depth, duplicate keys, string escapes), and if so whether its canonical string has a
/// second reading in the Postman dialect.
pub fn read_verdict(body: &str) -> Result<bool, ReadError> {
    json::read_signed(body).map(|doc| !crate::verify::canonical::second_readings(&doc, Dialect::Postman).is_empty())
}

/// What the reader makes of a body, for the fuzz targets: its top-level members' raw text, its leaves as
/// `path=value`, the body without `signature`, and its content hash.
pub fn read_parts(body: &str) -> Result<(Vec<String>, Vec<String>, String, String), ReadError> {
    let doc = json::read(body)?;
    let members = doc.members().map(|(_, raw)| raw.to_owned()).collect();
    let leaves = doc.pairs.iter().map(|p| doc.joined(p)).collect();
    Ok((members, leaves, doc.object_without(&[SIGNATURE_FIELD]).into_owned(), doc.content_hash(&[])))
}

/// The body of an unsigned request whose `signature` field was set by hand (tests of missing signatures).
pub fn without_signature(body: &str) -> String {
    json::read(body).expect("a JSON object").object_without(&[SIGNATURE_FIELD]).into_owned()
}

/// The worst bodies of at most 128 KiB we know how to build for the reader and the canonical string: deep,
/// wide, many keys, long strings, many escapes. Each carries a `signature` (wrong), so Choice and Niobi
/// flatten, sort and hash them before refusing them.
pub fn hostile_bodies() -> Vec<(&'static str, String)> {
    const SIZE: usize = 131_072;
    let fill = |unit: &str, room: usize| unit.repeat(room / unit.len());
    let wrap = |inner: String| format!(r#"{{"signature":"00","timestamp":1,"params":{inner}}}"#);
    let deep_then_wide = {
        let (open, close) = ("[".repeat(30), "]".repeat(30));
        wrap(format!("{open}{}1{close}", fill("1,", SIZE - 200)))
    };
    let many_keys = {
        let keys: Vec<String> = (0..4000).map(|i| format!(r#""k{i:05}":{i}"#)).collect();
        wrap(format!("{{{}}}", keys.join(",")))
    };
    let many_keys_last_repeated = {
        let mut keys: Vec<String> = (0..4000).map(|i| format!(r#""k{i:05}":{i}"#)).collect();
        keys.push(r#""k00000":0"#.to_owned());
        wrap(format!("{{{}}}", keys.join(",")))
    };
    let long_key_many_leaves = wrap(format!(r#"{{"{}":[{}1]}}"#, "k".repeat(SIZE / 2), fill("1,", SIZE / 2 - 200)));
    vec![
        ("nested 20,000 deep", wrap(format!("{}{}", "[".repeat(SIZE / 2 - 100), "]".repeat(SIZE / 2 - 100)))),
        ("30 deep, then 65,000 items", deep_then_wide),
        ("4,000 keys in one object", many_keys),
        ("4,000 keys, the last repeated", many_keys_last_repeated),
        ("64 KiB key over many leaves", long_key_many_leaves),
        ("one 128 KiB string", wrap(format!(r#""{}""#, fill("x", SIZE - 100)))),
        ("21,000 escapes", wrap(format!(r#""{}""#, fill("\\u00e9", SIZE - 100)))),
        ("10,000 surrogate pairs", wrap(format!(r#""{}""#, fill("\\ud83d\\ude00", SIZE - 100)))),
        ("4,000 empty objects", wrap(format!("[{}{{}}]", "{},".repeat(3999)))),
        ("one 128 KiB number", wrap(fill("9", SIZE - 100))),
        ("4,000 strings holding &k=v", wrap(format!("[{}\"a&b=c\"]", "\"a&b=c\",".repeat(3999)))),
        // Each `&a=b` is checked against the pieces before it: at most linear, never quadratic.
        ("one string of 32,000 &a=b", wrap(format!(r#""{}""#, fill("&a=b", SIZE - 100)))),
    ]
}

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures"))
}

/// One fixture body: `tests/fixtures/<provider>/<name>.json`.
pub fn fixture(provider: Provider, name: &str) -> String {
    let path = fixtures_dir().join(provider.name()).join(format!("{name}.json"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every fixture of a provider: (name, body), sorted by name.
pub fn all_fixtures(provider: Provider) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(fixtures_dir().join(provider.name()))
        .expect("a fixture folder per provider")
        .map(|e| e.expect("a readable entry").path())
        .map(|p| {
            let name = p.file_stem().unwrap_or_default().to_string_lossy().into_owned();
            let body = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (name, body)
        })
        .collect();
    out.sort();
    out
}

/// A Choice bulk-transfer notification (0008) with `n` items, each its own transaction.
pub fn choice_batch(n: usize) -> String {
    let mut v: serde_json::Value =
        serde_json::from_str(&fixture(Provider::Choice, "0008_bulk_transfer")).expect("JSON");
    let item = v["params"]["resultArray"][0].clone();
    let items: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let mut item = item.clone();
            item["txId"] = format!("TX-B{i:04}").into();
            item
        })
        .collect();
    v["params"]["resultArray"] = items.into();
    v.to_string()
}

pub use crate::providers::signing::typical;

/// `text` without the white space between JSON tokens: for the fixtures, the bytes Python's
/// `json.dumps(obj, separators=(",", ":"), ensure_ascii=False)` writes (`make bench-compare` checks that), so
/// the bench reads, hashes and signs the same bytes as the Python twin (`scripts/twin`).
pub fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            (in_string, escaped) = (escaped || c != '"', !escaped && c == '\\');
        } else if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        } else {
            in_string = c == '"';
        }
        out.push(c);
    }
    out
}

/// The bench's callback for `provider` at `now`: its typical fixture, compact as the Python twin sends it,
/// signed with [`SECRET`].
pub fn bench_request(provider: Provider, now: DateTime<Utc>) -> TestRequest {
    TestRequest::signed(provider, &compact(&fixture(provider, typical(provider))), SECRET, now)
}

/// An owned request, so tests can tamper with any part before it is checked.
#[derive(Debug, Clone)]
pub struct TestRequest {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub source_ip: Option<String>,
}

impl TestRequest {
    pub fn from_signed(provider: Provider, signed: &SignedRequest) -> Self {
        let mut headers = signed.headers.clone();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        Self {
            method: Method::POST,
            path: signed.path(provider),
            headers,
            body: signed.body.clone().into_bytes(),
            source_ip: Some("203.0.113.10".into()),
        }
    }

    /// `body` signed with `secret` at `now`.
    pub fn signed(provider: Provider, body: &str, secret: &str, now: DateTime<Utc>) -> Self {
        Self::from_signed(provider, &sign(provider, body, secret, now))
    }

    /// A fixture signed with the current secret at `now`.
    pub fn signed_fixture(provider: Provider, name: &str, now: DateTime<Utc>) -> Self {
        Self::signed(provider, &fixture(provider, name), SECRET, now)
    }

    /// The same request with header `name` set to `value`.
    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.insert(name, HeaderValue::from_str(value).expect("a valid header value"));
        self
    }

    pub fn body_text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }

    pub fn incoming(&self) -> Incoming<'_> {
        Incoming {
            method: &self.method,
            path: &self.path,
            headers: &self.headers,
            body: &self.body,
            source_ip: self.source_ip.as_deref(),
        }
    }

    /// Authenticate and normalise with both test secrets.
    pub fn check(
        &self,
        provider: Provider,
        config: &VerifyConfig,
        now: DateTime<Utc>,
    ) -> Result<Callback<'_>, Rejection> {
        self.check_with(provider, config, &secrets().into(), now)
    }

    /// Authenticate and normalise with `secrets`.
    pub fn check_with(
        &self,
        provider: Provider,
        config: &VerifyConfig,
        secrets: &Secrets,
        now: DateTime<Utc>,
    ) -> Result<Callback<'_>, Rejection> {
        providers::authenticate_and_normalise(provider, config, secrets, &self.incoming(), now)
    }

    /// What checking this request (signed for `provider` with [`SECRET`]) must put through SHA-256, one byte
    /// string per pass: the content hash's lines, then by how the provider signs: the canonical string and the
    /// signature (its replay key), the raw body's HMAC as its inner and outer pass, or the URL token. With
    /// one validate-only pass over the body, the floor that `make bench-compare` prints beside each median.
    pub fn hashed_inputs(&self, provider: Provider) -> Vec<Vec<u8>> {
        let body = std::str::from_utf8(&self.body).expect("a UTF-8 body");
        let doc = json::read_signed(body).expect("a readable body");
        let mut inputs = vec![doc.content_hash_input(&providers::VOLATILE_FIELDS).into_bytes()];
        match providers::spec(provider).signer {
            Signer::CanonicalSeconds | Signer::CanonicalMillis => {
                inputs.push(CanonicalPairs::of(&doc).string_to_sign(SECRET).into_bytes());
                inputs.push(doc.member_text(SIGNATURE_FIELD).unwrap_or_default().as_bytes().to_vec());
            }
            Signer::BodyHmacHeader(_) => {
                // HMAC-SHA256: the padded key block and the body, then the padded key block and that digest.
                inputs.push([&[0x36; 64][..], body.as_bytes()].concat());
                inputs.push([&[0x5c; 64][..], &[0; 32][..]].concat());
            }
            Signer::PathToken => inputs.push(SECRET.as_bytes().to_vec()),
        }
        inputs
    }

    /// This request as an API Gateway HTTP API (payload v2) event, as Lambda delivers it.
    pub fn apigw(&self, base64: bool) -> lambda_http::Request {
        let headers: serde_json::Map<String, serde_json::Value> =
            self.headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().into())).collect();
        let body = if base64 {
            base64::engine::general_purpose::STANDARD.encode(&self.body)
        } else {
            String::from_utf8(self.body.clone()).expect("UTF-8 body")
        };
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": format!("{} {}", self.method, self.path),
            "rawPath": self.path,
            "rawQueryString": "",
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abc123",
                "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "abc123",
                "http": {
                    "method": self.method.as_str(),
                    "path": self.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": self.source_ip.clone().unwrap_or_default(),
                    "userAgent": "provider-webhooks/1.0"
                },
                "requestId": "req-1",
                "routeKey": format!("{} {}", self.method, self.path),
                "stage": "$default",
                "time": "22/Nov/2026:12:00:00 +0000",
                "timeEpoch": 1_763_800_000_000i64
            },
            "body": body,
            "isBase64Encoded": base64
        });
        lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
    }
}

/// A pipeline over in-memory ports, with both test secrets; its metrics go to `metrics`.
pub struct TestPipeline {
    pub pipeline: Pipeline,
    pub store: Arc<MemoryStore>,
    pub publisher: Arc<MemoryPublisher>,
    pub metrics: Arc<MemorySink>,
}

impl TestPipeline {
    pub fn new(provider: Provider) -> Self {
        let store = Arc::new(MemoryStore::new());
        let publisher = Arc::new(MemoryPublisher::new());
        let pipeline = Pipeline::new(
            provider,
            VerifyConfig::default(),
            Arc::new(StaticSecrets(secrets().into())),
            store.clone(),
            publisher.clone(),
            Retention::default(),
        );
        let metrics = Arc::new(MemorySink::default());
        let pipeline = pipeline.with_metrics_sink(metrics.clone());
        Self { pipeline, store, publisher, metrics }
    }

    /// The EMF documents the handler emitted, parsed.
    pub fn emitted(&self) -> Vec<serde_json::Value> {
        let lines = self.metrics.0.lock().unwrap().clone();
        lines.iter().map(|l| serde_json::from_str(l).expect("EMF is JSON")).collect()
    }

    /// Drive the handler with `req` as an API Gateway v2 event, its answer handed to `lambda_http` as the
    /// functions hand it: (status, content type, body).
    pub async fn call(&self, req: &TestRequest, base64: bool) -> (u16, String, String) {
        use lambda_http::IntoResponse;
        let answer = crate::handler::handle(&self.pipeline, req.apigw(base64)).await.unwrap_or_else(|e| match e {});
        let resp = crate::handler::Answer(answer).into_response().await;
        let content_type =
            resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let body = match resp.body() {
            lambda_http::Body::Text(s) => s.clone(),
            other => panic!("unexpected body {other:?}"),
        };
        (resp.status().as_u16(), content_type, body)
    }
}

/// A [`Store`] in a `HashMap`, with the same conditional semantics as the DynamoDB one.
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
            return Ok(Insert::Exists(stored(existing, &self.sweeps.lock().unwrap())));
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

    async fn take_over(&self, id: &str, expired_lease_ms: i64, new_lease_ms: i64) -> Result<bool, StoreError> {
        self.check_available("UpdateItem")?;
        let mut records = self.records.lock().unwrap();
        match records.get_mut(id) {
            Some(r) if r.state == RecordState::Received && r.lease_until_ms == expired_lease_ms => {
                r.lease_until_ms = new_lease_ms;
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
}

/// A [`Store`] that fails the calls it is told to (by port method name: `"insert"`,
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

    async fn take_over(&self, id: &str, expired_lease_ms: i64, new_lease_ms: i64) -> Result<bool, StoreError> {
        self.check("take_over")?;
        self.inner.take_over(id, expired_lease_ms, new_lease_ms).await
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
}

/// An [`EventPublisher`] that keeps messages in a `Vec`.
#[derive(Debug, Default)]
pub struct MemoryPublisher {
    messages: Mutex<Vec<OutgoingMessage>>,
    unavailable: AtomicBool,
    /// How many of the next sends fail.
    failing: std::sync::atomic::AtomicUsize,
}

impl MemoryPublisher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Make every send fail, as if SQS were unreachable.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// Make the next `n` sends fail (a partial outage).
    pub fn fail_next(&self, n: usize) {
        self.failing.store(n, Ordering::SeqCst);
    }

    pub fn messages(&self) -> Vec<OutgoingMessage> {
        self.messages.lock().unwrap().clone()
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
        self.messages.lock().unwrap().push(message.clone());
        Ok(())
    }
}

/// An AWS JSON-protocol HTTP/1.1 answer, `Connection: close`: what a test's stand-in for an AWS endpoint sends.
pub fn amz_json_answer(status: u16, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A loopback HTTP/1.1 server for a client's own tests: one connection per answer, in order, each request
/// read until it holds `last_text` (text at the end of its body), then answered `(status, body)` with
/// `Connection: close`. Returns the server's URL and, once every answer is given, the requests as read.
pub async fn serve_once_each(
    answers: Vec<(u16, &'static str)>,
    last_text: &'static str,
) -> (String, tokio::task::JoinHandle<Vec<String>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("a bound address"));
    let server = tokio::spawn(async move {
        let mut requests = Vec::new();
        for (status, body) in answers {
            let (mut socket, _) = listener.accept().await.expect("a connection");
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            while !String::from_utf8_lossy(&request).contains(last_text) {
                let n = socket.read(&mut chunk).await.expect("a readable request");
                assert!(n > 0, "the request ended early");
                request.extend_from_slice(&chunk[..n]);
            }
            requests.push(String::from_utf8_lossy(&request).into_owned());
            socket.write_all(amz_json_answer(status, body).as_bytes()).await.expect("a writable socket");
        }
        requests
    });
    (url, server)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// White space goes between tokens only: inside a string (after an escaped quote too) it stays.
    #[test]
    fn compact_drops_only_the_space_between_tokens() {
        let text = "{ \"a b\" : [ 1 ,\n\t2 ] ,\r\n \"c\" : \"x \\\" y\\\\\" , \"d\" : { } }";
        assert_eq!(compact(text), r#"{"a b":[1,2],"c":"x \" y\\","d":{}}"#);
        for provider in Provider::ALL {
            let body = fixture(provider, typical(provider));
            let (sent, compacted): (serde_json::Value, serde_json::Value) =
                (serde_json::from_str(&body).unwrap(), serde_json::from_str(&compact(&body)).unwrap());
            assert_eq!(sent, compacted, "{provider}");
        }
    }
}
