//! Helpers shared by the shared crate's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lambda_http::http::{HeaderMap, HeaderName, HeaderValue, Method};
use payhooks::config::VerifyConfig;
use payhooks::providers::{self, Callback, Incoming, Provider};
use payhooks::secrets::{Secret, SecretSet, StaticSecrets};
use payhooks::signing::{self, CanonicalHash, SignedRequest};
use payhooks::store::{MemoryPublisher, MemoryStore};
use payhooks::{error::Rejection, Pipeline};

pub const SECRET: &str = "test-secret-current";
pub const OLD_SECRET: &str = "test-secret-previous";

pub fn secrets() -> SecretSet {
    SecretSet::parse(&format!("{SECRET},{OLD_SECRET}"), "WEBHOOK_SECRETS").unwrap()
}

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

pub fn fixture(provider: Provider, name: &str) -> String {
    let path = fixtures_dir().join(provider.name()).join(format!("{name}.json"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every fixture of a provider: (name, body).
pub fn all_fixtures(provider: Provider) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(fixtures_dir().join(provider.name()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    out.sort();
    out
}

pub fn sign(provider: Provider, body: &str, secret: &str, now: DateTime<Utc>) -> SignedRequest {
    signing::sign_request(provider, body, &Secret::new(secret), CanonicalHash::Sha256, now).unwrap()
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
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        for (name, value) in &signed.headers {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
        }
        let path = match &signed.path_token {
            Some(token) => format!("/webhooks/{}/{token}", provider.name()),
            None => format!("/webhooks/{}", provider.name()),
        };
        Self {
            method: Method::POST,
            path,
            headers,
            body: signed.body.clone().into_bytes(),
            source_ip: Some("203.0.113.10".into()),
        }
    }

    /// A fixture signed with the current secret at `now`.
    pub fn signed_fixture(provider: Provider, name: &str, now: DateTime<Utc>) -> Self {
        Self::from_signed(provider, &sign(provider, &fixture(provider, name), SECRET, now))
    }

    pub fn body_text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
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

    pub fn check(
        &self,
        provider: Provider,
        config: &VerifyConfig,
        now: DateTime<Utc>,
    ) -> Result<Callback<'_>, Rejection> {
        providers::authenticate_and_normalise(provider, config, &secrets(), &self.incoming(), now)
    }
}

pub struct TestPipeline {
    pub pipeline: Pipeline,
    pub store: Arc<MemoryStore>,
    pub publisher: Arc<MemoryPublisher>,
}

pub fn pipeline(provider: Provider) -> TestPipeline {
    let store = Arc::new(MemoryStore::new());
    let publisher = Arc::new(MemoryPublisher::new());
    let pipeline = Pipeline::new(
        provider,
        VerifyConfig::default(),
        Arc::new(StaticSecrets(secrets())),
        store.clone(),
        publisher.clone(),
        Duration::from_secs(35 * 86_400),
    );
    TestPipeline { pipeline, store, publisher }
}

/// A `lambda_http` request deserialised from an API Gateway HTTP API (payload v2) event, as Lambda delivers it.
pub fn apigw_request(req: &TestRequest, base64: bool) -> lambda_http::Request {
    use base64_engine::encode;
    let headers: serde_json::Map<String, serde_json::Value> =
        req.headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().into())).collect();
    let body = if base64 { encode(&req.body) } else { String::from_utf8(req.body.clone()).unwrap() };
    let event = serde_json::json!({
        "version": "2.0",
        "routeKey": format!("{} {}", req.method, req.path),
        "rawPath": req.path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": req.method.as_str(),
                "path": req.path,
                "protocol": "HTTP/1.1",
                "sourceIp": req.source_ip.clone().unwrap_or_default(),
                "userAgent": "provider-webhooks/1.0"
            },
            "requestId": "req-1",
            "routeKey": format!("{} {}", req.method, req.path),
            "stage": "$default",
            "time": "22/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1_763_800_000_000i64
        },
        "body": body,
        "isBase64Encoded": base64
    });
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
}

/// Minimal standard base64, so the tests need no extra crate.
mod base64_engine {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    pub fn encode(input: &[u8]) -> String {
        let mut out = String::new();
        for chunk in input.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

/// Drive `provider`'s handler with `req` as an API Gateway v2 event: (status, content type, body).
pub async fn call(provider: Provider, req: &TestRequest, base64: bool) -> (u16, String, String) {
    let t = pipeline(provider);
    let resp = payhooks::handler::handle(&t.pipeline, apigw_request(req, base64)).await.unwrap();
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    let body = match resp.body() {
        lambda_http::Body::Text(s) => s.clone(),
        other => panic!("unexpected body {other:?}"),
    };
    (resp.status().as_u16(), content_type, body)
}
