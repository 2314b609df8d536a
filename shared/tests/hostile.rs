//! The worst bodies we can build within the size limit: each is refused (or, authenticated, handled) without
//! a panic, a stack overflow or unbounded work. Their cost in release is measured by `make bench`
//! (group `hostile`); here every provider meets each of them.

use chrono::Utc;
use payhooks::config::VerifyConfig;
use payhooks::testing::{hostile_bodies, TestRequest};
use payhooks::Provider;

#[test]
fn every_provider_refuses_the_worst_bodies_cheaply() {
    let config = VerifyConfig::default();
    let now = Utc::now();
    for (name, body) in hostile_bodies() {
        assert!(body.len() <= 131_072, "{name}: {} bytes", body.len());
        for provider in Provider::ALL {
            let mut req = TestRequest::signed_fixture(provider, payhooks::testing::typical(provider), now);
            req.body = body.clone().into_bytes();
            let started = std::time::Instant::now();
            let result = req.check(provider, &config, now);
            let elapsed = started.elapsed();
            match (provider, &result) {
                // Signed schemes never accept them (wrong signature, or a limit first).
                (Provider::Niobi | Provider::Choice | Provider::M2Money, Ok(_)) => {
                    panic!("{name}: {provider} accepted")
                }
                // URL-token providers authenticate them: what is readable is quarantined, never an event.
                (_, Ok(callback)) => assert!(callback.events.is_empty(), "{name}: {provider}"),
                (_, Err(rejection)) => assert!(rejection.status().is_client_error(), "{name}: {provider}"),
            }
            // A generous bound for an unoptimised build on a busy machine; release figures are in the bench.
            assert!(elapsed.as_millis() < 1_000, "{name}: {provider} took {elapsed:?}");
        }
    }
}
