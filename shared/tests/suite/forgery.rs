//! Forgeries that keep a Choice or Niobi signature: the signed string `path=value&...` has no escaping, so
//! one genuine body can be re-shaped without changing it (merge the next pair into a value, split a value
//! holding `&k=v` into a new key, write a nested key as a dotted one). None of them may yield an event the
//! signed body would not, and after the genuine delivery none may yield anything at all.

use chrono::{DateTime, Utc};
use payhooks::config::VerifyConfig;
use payhooks::event::NormalisedEvent;
use payhooks::pipeline::Outcome;
use payhooks::testing::{self, canonical_string, fixture, sign, TestPipeline, TestRequest, SECRET};
use payhooks::Provider::{self, *};
use proptest::prelude::*;
use serde_json::{Map, Value};

const LEASE: std::time::Duration = std::time::Duration::from_secs(10);

/// One way of reading a canonical string back into a body.
#[derive(Debug, Clone, Default)]
struct Reading {
    /// For each `&` in the string, whether it separates two pairs (else it is part of a value).
    amp_splits: Vec<bool>,
    /// For each `.` in the string, whether it separates two keys (else it is part of a key).
    dot_splits: Vec<bool>,
}

impl Reading {
    /// The faithful reading: every `&` and `.` is a separator.
    fn faithful(s: &str) -> Self {
        Self { amp_splits: vec![true; s.matches('&').count()], dot_splits: vec![true; s.matches('.').count()] }
    }
}

enum Seg {
    Key(String),
    Index(usize),
}

/// A JSON leaf for a canonical value: the canonical string cannot tell `null` from `"null"`, so both are
/// tried by the property test; here the literal wins for literals and everything else is a string.
fn leaf(value: &str, literal: bool) -> Value {
    match value {
        "null" if literal => Value::Null,
        "true" if literal => Value::Bool(true),
        "false" if literal => Value::Bool(false),
        "{}" => Value::Object(Map::new()),
        "[]" => Value::Array(Vec::new()),
        other => Value::String(other.to_owned()),
    }
}

fn segments(path: &str, dots: &mut impl Iterator<Item = bool>) -> Option<Vec<Seg>> {
    let mut out = Vec::new();
    let mut key = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' if dots.next().unwrap_or(true) => {
                if !(key.is_empty() && matches!(out.last(), Some(Seg::Index(_)))) {
                    out.push(Seg::Key(std::mem::take(&mut key)));
                }
            }
            '[' if chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                let digits: String = std::iter::from_fn(|| chars.next_if(|d| d.is_ascii_digit())).collect();
                if chars.next() != Some(']') {
                    return None;
                }
                if !key.is_empty() {
                    out.push(Seg::Key(std::mem::take(&mut key)));
                }
                out.push(Seg::Index(digits.parse().ok()?));
            }
            other => key.push(other),
        }
    }
    if !key.is_empty() {
        out.push(Seg::Key(key));
    }
    matches!(out.first(), Some(Seg::Key(_))).then_some(out)
}

fn insert(root: &mut Value, segs: &[Seg], value: Value) -> Option<()> {
    let (first, rest) = segs.split_first()?;
    let slot = match (first, root) {
        (Seg::Key(k), Value::Object(map)) => {
            if rest.is_empty() {
                return map.insert(k.clone(), value).is_none().then_some(());
            }
            let next = if matches!(rest[0], Seg::Index(_)) { Value::Array(vec![]) } else { Value::Object(Map::new()) };
            map.entry(k.clone()).or_insert(next)
        }
        (Seg::Index(i), Value::Array(items)) => {
            if *i > items.len() {
                return None;
            }
            if *i == items.len() {
                let next = match rest.first() {
                    None => value.clone(),
                    Some(Seg::Index(_)) => Value::Array(vec![]),
                    Some(Seg::Key(_)) => Value::Object(Map::new()),
                };
                items.push(next);
                if rest.is_empty() {
                    return Some(());
                }
            } else if rest.is_empty() {
                return None;
            }
            &mut items[*i]
        }
        _ => return None,
    };
    insert(slot, rest, value)
}

/// The body that `reading` makes of canonical string `s`, carrying `signature`; `None` if it makes none.
fn forge(s: &str, reading: &Reading, literals: bool, signature: &str) -> Option<String> {
    let mut amps = reading.amp_splits.iter().copied();
    let mut pairs: Vec<String> = vec![String::new()];
    for c in s.chars() {
        if c == '&' && amps.next().unwrap_or(true) {
            pairs.push(String::new());
        } else {
            pairs.last_mut().expect("one pair at least").push(c);
        }
    }
    let mut dots = reading.dot_splits.iter().copied();
    let mut root = Value::Object(Map::new());
    for pair in &pairs {
        let (path, value) = pair.split_once('=')?;
        // Dots in values are never separators; skip their choices so keys keep theirs.
        let segs = segments(path, &mut dots)?;
        for _ in value.matches('.') {
            dots.next();
        }
        insert(&mut root, &segs, leaf(value, literals))?;
    }
    let Value::Object(mut map) = root else { return None };
    map.insert("signature".into(), Value::String(signature.to_owned()));
    Some(Value::Object(map).to_string())
}

fn signature_of(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap();
    v["signature"].as_str().unwrap().to_owned()
}

/// What a consumer acts on.
fn facts(e: &NormalisedEvent) -> (String, String, String, Option<String>, Option<String>) {
    (e.id.clone(), e.event_type(Choice), e.reference.clone(), e.amount.clone(), e.merchant_reference.clone())
}

/// Every event `forged` yields is one `genuine` yields too, with the same facts.
fn assert_no_new_event(provider: Provider, genuine: &TestRequest, forged_body: &str, now: DateTime<Utc>) -> bool {
    let config = VerifyConfig::default();
    let forged = TestRequest { body: forged_body.as_bytes().to_vec(), ..genuine.clone() };
    let Ok(forged_cb) = forged.check(provider, &config, now) else { return false };
    let genuine_cb = genuine.check(provider, &config, now).unwrap();
    let known: Vec<_> = genuine_cb.events.iter().map(facts).collect();
    for event in &forged_cb.events {
        assert!(known.contains(&facts(event)), "forged body yields a new event {event:?}\nforged: {forged_body}");
    }
    true
}

fn genuine(provider: Provider, body: &str, now: DateTime<Utc>) -> TestRequest {
    TestRequest::signed(provider, body, SECRET, now)
}

/// The merges of each pair into the one before it, and each nested key written as a dotted key.
fn single_forgeries(s: &str) -> Vec<Reading> {
    let faithful = Reading::faithful(s);
    let mut out = Vec::new();
    // `&` count in the faithful reading equals the pair count minus one: merge pair i+1 into pair i.
    for i in 0..faithful.amp_splits.len() {
        let mut r = faithful.clone();
        r.amp_splits[i] = false;
        out.push(r);
    }
    for i in 0..faithful.dot_splits.len() {
        let mut r = faithful.clone();
        r.dot_splits[i] = false;
        out.push(r);
    }
    out
}

#[test]
fn merges_and_dotted_keys_on_every_field_yield_no_new_event() {
    let now = Utc::now();
    for (provider, name) in [(Choice, "0002_transaction"), (Choice, "0008_bulk_transfer"), (Niobi, "payin_ussd_push")] {
        let genuine = genuine(provider, &fixture(provider, name), now);
        let body = genuine.body_text();
        let s = canonical_string(&body).unwrap();
        let signature = signature_of(&body);
        let mut verified = 0;
        for reading in single_forgeries(&s) {
            for literals in [true, false] {
                if let Some(forged) = forge(&s, &reading, literals, &signature) {
                    verified += usize::from(assert_no_new_event(provider, &genuine, &forged, now));
                }
            }
        }
        // The attacks are real: many of these bodies carry a valid signature.
        assert!(verified > 10, "{provider}/{name}: only {verified} forgeries verified");
    }
}

#[test]
fn the_reported_attacks_are_quarantined_not_believed() {
    let now = Utc::now();
    let config = VerifyConfig::default();
    // Choice: `"requestId":"R1&salt=abc"` with `salt` deleted.
    let choice = genuine(Choice, &fixture(Choice, "0002_transaction"), now);
    let mut v: Value = serde_json::from_str(&choice.body_text()).unwrap();
    let salt = v["salt"].as_str().unwrap().to_owned();
    let request_id = v["requestId"].as_str().unwrap().to_owned();
    v["requestId"] = Value::String(format!("{request_id}&salt={salt}"));
    v.as_object_mut().unwrap().remove("salt");
    let merged = TestRequest { body: v.to_string().into_bytes(), ..choice.clone() };
    let cb = merged.check(Choice, &config, now).expect("the merge keeps the signature valid");
    assert!(cb.events.is_empty());
    assert_eq!(cb.quarantined[0].reason.as_str(), "ambiguous_signature");

    // Niobi: merge the pair after `params.depositId` into it.
    let niobi = genuine(Niobi, &fixture(Niobi, "payin_ussd_push"), now);
    let mut v: Value = serde_json::from_str(&niobi.body_text()).unwrap();
    let email = v["params"]["email"].as_str().unwrap().to_owned();
    let deposit = v["params"]["depositId"].as_str().unwrap().to_owned();
    v["params"]["depositId"] = Value::String(format!("{deposit}&params.email={email}"));
    v["params"].as_object_mut().unwrap().remove("email");
    let merged = TestRequest { body: v.to_string().into_bytes(), ..niobi.clone() };
    let cb = merged.check(Niobi, &config, now).expect("the merge keeps the signature valid");
    assert!(cb.events.is_empty());
    assert_eq!(cb.quarantined[0].reason.as_str(), "ambiguous_signature");

    // Dotted key: `{"params.depositId": ...}` flattens like `{"params": {"depositId": ...}}`.
    let mut v: Value = serde_json::from_str(&niobi.body_text()).unwrap();
    let params = v["params"].as_object_mut().unwrap();
    let deposit = params.remove("depositId").unwrap();
    v.as_object_mut().unwrap().insert("params.depositId".into(), deposit);
    let dotted = TestRequest { body: v.to_string().into_bytes(), ..niobi.clone() };
    let cb = dotted.check(Niobi, &config, now).expect("the dotted key keeps the signature valid");
    assert!(cb.events.is_empty());
    assert_eq!(cb.quarantined[0].reason.as_str(), "ambiguous_signature");
}

/// A genuine body whose value holds `&k=v` is itself ambiguous: it is quarantined, and its split (a new
/// key, here one that sorts where the merged text stood) is unambiguous and would yield an event the
/// genuine body did not; the one-time signature record makes it a duplicate of the genuine delivery.
#[tokio::test]
async fn a_split_after_the_genuine_delivery_is_a_duplicate() {
    let now = Utc::now();
    let body =
        fixture(Choice, "0002_transaction").replace("\"errorMsg\": \"\"", "\"errorMsg\": \"none&params.errorMsgX=1\"");
    let genuine = genuine(Choice, &body, now);
    let t = TestPipeline::new(Choice);
    let first = t.pipeline.process(&genuine.incoming(), now, LEASE).await.unwrap();
    assert_eq!(first.outcome, Outcome::Quarantined, "an ambiguous genuine body is kept aside, not believed");

    let mut v: Value = serde_json::from_str(&genuine.body_text()).unwrap();
    v["params"]["errorMsg"] = Value::String("none".into());
    v["params"]["errorMsgX"] = Value::String("1".into());
    let split = TestRequest { body: v.to_string().into_bytes(), ..genuine.clone() };
    let alone = split.check(Choice, &VerifyConfig::default(), now).expect("the split keeps the signature valid");
    assert_eq!(alone.events.len(), 1, "on its own the split would be believed: only the signature record stops it");
    let second = t.pipeline.process(&split.incoming(), now, LEASE).await.unwrap();
    assert_eq!(second.outcome, Outcome::Duplicate);
    assert_eq!(t.publisher.messages().len(), 1, "only the genuine delivery's quarantine message");
}

/// After a genuine delivery, every forgery of it that verifies is a duplicate: no message at all.
#[tokio::test]
async fn forgeries_after_the_genuine_delivery_send_nothing() {
    let now = Utc::now();
    for (provider, name) in [(Choice, "0002_transaction"), (Niobi, "payin_ussd_push")] {
        let genuine = genuine(provider, &fixture(provider, name), now);
        let t = TestPipeline::new(provider);
        assert_eq!(t.pipeline.process(&genuine.incoming(), now, LEASE).await.unwrap().outcome, Outcome::Accepted);
        let body = genuine.body_text();
        let s = canonical_string(&body).unwrap();
        for reading in single_forgeries(&s) {
            let Some(forged) = forge(&s, &reading, true, &signature_of(&body)) else { continue };
            let req = TestRequest { body: forged.into_bytes(), ..genuine.clone() };
            if let Ok(done) = t.pipeline.process(&req.incoming(), now, LEASE).await {
                assert_eq!(done.outcome, Outcome::Duplicate, "{provider}");
            }
        }
        assert_eq!(t.publisher.messages().len(), 1, "{provider}");
    }
}

fn arb_value() -> impl Strategy<Value = String> {
    // Values that may hold the canonical string's separators, so genuine bodies can be ambiguous too.
    prop_oneof![
        3 => "[A-Z0-9]{1,6}",
        1 => "[a-z]{0,3}[&=.][a-z]{1,3}(=[a-z]{0,2})?",
        1 => Just("null".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// For random genuine Choice notifications (some ambiguous), random re-readings of the signed string
    /// never yield a new event id or a changed event.
    #[test]
    fn random_rereadings_never_yield_a_new_event(
        tx_id in arb_value(),
        amount in prop_oneof![Just("1500.00".to_owned()), arb_value()],
        merchant in arb_value(),
        extra in arb_value(),
        amp_splits in prop::collection::vec(any::<bool>(), 64),
        dot_splits in prop::collection::vec(any::<bool>(), 64),
        literals in any::<bool>(),
    ) {
        let now = Utc::now();
        let mut v: Value = serde_json::from_str(&fixture(Choice, "0002_transaction")).unwrap();
        v["params"]["txId"] = Value::String(tx_id);
        v["params"]["amount"] = Value::String(amount);
        v["params"]["merchantTxId"] = Value::String(merchant);
        v["params"]["note"] = Value::String(extra);
        let genuine = genuine(Choice, &v.to_string(), now);
        let body = genuine.body_text();
        let s = canonical_string(&body).unwrap();
        let reading = Reading { amp_splits, dot_splits };
        if let Some(forged) = forge(&s, &reading, literals, &signature_of(&body)) {
            if testing::read_verdict(&forged).is_ok() {
                assert_no_new_event(Choice, &genuine, &forged, now);
            }
        }
    }
}

#[test]
fn the_forger_reproduces_the_genuine_body() {
    // The faithful reading of a genuine body verifies: the forger is a real re-parser of the signed string.
    let now = Utc::now();
    let genuine = TestRequest::from_signed(Choice, &sign(Choice, &fixture(Choice, "0002_transaction"), SECRET, now));
    let body = genuine.body_text();
    let s = canonical_string(&body).unwrap();
    let forged = forge(&s, &Reading::faithful(&s), true, &signature_of(&body)).unwrap();
    let again = TestRequest { body: forged.into_bytes(), ..genuine.clone() };
    let cb = again.check(Choice, &VerifyConfig::default(), now).unwrap();
    assert_eq!(cb.events.len(), 1);
}

/// `compact` and `java` leave `null` and `{}` out of the signed string, so such a member or array item added
/// to a genuine body verifies in them: it is read as absent, and can neither add an event nor change one.
#[tokio::test]
async fn what_a_dialect_left_unsigned_is_read_as_absent() {
    let now = Utc::now();
    let config = VerifyConfig::default();
    let empty = || Value::Object(Map::new());
    type Reshape = fn(&mut Value, Value);
    let cases: [(&str, Reshape); 4] = [
        ("0008_bulk_transfer", |v, e| v["params"]["resultArray"].as_array_mut().unwrap().push(e)),
        ("0008_bulk_transfer", |v, _| v["params"]["resultArray"].as_array_mut().unwrap().push(Value::Null)),
        ("0008_bulk_transfer", |v, e| v["params"]["resultArray"][0]["merchantTxId"] = e),
        ("0002_transaction", |v, e| v["params"]["merchantTxId"] = e),
    ];
    for (name, reshape) in cases {
        let genuine = genuine(Choice, &fixture(Choice, name), now);
        let genuine_cb = genuine.check(Choice, &config, now).unwrap();
        let mut v: Value = serde_json::from_str(&genuine.body_text()).unwrap();
        reshape(&mut v, empty());
        let reshaped = TestRequest { body: v.to_string().into_bytes(), ..genuine.clone() };
        let cb = reshaped.check(Choice, &config, now).expect("verifies in a dialect that leaves it out");
        assert_ne!(cb.verified.dialect, Some(payhooks::verify::Dialect::Postman), "{name}");
        assert_eq!(
            cb.events.iter().map(facts).collect::<Vec<_>>(),
            genuine_cb.events.iter().map(facts).collect::<Vec<_>>(),
            "{name}: {v}"
        );
        assert!(cb.quarantined.is_empty(), "{name}: {:?}", cb.quarantined);
        assert_eq!(cb.content_hash, genuine_cb.content_hash, "{name}: the same content, so a duplicate of the genuine");
        // Through the handler: the genuine events go out, nothing quarantined, nothing more.
        let t = TestPipeline::new(Choice);
        assert_eq!(t.call(&reshaped, false).await.0, 200, "{name}");
        let mut sent: Vec<String> = t.publisher.messages().into_iter().map(|m| m.id).collect();
        let mut genuine_ids: Vec<String> = genuine_cb.events.iter().map(|e| e.id.clone()).collect();
        sent.sort();
        genuine_ids.sort();
        assert_eq!(sent, genuine_ids, "{name}");
    }
}

/// The ambiguity check flags only a real second reading: `"Duka&zz=1"` cannot be split into pairs that sort
/// where it stands (`zz=1` would sort after `timestamp`), so the batch goes out whole; a value that can
/// (`&params.resultArray[1].benificiaryNameX=1` sorts right after the name) withholds its own item only.
#[tokio::test]
async fn only_a_real_second_reading_withholds_and_only_its_own_item() {
    let now = Utc::now();
    let ids = |t: &TestPipeline| t.publisher.messages().into_iter().map(|m| (m.id, m.event_type)).collect::<Vec<_>>();

    let no_second_reading = fixture(Choice, "0008_bulk_transfer").replace("\"Duka Ltd\"", "\"Duka&zz=1\"");
    let t = TestPipeline::new(Choice);
    assert_eq!(t.call(&genuine(Choice, &no_second_reading, now), false).await.0, 200);
    let sent = ids(&t);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|(_, kind)| !kind.ends_with(".quarantined")), "{sent:?}");

    let real = fixture(Choice, "0008_bulk_transfer")
        .replace("\"Duka Ltd\"", "\"Duka&params.resultArray[1].benificiaryNameX=1\"");
    let genuine_real = genuine(Choice, &real, now);
    let t = TestPipeline::new(Choice);
    assert_eq!(t.call(&genuine_real, false).await.0, 200);
    let sent = ids(&t);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent.iter().filter(|(_, kind)| kind == "choice.quarantined").count(), 1, "{sent:?}");
    assert!(sent.iter().any(|(id, _)| id == "choice:0008:BAAS000820251122000001:0"), "item 0 goes out: {sent:?}");

    // The second reading is real: the split body verifies with the same signature.
    let mut v: Value = serde_json::from_str(&genuine_real.body_text()).unwrap();
    v["params"]["resultArray"][1]["benificiaryName"] = Value::String("Duka".into());
    v["params"]["resultArray"][1]["benificiaryNameX"] = Value::String("1".into());
    let split = TestRequest { body: v.to_string().into_bytes(), ..genuine_real.clone() };
    assert!(split.check(Choice, &VerifyConfig::default(), now).is_ok());
}
