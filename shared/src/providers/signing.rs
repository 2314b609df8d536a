//! The providers' senders, imitated, beside the verification they must pass: a callback body signed the way each provider signs it (feature
//! `signing`, which `payhooks-send` enables and `test-util` includes; the Lambdas build without either).

use chrono::{DateTime, Utc};
use lambda_http::http::{HeaderMap, HeaderName, HeaderValue};

use super::contract::Signer;
use super::spec;
use crate::provider::Provider;
use crate::verify::json::{self, ReadError};
use crate::verify::signing::{self, hmac_sha256, CanonicalHash};
use crate::verify::{Dialect, Secret};

/// Options a signer needs beyond the secret.
#[derive(Debug, Clone, Copy)]
pub struct SignOptions {
    pub canonical_hash: CanonicalHash,
    /// How a Choice or Niobi sender writes its canonical string.
    pub dialect: Dialect,
}

impl Default for SignOptions {
    fn default() -> Self {
        Self { canonical_hash: CanonicalHash::Sha256, dialect: Dialect::Postman }
    }
}

/// Sign `body` as `provider` would at `now`.
pub fn sign(
    provider: Provider,
    body: &str,
    secret: &Secret,
    options: &SignOptions,
    now: DateTime<Utc>,
) -> Result<SignedRequest, ReadError> {
    sign_as(spec(provider).signer, body, secret, options, now)
}

/// A callback signed the way its provider signs it, ready to send.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    pub body: String,
    pub headers: HeaderMap,
    /// Lipia and MUDA: the token to put as the callback URL's last path segment.
    pub path_token: Option<String>,
}

impl SignedRequest {
    /// A body with no header and no token (yet).
    pub fn new(body: String) -> Self {
        Self { body, headers: HeaderMap::new(), path_token: None }
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.insert(HeaderName::from_static(name), HeaderValue::from_str(value).expect("a header value"));
        self
    }

    pub fn with_path_token(self, secret: &Secret) -> Self {
        Self { path_token: Some(secret.expose().to_owned()), ..self }
    }

    /// The path to POST to: the provider's route with the token, if any.
    pub fn path(&self, provider: Provider) -> String {
        spec(provider).route.path(provider, self.path_token.as_deref())
    }
}

/// Sign `body` the way `signer` describes, at `now`.
fn sign_as(
    signer: Signer,
    body: &str,
    secret: &Secret,
    options: &SignOptions,
    now: DateTime<Utc>,
) -> Result<SignedRequest, ReadError> {
    Ok(match signer {
        Signer::CanonicalSeconds => canonical_request(body, secret, options, options.canonical_hash, now.timestamp())?,
        Signer::CanonicalMillis => {
            canonical_request(body, secret, options, CanonicalHash::Sha256, now.timestamp_millis())?
        }
        Signer::BodyHmacHeader(header) => {
            let signature = hex::encode(hmac_sha256(secret.expose().as_bytes(), &[body.as_bytes()]));
            SignedRequest::new(body.to_owned()).with_header(header, &signature)
        }
        Signer::PathToken => SignedRequest::new(body.to_owned()).with_path_token(secret),
    })
}

/// Choice and Niobi: the body with a fresh `timestamp` and its `signature` over the canonical string.
fn canonical_request(
    body: &str,
    secret: &Secret,
    options: &SignOptions,
    hash: CanonicalHash,
    timestamp: i64,
) -> Result<SignedRequest, ReadError> {
    let restamped = json::read(body)?.object_with("timestamp", &timestamp.to_string());
    Ok(SignedRequest::new(signing::sign_canonical_body(&restamped, secret, hash, options.dialect)?))
}

/// The provider's typical fixture (the benchmark's and most tests' callback).
pub fn typical(provider: Provider) -> &'static str {
    spec(provider).typical.0
}

/// The id text in the provider's typical fixture that a unique copy replaces (the load test).
pub fn typical_id(provider: Provider) -> &'static str {
    spec(provider).typical.1
}

impl SignOptions {
    /// The options a provider's sender is configured with, from the provider's own settings in `lookup`
    /// (the canonical hash, e.g. `NIOBI_SIGNATURE_HASH`).
    pub fn from_lookup(provider: Provider, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let hash = super::canonical_hash_variable(provider).and_then(lookup).and_then(|h| CanonicalHash::parse(&h));
        Self { canonical_hash: hash.unwrap_or(CanonicalHash::Sha256), ..Self::default() }
    }
}
