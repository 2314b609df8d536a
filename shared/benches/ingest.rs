//! `make bench`: authenticate + parse + normalise one typical callback per provider (no I/O).
//! Criterion prints the median time per callback (the middle value of `time: [low median high]`).

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use payhooks::config::VerifyConfig;
use payhooks::testing::{fixture, typical, TestRequest, SECRET};
use payhooks::providers::Secrets;
use payhooks::verify::SecretSet;
use payhooks::Provider;

fn ingest(c: &mut Criterion) {
    let config = VerifyConfig::default();
    // One configured secret, as in the Python twin.
    let secrets: Secrets = SecretSet::parse(SECRET, "WEBHOOK_SECRETS").unwrap().into();
    let now = Utc::now();
    let mut group = c.benchmark_group("authenticate+parse+normalise");
    for provider in Provider::ALL {
        let req = TestRequest::signed(provider, &fixture(provider, typical(provider)), SECRET, now);
        group.bench_function(provider.name(), |b| {
            b.iter(|| {
                let callback = req.check_with(provider, &config, &secrets, now).unwrap();
                std::hint::black_box(callback.events.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
