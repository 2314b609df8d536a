//! Fuzz targets (bolero, stable toolchain). Under `cargo test` each runs a short random pass; `make fuzz`
//! runs each for 10^6 inputs in release and prints the counts. Invariants: no panic, bounded time, and an
//! accepted event's id parts, references and amounts pass the rules that make a signature mean one thing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use payhooks::config::VerifyConfig;
use payhooks::signing::{self, SignOptions};
use payhooks::testing::{self, all_fixtures, TestRequest, SECRET};
use payhooks::verify::Secret;
use payhooks::Provider;

/// Per input, in an unoptimised build on a shared machine (release is far below: see `make bench`).
const BOUND: Duration = Duration::from_millis(500);

fn report(target: &str, count: &AtomicU64) {
    eprintln!("fuzz {target}: {} inputs, no failure", count.load(Ordering::Relaxed));
}

#[test]
fn fuzz_json_reader() {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    bolero::check!().for_each(|bytes: &[u8]| {
        COUNT.fetch_add(1, Ordering::Relaxed);
        let text = String::from_utf8_lossy(bytes);
        let started = Instant::now();
        if let Ok((members, leaves, without_signature, hash)) = testing::read_parts(&text) {
            // What we accept, serde_json accepts too, and the parts are themselves JSON.
            serde_json::from_str::<serde_json::Value>(&text).expect("accepted body is JSON");
            for raw in &members {
                serde_json::from_str::<serde_json::Value>(raw).expect("a member's raw text is JSON");
            }
            serde_json::from_str::<serde_json::Value>(&without_signature).expect("re-assembled body is JSON");
            assert!(leaves.len() <= 4096 && hash.len() == 64);
        }
        assert!(started.elapsed() < BOUND);
    });
    report("json_reader", &COUNT);
}

#[test]
fn fuzz_canonical_string() {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    bolero::check!().for_each(|bytes: &[u8]| {
        COUNT.fetch_add(1, Ordering::Relaxed);
        let text = String::from_utf8_lossy(bytes);
        let started = Instant::now();
        if let (Ok(canonical), Ok(ambiguous)) = (testing::canonical_string(&text), testing::read_verdict(&text)) {
            // A body that is not ambiguous has no separator inside a pair's key or value.
            if !ambiguous {
                for pair in canonical.split('&').filter(|p| p.contains('=')) {
                    let (path, _) = pair.split_once('=').unwrap();
                    assert!(!path.contains('&'));
                }
            }
        }
        assert!(started.elapsed() < BOUND);
    });
    report("canonical_string", &COUNT);
}

#[test]
fn fuzz_amount_normaliser() {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    bolero::check!().for_each(|bytes: &[u8]| {
        COUNT.fetch_add(1, Ordering::Relaxed);
        let text = String::from_utf8_lossy(bytes);
        if let Some(exact) = testing::decimal(&text) {
            let digits = exact.strip_prefix('-').unwrap_or(&exact);
            let (whole, frac) = digits.split_once('.').unwrap_or((digits, "0"));
            assert!(!whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit()), "{text:?} -> {exact:?}");
            assert!(!frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()), "{text:?} -> {exact:?}");
            assert_eq!(testing::decimal(&exact).as_deref(), Some(exact.as_str()), "written out once and for all");
            assert!(exact.len() <= text.len() + 45, "{text:?} -> {exact:?}");
            if !text.contains(['e', 'E']) {
                assert_eq!(exact, text, "plain decimals are kept as sent");
            }
        }
    });
    report("amount_normaliser", &COUNT);
}

/// Apply up to three `(position, byte, op)` edits to a body: replace, insert or delete a byte. Few edits
/// keep most bodies JSON, so that re-signed they reach normalisation.
fn mutate(body: &[u8], edits: &[(u16, u8, u8)]) -> Vec<u8> {
    let mut out = body.to_vec();
    for &(at, byte, op) in edits {
        let at = usize::from(at) % (out.len() + 1);
        match op % 3 {
            0 if at < out.len() => out[at] = byte,
            1 => out.insert(at, byte),
            2 if at < out.len() => {
                out.remove(at);
            }
            _ => {}
        }
    }
    out
}

/// Each provider's whole authenticate-parse-normalise step, fed mutations of its signed fixtures, re-signed
/// where the mutation is still signable so that they reach normalisation.
fn provider_step(provider: Provider, count: &AtomicU64, authenticated: &AtomicU64) {
    let fixtures: Vec<String> = all_fixtures(provider).into_iter().map(|(_, body)| body).collect();
    let config = VerifyConfig::default();
    bolero::check!().with_type::<(u8, [(u16, u8, u8); 3], u8, bool)>().for_each(|(pick, edits, n, resign)| {
        let edits = &edits[..usize::from(*n % 4)];
        count.fetch_add(1, Ordering::Relaxed);
        let now = Utc::now();
        let fixture = &fixtures[usize::from(*pick) % fixtures.len()];
        let mut req = TestRequest::signed(provider, fixture, SECRET, now);
        let mutated = mutate(&req.body, edits);
        req.body = mutated.clone();
        if *resign {
            if let Ok(text) = String::from_utf8(mutated) {
                let signed = signing::sign(provider, &text, &Secret::new(SECRET), &SignOptions::default(), now);
                if let Ok(signed) = signed {
                    req = TestRequest::from_signed(provider, &signed);
                }
            }
        }
        let started = Instant::now();
        if let Ok(callback) = req.check(provider, &config, now) {
            authenticated.fetch_add(1, Ordering::Relaxed);
            for event in &callback.events {
                let mut parts = event.id.split(':');
                assert_eq!(parts.next(), Some(provider.name()), "{}", event.id);
                let parts: Vec<&str> = parts.collect();
                for part in &parts {
                    assert!(testing::is_plain(part), "id part {part:?} of {}", event.id);
                }
                // The id reads back into the parts it was made of: no two events share an id.
                let fixed = if provider == Provider::Choice { 2 } else { 3 };
                let expected_parts = fixed + usize::from(event.batch_index.is_some());
                assert_eq!(parts.len(), expected_parts, "{}", event.id);
                assert!(testing::is_plain(&event.reference), "{event:?}");
                if let Some(amount) = &event.amount {
                    assert_eq!(testing::decimal(amount).as_ref(), Some(amount), "{event:?}");
                }
            }
            for q in &callback.quarantined {
                assert!(q.id.starts_with(&format!("{provider}:quarantined:")) && q.id.len() < 100, "{}", q.id);
            }
        }
        assert!(started.elapsed() < BOUND);
    });
}

macro_rules! provider_targets {
    ($($name:ident => $provider:expr),* $(,)?) => {$(
        #[test]
        fn $name() {
            static COUNT: AtomicU64 = AtomicU64::new(0);
            static AUTHENTICATED: AtomicU64 = AtomicU64::new(0);
            provider_step($provider, &COUNT, &AUTHENTICATED);
            report(stringify!($name), &COUNT);
            eprintln!("fuzz {}: {} of them authenticated and normalised", stringify!($name), AUTHENTICATED.load(Ordering::Relaxed));
        }
    )*};
}

provider_targets! {
    fuzz_niobi => Provider::Niobi,
    fuzz_choice => Provider::Choice,
    fuzz_m2money => Provider::M2Money,
    fuzz_lipia => Provider::Lipia,
    fuzz_muda => Provider::Muda,
}
