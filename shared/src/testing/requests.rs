//! Owned test requests (signed, tampered, as API Gateway events) and a pipeline over in-memory ports.

use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use lambda_http::http::{HeaderMap, HeaderValue, Method};

use crate::config::Retention;
use crate::config::VerifyConfig;
use crate::error::Rejection;
use crate::pipeline::Pipeline;
use crate::provider::Provider;
use crate::providers::Signer;
use crate::providers::{self, Callback, Incoming};
use crate::verify::canonical::{CanonicalPairs, SIGNATURE_FIELD};
use crate::verify::json::{self};
use crate::verify::Secrets;

use super::*;

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
