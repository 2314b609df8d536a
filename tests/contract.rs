//! The published contract of the messages: `schema/payhooks-event.schema.json`, generated from
//! `payhooks-events`' types, and the check every test's messages go through.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use payhooks_events::Event;

pub fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("schema/payhooks-event.schema.json")
}

/// The schema as the types give it (what the committed file must be).
pub fn generated_schema() -> String {
    let mut schema = serde_json::to_value(schemars::schema_for!(Event)).unwrap();
    let object = schema.as_object_mut().unwrap();
    object.insert(
        "$id".into(),
        format!("https://payhooks.dev/schema/payhooks-event-{}.schema.json", payhooks_events::SCHEMA_VERSION).into(),
    );
    object.insert("title".into(), "payhooks event (an SQS message body)".into());
    serde_json::to_string_pretty(&schema).unwrap() + "\n"
}

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let text = std::fs::read_to_string(schema_path()).expect("schema/payhooks-event.schema.json");
        jsonschema::draft202012::new(&serde_json::from_str(&text).unwrap()).expect("a valid 2020-12 schema")
    })
}

/// A message body holds to the contract: valid against the committed schema, read by the consumer types,
/// and written back by them as the same JSON.
pub fn assert_contract(body: &str) {
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    let errors: Vec<String> =
        validator().iter_errors(&value).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "against the schema: {errors:?}\n{body}");
    let event = Event::from_json(body).unwrap_or_else(|e| panic!("payhooks-events cannot read it ({e}): {body}"));
    // The same JSON (white space after the payload, which the producer copies from the body, aside).
    let again: serde_json::Value = serde_json::to_value(&event).unwrap();
    assert_eq!(again, value, "payhooks-events does not write back what it read");
}
