//! `make bench`: authenticate + parse + normalise one typical callback per provider (no I/O), and the floor
//! under it. Each callback is its typical fixture as the Python twin sends it (`testing::bench_request`).
//! Criterion prints the median time per callback (the middle value of `time: [low median high]`).

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use payhooks::config::VerifyConfig;
use payhooks::testing::{bench_request, fixture, TestRequest, SECRET};
use payhooks::verify::SecretSet;
use payhooks::verify::Secrets;
use payhooks::Provider;
use serde::de::IgnoredAny;
use sha2::{Digest, Sha256};

fn ingest(c: &mut Criterion) {
    let config = VerifyConfig::default();
    // One configured secret, as in the Python twin.
    let secrets: Secrets = SecretSet::parse(SECRET, "WEBHOOK_SECRETS").unwrap().into();
    let now = Utc::now();
    let mut group = c.benchmark_group("authenticate+parse+normalise");
    for provider in Provider::ALL {
        let req = bench_request(provider, now);
        group.bench_function(provider.name(), |b| {
            b.iter(|| {
                let callback = req.check_with(provider, &config, &secrets, now).unwrap();
                std::hint::black_box(callback.events.len())
            })
        });
    }
    group.finish();
}

/// The floor under the group above, per provider: SHA-256 over what checking the same callback must hash
/// (`TestRequest::hashed_inputs`) and one validate-only pass over its body (serde_json into `IgnoredAny`,
/// which builds nothing). Any implementation of the same checks pays both (a faster scanner could shave the
/// second); `make bench-compare` prints it beside each median.
fn floor(c: &mut Criterion) {
    let now = Utc::now();
    let mut group = c.benchmark_group("floor");
    for provider in Provider::ALL {
        let req = bench_request(provider, now);
        let inputs = req.hashed_inputs(provider);
        let body = std::str::from_utf8(&req.body).unwrap();
        group.bench_function(provider.name(), |b| {
            b.iter(|| {
                let digests: usize = inputs.iter().map(|input| usize::from(Sha256::digest(input)[0])).sum();
                let _: IgnoredAny = serde_json::from_str(body).unwrap();
                std::hint::black_box(digests)
            })
        });
    }
    group.finish();
}

/// The worst bodies within the size limit (`testing::hostile_bodies`), each through Choice (the costliest
/// scheme: flatten, sort, hash per secret). Target: at most 5 ms each in release.
fn hostile(c: &mut Criterion) {
    let config = VerifyConfig::default();
    let now = Utc::now();
    let secrets: Secrets = SecretSet::parse(SECRET, "WEBHOOK_SECRETS").unwrap().into();
    let mut group = c.benchmark_group("hostile");
    group.sample_size(20);
    for (name, body) in payhooks::testing::hostile_bodies() {
        let mut req =
            TestRequest::signed(Provider::Choice, &fixture(Provider::Choice, "0002_transaction"), SECRET, now);
        req.body = body.into_bytes();
        group.bench_function(name, |b| {
            b.iter(|| std::hint::black_box(req.check_with(Provider::Choice, &config, &secrets, now).is_err()))
        });
    }
    group.finish();
}

criterion_group!(benches, ingest, floor, hostile);
criterion_main!(benches);
