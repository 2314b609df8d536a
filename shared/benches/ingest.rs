//! `make bench`: authenticate + parse + normalise one typical callback per provider (no I/O).
//! Criterion prints the median time per callback (the middle value of `time: [low median high]`).

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use lambda_http::http::{HeaderMap, HeaderName, HeaderValue, Method};
use payhooks::config::VerifyConfig;
use payhooks::providers::{authenticate_and_normalise, Incoming, Provider};
use payhooks::secrets::{Secret, SecretSet};
use payhooks::signing::{sign_request, CanonicalHash};

fn fixture(provider: Provider, name: &str) -> String {
    let path = format!("{}/../tests/fixtures/{}/{name}.json", env!("CARGO_MANIFEST_DIR"), provider.name());
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ingest(c: &mut Criterion) {
    let secret = "bench-secret";
    let secrets = SecretSet::parse(secret, "WEBHOOK_SECRETS").unwrap();
    let config = VerifyConfig::default();
    let now = Utc::now();
    let typical = [
        (Provider::Niobi, "payin_ussd_push"),
        (Provider::Choice, "0002_transaction"),
        (Provider::M2Money, "payout_success"),
        (Provider::Lipia, "stk_success"),
        (Provider::Muda, "transaction_event_success"),
    ];
    let mut group = c.benchmark_group("authenticate+parse+normalise");
    for (provider, name) in typical {
        let signed =
            sign_request(provider, &fixture(provider, name), &Secret::new(secret), CanonicalHash::Sha256, now).unwrap();
        let mut headers = HeaderMap::new();
        for (k, v) in &signed.headers {
            headers.insert(HeaderName::from_static(k), HeaderValue::from_str(v).unwrap());
        }
        let path = format!("/webhooks/{}/{}", provider.name(), signed.path_token.clone().unwrap_or_default());
        let req = Incoming {
            method: &Method::POST,
            path: &path,
            headers: &headers,
            body: signed.body.as_bytes(),
            source_ip: None,
        };
        group.bench_function(provider.name(), |b| {
            b.iter(|| {
                let callback = authenticate_and_normalise(provider, &config, &secrets, &req, now).unwrap();
                std::hint::black_box(callback.events.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
