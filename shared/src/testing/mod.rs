//! Test helpers, in one place behind the `test-util` feature (the Lambdas build without it): in-memory
//! ports, fixtures, signed test requests and API Gateway events. Used by the shared crate's tests, the
//! emulator tests in `tests/` and the benchmark. The signers themselves are in `signing`.

mod http;
mod memory;
mod requests;

pub use http::{amz_json_answer, serve_once_each};
pub use memory::{FaultyStore, MemoryPublisher, MemorySink, MemoryStore, StaticSecrets, Transaction};
pub use requests::{TestPipeline, TestRequest};

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::provider::Provider;
use crate::providers::signing::{self as signer, SignOptions};
use crate::verify::canonical::SIGNATURE_FIELD;
use crate::verify::json::{self, ReadError};
use crate::verify::signing::{self, CanonicalHash};
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
