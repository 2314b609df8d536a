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
                // URL-token providers authenticate them: each is quarantined (readable or not), never an event.
                (_, Ok(callback)) => assert!(callback.events.is_empty(), "{name}: {provider}"),
                (_, Err(rejection)) => assert!(rejection.status().is_client_error(), "{name}: {provider}"),
            }
            // A generous bound for an unoptimised build on a busy machine; release figures are in the bench.
            assert!(elapsed.as_millis() < 1_000, "{name}: {provider} took {elapsed:?}");
        }
    }
}

/// A body the reader refuses (a repeated key, bytes after the object, not an object, too deep, not UTF-8),
/// sent with valid credentials by a provider whose authentication does not need the body read (a URL token,
/// an HMAC of the bytes), is genuine: it is quarantined whole, never refused (a 4xx makes a provider drop it).
/// With wrong credentials it is refused as before; Choice and Niobi, whose signature is over the body as
/// read, can only refuse it.
#[test]
fn an_authentic_body_the_reader_refuses_is_quarantined_whole() {
    use payhooks::providers::Reason;
    let config = VerifyConfig::default();
    let now = Utc::now();
    let deep = format!(r#"{{"a":{}{}}}"#, "[".repeat(40), "]".repeat(40));
    let bodies = [r#"{"a":1,"a":2}"#, r#"{"a":1} and more"#, "[1,2]", deep.as_str(), r#"{"a":"\udead"}"#];
    for provider in [Provider::Lipia, Provider::M2Money, Provider::Muda] {
        let mut ids = Vec::new();
        for body in bodies {
            let req = TestRequest::signed(provider, body, payhooks::testing::SECRET, now);
            let callback = req.check(provider, &config, now).unwrap_or_else(|e| panic!("{provider} {body:.40}: {e}"));
            assert!(callback.events.is_empty(), "{provider} {body:.40}");
            let [quarantined] = &callback.quarantined[..] else { panic!("{provider}: one quarantine") };
            assert_eq!(quarantined.reason, Reason::UnreadableBody, "{provider} {body:.40}");
            assert!(quarantined.id.starts_with(&format!("{provider}:quarantined:")), "{}", quarantined.id);
            // The payload is the body's text, as one JSON string.
            assert_eq!(serde_json::from_str::<String>(&callback.payload).unwrap(), body);
            let again = req.check(provider, &config, now).unwrap();
            assert_eq!(again.quarantined[0].id, quarantined.id, "a retry is the same item");
            ids.push(quarantined.id.clone());

            let forged = TestRequest::signed(provider, body, "not-the-secret", now);
            let refused = forged.check(provider, &config, now).unwrap_err();
            assert_eq!(refused.status().as_u16(), 400, "{provider} {body:.40}: {refused}");
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), bodies.len(), "{provider}: one item per body");
    }
    // Not UTF-8: kept with U+FFFD in place of what cannot be read; the id is over the bytes as sent.
    let mut req = TestRequest::signed(Provider::Lipia, "{}", payhooks::testing::SECRET, now);
    req.body = b"{\"a\":\"\xff\xfe\"}".to_vec();
    let callback = req.check(Provider::Lipia, &config, now).unwrap();
    assert_eq!(callback.quarantined[0].reason, Reason::UnreadableBody);
    assert_eq!(serde_json::from_str::<String>(&callback.payload).unwrap(), "{\"a\":\"\u{FFFD}\u{FFFD}\"}");
    for provider in [Provider::Choice, Provider::Niobi] {
        let mut req = TestRequest::signed_fixture(provider, payhooks::testing::typical(provider), now);
        req.body = bodies[0].as_bytes().to_vec();
        assert_eq!(req.check(provider, &config, now).unwrap_err().status().as_u16(), 400, "{provider}");
    }
}
