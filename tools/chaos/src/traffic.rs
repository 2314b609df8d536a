//! The soak's traffic: signed callbacks of all five providers, drawn from a seed. Transactions of several
//! events arrive out of order, Choice sends batches, some bodies are quarantined, and a share is sent again
//! (the same bytes, or the same content re-encoded and re-signed). Each sender retries as its provider
//! documents (`../shared/providers.md`), its waits compressed by a time scale.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::Utc;
use payhooks::providers::{self, Incoming, VerifyConfig};
use payhooks::signing::{SignOptions, SignedRequest};
use payhooks::state::PaymentStatus;
use payhooks::verify::SecretSet;
use payhooks::Provider;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

/// How a provider's sender retries a callback that was not acknowledged: its sends, and the waits between.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub waits: &'static [Duration],
}

impl RetryPolicy {
    /// From `../shared/providers.md`: M2Money's sender is Spatie's webhook server (3 tries, 10 s then 100 s);
    /// Choice sends at most 5 times, at an interval it does not document (10 s assumed); Niobi, Lipia and
    /// MUDA document no retry, so their sender stops after one send.
    pub fn of(provider: Provider) -> Self {
        const S10: Duration = Duration::from_secs(10);
        const S100: Duration = Duration::from_secs(100);
        let waits: &'static [Duration] = match provider {
            Provider::M2Money => &[S10, S100],
            Provider::Choice => &[S10, S10, S10, S10],
            Provider::Niobi | Provider::Lipia | Provider::Muda => &[],
        };
        Self { waits }
    }

    pub fn sends(self) -> usize {
        self.waits.len() + 1
    }
}

/// The share of each kind of callback.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    pub callbacks: usize,
    /// Percent of the callbacks that are sent again: half the same bytes, half re-encoded and re-signed.
    pub repeat_pct: u32,
    /// Percent of the transactions that are an authentic body payhooks cannot normalise.
    pub quarantine_pct: u32,
}

/// One transaction's callbacks as a provider sends them, from its fixtures.
struct Template {
    provider: Provider,
    /// The fixtures, one callback each, in the order the events happened; with an edit of the text.
    steps: &'static [(&'static str, Option<(&'static str, &'static str)>)],
    /// Texts that name the transaction: made unique per transaction.
    transaction: &'static [&'static str],
    /// Texts that name one callback: made unique per callback.
    callback: &'static [&'static str],
    /// An edit that leaves the body authentic but impossible to normalise (no transaction reference).
    quarantine: Option<(&'static str, &'static str)>,
}

const TEMPLATES: &[Template] = &[
    Template {
        provider: Provider::Niobi,
        steps: &[("payin_timeout", None), ("payin_ussd_push", None)],
        transaction: &["A7KQ2M9XW001"],
        callback: &[],
        quarantine: None,
    },
    Template {
        provider: Provider::Niobi,
        steps: &[("payout_success", None)],
        transaction: &["bd8f51a2-6c1e-4f0b-9a57-3e2d1c0b9a8f"],
        callback: &[],
        quarantine: None,
    },
    Template {
        provider: Provider::M2Money,
        steps: &[("payout_success", None), ("payout_reversed", None)],
        transaction: &["ORD2025112200017"],
        callback: &[],
        quarantine: Some(("\"orderRefId\"", "\"orderRef\"")),
    },
    Template {
        provider: Provider::Lipia,
        steps: &[("stk_success", None)],
        transaction: &["ws_CO_22112025101500123456"],
        callback: &[],
        quarantine: None,
    },
    Template {
        provider: Provider::Lipia,
        steps: &[("stk_failed", None)],
        transaction: &["ws_CO_22112025101700654321"],
        callback: &[],
        quarantine: None,
    },
    Template {
        provider: Provider::Muda,
        steps: &[("transaction_event_pending", None), ("transaction_event_success", None)],
        transaction: &["9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"],
        callback: &[],
        quarantine: Some(("\"transaction_id\"", "\"transaction\"")),
    },
    Template {
        provider: Provider::Muda,
        steps: &[("transaction_status_pending", None), ("transaction_status_failed", None)],
        transaction: &["5f0c8a3e-1b2d-4c5e-8f9a-0b1c2d3e4f50"],
        callback: &[],
        quarantine: None,
    },
    Template {
        provider: Provider::Choice,
        steps: &[("0002_transaction", Some(("\"txStatus\": 8", "\"txStatus\": 1"))), ("0002_transaction", None)],
        transaction: &["TX-9000001"],
        callback: &["BAAS000220251122000001"],
        quarantine: None,
    },
    // A batch: two transfers, one event each.
    Template {
        provider: Provider::Choice,
        steps: &[("0008_bulk_transfer", None)],
        transaction: &["TX-9300001", "TX-9300002", "BP-8001"],
        callback: &["BAAS000820251122000001"],
        quarantine: None,
    },
];

/// The secret each provider's function is given and its sender signs with.
pub fn secret_of(provider: Provider) -> String {
    format!("chaos-{provider}-secret")
}

/// A payment event a callback carries: what the audit checks the transaction's state against.
#[derive(Debug, Clone)]
pub struct Payment {
    pub event_id: String,
    pub reference: String,
    pub status: PaymentStatus,
}

/// One body a provider sends: signed once, at its first send, so that its exact duplicates carry the same
/// bytes and signature.
#[derive(Debug, Clone)]
pub struct Body {
    pub provider: Provider,
    pub text: String,
    signed: OnceLock<SignedRequest>,
    /// The ids of the records payhooks makes of it (events and quarantines).
    pub records: Vec<String>,
    pub payments: Vec<Payment>,
    pub quarantined: bool,
}

impl Body {
    /// The request as the provider sends it now (signed at the first call).
    pub fn signed(&self) -> &SignedRequest {
        self.signed.get_or_init(|| {
            let secret = SecretSet::parse(&secret_of(self.provider), "chaos").expect("a secret");
            payhooks::signing::sign(self.provider, &self.text, secret.current(), &SignOptions::default(), Utc::now())
                .expect("a fixture signs")
        })
    }
}

/// One callback in the soak's order: a body, and whether it is a repeat of an earlier one.
#[derive(Debug, Clone)]
pub struct Callback {
    pub body: Arc<Body>,
    pub repeat: Repeat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    First,
    /// The same bytes again.
    Duplicate,
    /// The same content in other bytes, signed again.
    Reencoded,
}

/// The soak's callbacks, in sending order.
pub fn generate(mix: Mix, rng: &mut StdRng) -> Vec<Callback> {
    let firsts = mix.callbacks - mix.callbacks * mix.repeat_pct as usize / 100;
    let mut callbacks: Vec<Callback> = Vec::with_capacity(mix.callbacks);
    let mut transaction = 0usize;
    while callbacks.len() < firsts {
        transaction += 1;
        let template = &TEMPLATES[rng.random_range(0..TEMPLATES.len())];
        let unique = |text: &str, step: Option<usize>| {
            let mut text = text.to_owned();
            for name in template.transaction {
                text = text.replace(name, &format!("{name}x{transaction}"));
            }
            for name in template.callback {
                text = text.replace(name, &format!("{name}x{transaction}s{}", step.unwrap_or(0)));
            }
            text
        };
        let quarantine = template.quarantine.filter(|_| rng.random_ratio(mix.quarantine_pct, 100));
        let mut bodies: Vec<Body> = match quarantine {
            Some((from, to)) => vec![body(template.provider, unique(&fixture(template, 0).replace(from, to), None))],
            None => (0..template.steps.len())
                .map(|step| body(template.provider, unique(&fixture(template, step), Some(step))))
                .collect(),
        };
        // A transaction's events arrive out of order.
        bodies.shuffle(rng);
        callbacks.extend(bodies.into_iter().map(|b| Callback { body: Arc::new(b), repeat: Repeat::First }));
    }
    callbacks.truncate(firsts);
    // Neighbours trade places, so a transaction's callbacks interleave with others' and often run at once.
    for i in 0..callbacks.len() {
        let j = (i + rng.random_range(0..8)).min(callbacks.len() - 1);
        callbacks.swap(i, j);
    }
    // Repeats: each soon after its original (often while it is still in flight), or much later.
    while callbacks.len() < mix.callbacks {
        let original = rng.random_range(0..firsts);
        let first = callbacks.iter().filter(|c| c.repeat == Repeat::First).nth(original).expect("an original").clone();
        let repeat = if rng.random_bool(0.5) {
            Callback { repeat: Repeat::Duplicate, body: first.body.clone() }
        } else {
            let text = format!(" {}\n", first.body.text);
            Callback {
                body: Arc::new(Body { text, signed: OnceLock::new(), ..(*first.body).clone() }),
                repeat: Repeat::Reencoded,
            }
        };
        let position = callbacks
            .iter()
            .position(|c| Arc::ptr_eq(&c.body, &first.body) || c.body.text.trim() == first.body.text.trim())
            .expect("the original");
        let at = if rng.random_bool(0.7) {
            position + 1 + rng.random_range(0..4)
        } else {
            rng.random_range(position + 1..=callbacks.len())
        };
        callbacks.insert(at.min(callbacks.len()), repeat);
    }
    callbacks
}

fn fixture(template: &Template, step: usize) -> String {
    let (name, edit) = template.steps[step];
    let path = format!("tests/fixtures/{}/{name}.json", template.provider);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e} (run from the repository)"));
    match edit {
        Some((from, to)) => text.replace(from, to),
        None => text,
    }
}

/// A body, with the records payhooks' own reading of it says it stands for.
fn body(provider: Provider, text: String) -> Body {
    let secret = SecretSet::parse(&secret_of(provider), "chaos").expect("a secret");
    let signed =
        payhooks::signing::sign(provider, &text, secret.current(), &SignOptions::default(), Utc::now()).expect("signs");
    let path = signed.path(provider);
    let incoming = Incoming {
        method: &lambda_http::http::Method::POST,
        path: &path,
        headers: &signed.headers,
        body: signed.body.as_bytes(),
        source_ip: None,
    };
    let callback = providers::authenticate_and_normalise(
        provider,
        &VerifyConfig::default(),
        &secret.into(),
        &incoming,
        Utc::now(),
    )
    .unwrap_or_else(|e| panic!("a {provider} fixture the soak sends is refused: {e}"));
    let records =
        callback.events.iter().map(|e| e.id.clone()).chain(callback.quarantined.iter().map(|q| q.id.clone())).collect();
    let payments = callback
        .events
        .iter()
        .filter_map(|e| {
            Some(Payment {
                event_id: e.id.clone(),
                reference: e.reference.clone(),
                status: PaymentStatus::of(e.status)?,
            })
        })
        .collect();
    Body { provider, text, signed: OnceLock::new(), records, payments, quarantined: !callback.quarantined.is_empty() }
}

/// The API Gateway (HTTP API, payload 2.0) event for one send of `signed`.
pub fn apigw_event(provider: Provider, signed: &SignedRequest) -> String {
    let path = signed.path(provider);
    let headers: serde_json::Map<String, serde_json::Value> = signed
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().into()))
        .chain([("content-type".to_owned(), "application/json".into())])
        .collect();
    serde_json::json!({
        "version": "2.0",
        "routeKey": format!("POST {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "chaos",
            "http": { "method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "chaos" },
            "requestId": "chaos",
            "routeKey": format!("POST {path}"),
            "stage": "$default",
            "timeEpoch": Utc::now().timestamp_millis()
        },
        "body": signed.body,
        "isBase64Encoded": false
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn in_repository() {
        std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).unwrap();
    }

    #[test]
    fn the_mix_is_what_it_says_and_a_seed_draws_it_again() {
        in_repository();
        let mix = Mix { callbacks: 400, repeat_pct: 30, quarantine_pct: 10 };
        let callbacks = generate(mix, &mut StdRng::seed_from_u64(3));
        assert_eq!(callbacks.len(), 400);
        let count = |repeat| callbacks.iter().filter(|c| c.repeat == repeat).count();
        assert_eq!(count(Repeat::First), 280);
        assert!(count(Repeat::Duplicate) > 30 && count(Repeat::Reencoded) > 30);
        for provider in Provider::ALL {
            assert!(callbacks.iter().any(|c| c.body.provider == provider), "{provider}");
        }
        assert!(callbacks.iter().any(|c| c.body.quarantined));
        assert!(callbacks.iter().any(|c| c.body.records.len() == 2), "a Choice batch");
        // Two events of one transaction, the later-ranked one first.
        let firsts: Vec<&Payment> =
            callbacks.iter().filter(|c| c.repeat == Repeat::First).flat_map(|c| &c.body.payments).collect();
        assert!(firsts.iter().enumerate().any(|(i, p)| firsts[i + 1..]
            .iter()
            .any(|q| q.reference == p.reference && q.status.rank() < p.status.rank())));
        // A re-encoding stands for the records of its original.
        let reencoded = callbacks.iter().find(|c| c.repeat == Repeat::Reencoded).unwrap();
        assert!(callbacks.iter().any(|c| c.repeat == Repeat::First && c.body.records == reencoded.body.records));

        let again = generate(mix, &mut StdRng::seed_from_u64(3));
        let texts = |c: &[Callback]| c.iter().map(|c| c.body.text.clone()).collect::<Vec<_>>();
        assert_eq!(texts(&callbacks), texts(&again));
    }
}
