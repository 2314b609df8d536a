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

/// JSON built from fuzz bytes, with the leaves it holds: objects with unique keys (after unescaping), arrays,
/// strings with every escape, numbers in every spelling, literals, whitespace between tokens.
struct JsonGen<'b> {
    bytes: &'b [u8],
    at: usize,
    text: String,
    /// `path=value` of every leaf, in document order, as the reader joins them.
    leaves: Vec<String>,
    depth: usize,
}

impl JsonGen<'_> {
    fn next(&mut self) -> u8 {
        let byte = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        byte
    }

    fn space(&mut self) {
        const SPACES: [&str; 5] = ["", " ", "\n", "\t ", "\r\n  "];
        let pick = SPACES[usize::from(self.next()) % SPACES.len()];
        self.text.push_str(pick);
    }

    /// A string: its JSON text and its value.
    fn string(&mut self) -> (String, String) {
        const PIECES: [(&str, &str); 14] = [
            ("a", "a"),
            ("Zz", "Zz"),
            ("é", "é"),
            ("\\\"", "\""),
            ("\\\\", "\\"),
            ("\\/", "/"),
            ("\\n\\t", "\n\t"),
            ("\\b\\f\\r", "\u{8}\u{c}\r"),
            ("\\u00e9", "é"),
            ("\\u0041", "A"),
            ("\\ud83d\\ude00", "😀"),
            ("&x=", "&x="),
            (".[0]", ".[0]"),
            (" ", " "),
        ];
        let (mut text, mut value) = ("\"".to_owned(), String::new());
        for _ in 0..self.next() % 5 {
            let (t, v) = PIECES[usize::from(self.next()) % PIECES.len()];
            text.push_str(t);
            value.push_str(v);
        }
        text.push('"');
        (text, value)
    }

    fn value(&mut self, path: &str) {
        const NUMBERS: [&str; 9] =
            ["0", "-0", "12", "-3.25", "1e3", "1E+2", "2.50e-3", "100.50", "12345678901234567890123"];
        let kind = if self.depth >= 6 { self.next() % 4 } else { self.next() % 6 };
        match kind {
            0 => {
                let (text, value) = self.string();
                self.text.push_str(&text);
                self.leaves.push(format!("{path}={value}"));
            }
            1 => {
                let number = NUMBERS[usize::from(self.next()) % NUMBERS.len()];
                self.text.push_str(number);
                self.leaves.push(format!("{path}={number}"));
            }
            2 => {
                let literal = ["true", "false"][usize::from(self.next() % 2)];
                self.text.push_str(literal);
                self.leaves.push(format!("{path}={literal}"));
            }
            3 => {
                self.text.push_str("null");
                self.leaves.push(format!("{path}=null"));
            }
            4 => self.object(path),
            _ => self.array(path),
        }
    }

    fn object(&mut self, path: &str) {
        self.depth += 1;
        self.text.push('{');
        let mut seen = std::collections::HashSet::new();
        let mut count = 0;
        for _ in 0..self.next() % 4 {
            let (text, key) = self.string();
            if !seen.insert(key.clone()) {
                continue; // a repeated key: the reader refuses it, serde_json takes the last
            }
            if count > 0 {
                self.text.push(',');
            }
            self.space();
            self.text.push_str(&text);
            self.space();
            self.text.push(':');
            self.space();
            let inner = if self.depth == 1 { key } else { format!("{path}.{key}") };
            self.value(&inner);
            self.space();
            count += 1;
        }
        if count == 0 && self.depth > 1 {
            self.leaves.push(format!("{path}={{}}"));
        }
        self.text.push('}');
        self.depth -= 1;
    }

    fn array(&mut self, path: &str) {
        self.depth += 1;
        self.text.push('[');
        let items = self.next() % 4;
        for i in 0..items {
            if i > 0 {
                self.text.push(',');
            }
            self.space();
            self.value(&format!("{path}[{i}]"));
            self.space();
        }
        if items == 0 {
            self.leaves.push(format!("{path}=[]"));
        }
        self.text.push(']');
        self.depth -= 1;
    }
}

/// The other direction of `fuzz_json_reader`: JSON that serde_json accepts, within the reader's limits and
/// with no repeated key, the reader accepts too, with the leaves it holds (values as sent, unescaped once).
#[test]
fn fuzz_json_reader_accepts_what_serde_json_accepts() {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    bolero::check!().for_each(|bytes: &[u8]| {
        COUNT.fetch_add(1, Ordering::Relaxed);
        let mut generated = JsonGen { bytes, at: 0, text: String::new(), leaves: Vec::new(), depth: 0 };
        generated.space();
        generated.object("");
        generated.space();
        serde_json::from_str::<serde_json::Value>(&generated.text).expect("the generator writes JSON");
        let (_, leaves, _, _) = testing::read_parts(&generated.text)
            .unwrap_or_else(|e| panic!("the reader refused JSON serde_json accepts: {e}\n{}", generated.text));
        assert_eq!(leaves, generated.leaves, "{}", generated.text);
    });
    report("json_reader_accepts_what_serde_json_accepts", &COUNT);
}
