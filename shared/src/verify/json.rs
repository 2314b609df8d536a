//! Raw JSON access that keeps every value exactly as the provider sent it.
//!
//! Signatures (Choice, Niobi) are computed over value text, so numbers must never be re-rendered through
//! `f64`; and a body with a repeated key would let the verifier and the parser see different values, so
//! duplicate keys are refused anywhere in the document.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The members of one JSON object, in the order they were sent, values untouched.
pub type Members<'a> = Vec<(String, &'a RawValue)>;

/// What a raw value is, judged from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

pub fn kind(raw: &RawValue) -> Kind {
    match raw.get().as_bytes().first() {
        Some(b'{') => Kind::Object,
        Some(b'[') => Kind::Array,
        Some(b'"') => Kind::String,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'n') => Kind::Null,
        _ => Kind::Number,
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = HashSet::new();
        let mut members = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            let value: &'de RawValue = map.next_value()?;
            members.push((key, value));
        }
        Ok(members)
    }
}

/// Parse `text` as one JSON object and return its members.
pub fn object_members(text: &str) -> Result<Members<'_>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let members = (&mut de).deserialize_map(MembersVisitor)?;
    de.end()?;
    Ok(members)
}

/// The elements of a JSON array.
pub fn array_elements(text: &str) -> Result<Vec<&RawValue>, serde_json::Error> {
    serde_json::from_str(text)
}

/// The text of a scalar as a provider means it: a string's content, a number's digits as sent,
/// `true`/`false`. `None` for `null`, objects and arrays.
pub fn scalar_text(raw: &RawValue) -> Option<String> {
    match kind(raw) {
        Kind::String => serde_json::from_str::<String>(raw.get()).ok(),
        Kind::Number | Kind::Bool => Some(raw.get().to_owned()),
        Kind::Null | Kind::Object | Kind::Array => None,
    }
}

/// The object `members` re-assembled without the keys in `drop`, values byte-for-byte as received.
pub fn object_without(members: &Members<'_>, drop: &[&str]) -> Box<RawValue> {
    let mut out = String::from("{");
    for (key, value) in members.iter().filter(|(k, _)| !drop.contains(&k.as_str())) {
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(key).expect("a string always serialises"));
        out.push(':');
        out.push_str(value.get());
    }
    out.push('}');
    RawValue::from_string(out).expect("re-assembled object is valid JSON")
}

#[cfg(any(test, feature = "test-util"))]
/// The object `members` with `key` set to the JSON text `value` (replaced in place, or appended).
pub fn object_with(members: &Members<'_>, key: &str, value: &str) -> Box<RawValue> {
    let value = RawValue::from_string(value.to_owned()).expect("caller passes valid JSON text");
    let mut replaced: Vec<(String, &RawValue)> =
        members.iter().map(|(k, v)| (k.clone(), if k == key { &*value } else { *v })).collect();
    if !members.iter().any(|(k, _)| k == key) {
        replaced.push((key.to_owned(), &value));
    }
    object_without(&replaced, &[])
}

/// A string or number field kept as the provider's text (amounts, ids, status codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        match kind(&raw) {
            Kind::String | Kind::Number | Kind::Bool => Ok(Text(scalar_text(&raw).unwrap_or_default())),
            other => Err(de::Error::custom(format!("expected a string or number, found {other:?}"))),
        }
    }
}

impl Text {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_text() {
        let members = object_members(r#"{"a": 10.50, "b": 1e2, "c": "x\u0041"}"#).unwrap();
        let texts: Vec<_> = members.iter().map(|(_, v)| scalar_text(v).unwrap()).collect();
        assert_eq!(texts, ["10.50", "1e2", "xA"]);
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = object_members(r#"{"a": 1, "a": 2}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate key `a`"), "{err}");
    }

    #[test]
    fn trailing_garbage_is_refused() {
        assert!(object_members(r#"{"a": 1} x"#).is_err());
        assert!(object_members("[1]").is_err());
    }

    #[test]
    fn object_without_drops_only_named_keys() {
        let members = object_members(r#"{"signature":"s","amount":10.50,"n":{"x":[1, 2]}}"#).unwrap();
        assert_eq!(object_without(&members, &["signature"]).get(), r#"{"amount":10.50,"n":{"x":[1, 2]}}"#);
    }

    #[test]
    fn object_with_replaces_or_appends() {
        let members = object_members(r#"{"timestamp":"","a":1}"#).unwrap();
        assert_eq!(object_with(&members, "timestamp", "17").get(), r#"{"timestamp":17,"a":1}"#);
        assert_eq!(object_with(&members, "b", "true").get(), r#"{"timestamp":"","a":1,"b":true}"#);
    }

    #[test]
    fn text_accepts_string_or_number() {
        #[derive(serde::Deserialize)]
        struct T {
            a: Text,
            b: Text,
        }
        let t: T = serde_json::from_str(r#"{"a": 100.00, "b": "100.00"}"#).unwrap();
        assert_eq!((t.a.as_str(), t.b.as_str()), ("100.00", "100.00"));
        assert!(serde_json::from_str::<T>(r#"{"a": {}, "b": "1"}"#).is_err());
    }
}
