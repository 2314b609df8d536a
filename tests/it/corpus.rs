//! Every kind of message payhooks sends, produced by the pipeline itself (in memory, no emulator), held to
//! the published contract: every fixture of every provider as `make demo` sends them (so regressions and
//! contradictions), duplicates, Choice batch items, quarantines of each sort, a replay. The moto tests hold
//! every message they read to it too (`support::Stack::messages`).

use chrono::Utc;
use payhooks::testing::{all_fixtures, fixture, TestPipeline, TestRequest, SECRET};
use payhooks::Provider::{self, *};

use crate::contract::assert_contract;
use crate::support::LEASE;

/// The bodies of the messages `provider`'s pipeline sends for `bodies`, in order.
async fn messages(provider: Provider, bodies: &[String]) -> Vec<String> {
    let t = TestPipeline::new(provider);
    for body in bodies {
        let now = Utc::now();
        let req = TestRequest::signed(provider, body, SECRET, now);
        t.pipeline.process(&req.incoming(), now, LEASE).await.unwrap();
    }
    t.publisher.messages().into_iter().map(|m| m.body).collect()
}

#[tokio::test]
async fn every_kind_of_message_holds_to_the_contract() {
    let mut corpus = Vec::new();
    for provider in Provider::ALL {
        // As the demo sends them: every fixture in name order, then the first again (a duplicate).
        let mut bodies: Vec<String> = all_fixtures(provider).into_iter().map(|(_, body)| body).collect();
        bodies.push(bodies[0].clone());
        corpus.extend(messages(provider, &bodies).await);
    }
    // Quarantines: an amount that is no decimal, a batch with one bad item, an authentic body that cannot be read.
    let bad_amount = fixture(M2Money, "payout_success").replace("\"1500.00\"", "\"1,750.00\"");
    corpus.extend(messages(M2Money, &[bad_amount]).await);
    let batch = fixture(Choice, "0004_merchant_bulk_transfer");
    let bad_item = batch.replacen("\"500.00\"", "\"five hundred\"", 1);
    assert_ne!(batch, bad_item, "the fixture has the amount the test changes");
    corpus.extend(messages(Choice, &[bad_item]).await);
    corpus.extend(messages(Lipia, &["{\"a\": 1, \"a\": 2}".to_owned(), "not json \u{1}".to_owned()]).await);
    // A replay, as `payhooks-admin replay` sends it.
    let mut replayed: payhooks::envelope::CloudEvent<Box<serde_json::value::RawValue>> =
        serde_json::from_str(&corpus[0]).unwrap();
    replayed.replayed = Some("2026-12-07T00:00:00.000Z".into());
    corpus.push(serde_json::to_string(&replayed).unwrap());

    let text = corpus.join("\n");
    for needle in [
        "\"regression\":true",
        "\"contradiction\":true",
        "\"batch_index\":1",
        "\"reason\":\"invalid_amount\"",
        "\"reason\":\"unreadable_body\"",
        "\"replayed\":",
        "\"transaction_status\":null",
    ] {
        assert!(text.contains(needle), "the corpus lacks {needle}");
    }
    for body in &corpus {
        assert_contract(body);
    }
    println!("contract: {} messages hold to schema/payhooks-event.schema.json and payhooks-events", corpus.len());
}

/// The committed schema is the one the consumer types give (`UPDATE_SCHEMA=1` rewrites it), so the two
/// cannot drift; and it is a valid JSON Schema 2020-12 document.
#[test]
fn the_published_schema_is_generated_from_the_consumer_types() {
    let generated = crate::contract::generated_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(crate::contract::schema_path(), &generated).unwrap();
    }
    let committed = std::fs::read_to_string(crate::contract::schema_path()).unwrap_or_default();
    assert!(committed == generated, "schema/payhooks-event.schema.json differs from the types: run `UPDATE_SCHEMA=1 cargo test -p payhooks-it --test it the_published_schema`");
    let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert!(jsonschema::meta::is_valid(&schema));
}
