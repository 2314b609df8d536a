//! The canonical string that Choice Bank BaaS and Niobi sign.
//!
//! Choice's Postman pre-request script (transcribed in providers.md) deletes `signature`, flattens the body
//! (`a.b` for nested keys, `a[i]` for array items, `a={}` / `a=[]` for empty containers), pushes
//! `senderKey=<private key>`, sorts the `key=value` strings with JavaScript's `Array.prototype.sort`
//! (UTF-16 code-unit order over the whole string) and joins them with `&`. Niobi documents the same steps.
//! Values are the text as sent: a number's digits are never re-rendered, `null` renders as `null`
//! (JavaScript string concatenation). The flattening itself is done by the reader ([`super::json`]).

use std::cmp::Ordering;

use super::json::Document;

/// The field a signer adds with its secret before sorting.
pub const SENDER_KEY: &str = "senderKey";
/// The body field that carries the signature; never part of what is signed.
pub const SIGNATURE_FIELD: &str = "signature";

/// The flattened `key=value` strings of a body, in canonical (sorted) order, without `signature`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalPairs(Vec<String>);

impl CanonicalPairs {
    /// The pairs of `doc`, leaving out top-level `signature`.
    pub fn of(doc: &Document<'_>) -> Self {
        let mut pairs: Vec<String> =
            doc.pairs.iter().filter(|p| p.top != SIGNATURE_FIELD).map(|p| p.joined()).collect();
        pairs.sort_by(|a, b| js_cmp(a, b));
        Self(pairs)
    }

    /// The pairs alone, joined with `&`.
    #[cfg(any(test, feature = "test-util"))]
    pub fn joined(&self) -> String {
        self.0.join("&")
    }

    /// The string to sign: these pairs plus `senderKey=<secret>`, sorted, joined with `&`.
    pub fn string_to_sign(&self, secret: &str) -> String {
        let sender_key = format!("{SENDER_KEY}={secret}");
        let at = self.0.partition_point(|p| js_cmp(p, &sender_key) != Ordering::Greater);
        let mut parts: Vec<&str> = self.0.iter().map(String::as_str).collect();
        parts.insert(at, &sender_key);
        parts.join("&")
    }
}

/// JavaScript's default sort order: UTF-16 code units.
fn js_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::json;
    use proptest::prelude::*;

    fn pairs(body: &str) -> CanonicalPairs {
        CanonicalPairs::of(&json::read(body).unwrap())
    }

    fn joined(body: &str) -> String {
        pairs(body).joined()
    }

    #[test]
    fn flattens_like_the_postman_script() {
        let p = joined(r#"{"signature":"x","b":{"c":1.50,"d":[],"e":{},"f":[{"g":null},true]},"a":"t"}"#);
        assert_eq!(p, "a=t&b.c=1.50&b.d=[]&b.e={}&b.f[0].g=null&b.f[1]=true");
    }

    #[test]
    fn sorts_whole_strings_not_keys() {
        // `amount=` vs `amount2=`: '=' (0x3D) sorts after '2' (0x32) as a string; a key sort would differ.
        assert_eq!(joined(r#"{"amount":"1","amount2":"2"}"#), "amount2=2&amount=1");
    }

    #[test]
    fn doc_example_string_to_sign() {
        let p = pairs(
            r#"{"locale":"en_KE","params":{"name":"Tester"},"requestId":"APPREQ00990320fed02000","salt":"QcEwsZ123da","sender":"client1","timestamp":1650533105687}"#,
        );
        assert_eq!(
            p.string_to_sign("yourkey"),
            "locale=en_KE&params.name=Tester&requestId=APPREQ00990320fed02000&salt=QcEwsZ123da&sender=client1&senderKey=yourkey&timestamp=1650533105687"
        );
    }

    #[test]
    fn utf16_order_for_non_ascii() {
        // U+FF21 (BMP, high) sorts after U+1F600 (surrogate pair 0xD83D..) in UTF-16, before it in UTF-8.
        assert_eq!(js_cmp("\u{FF21}", "\u{1F600}"), Ordering::Greater);
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[a-z0-9 ]{0,8}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-zA-Z]{1,6}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Render an object with its top-level and nested keys in the order given by `rotate`.
    fn render(value: &serde_json::Value, rotate: usize) -> String {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                if !entries.is_empty() {
                    let n = entries.len();
                    entries.rotate_left(rotate % n);
                }
                let inner: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), render(v, rotate + 1)))
                    .collect();
                format!("{{{}}}", inner.join(","))
            }
            serde_json::Value::Array(items) => {
                format!("[{}]", items.iter().map(|v| render(v, rotate)).collect::<Vec<_>>().join(","))
            }
            other => other.to_string(),
        }
    }

    proptest! {
        #[test]
        fn canonical_string_ignores_key_order(
            map in prop::collection::btree_map("[a-zA-Z]{1,6}", arb_json(), 1..6),
            rotate in 0usize..5,
        ) {
            let value = serde_json::Value::Object(map.into_iter().collect());
            let sorted = render(&value, 0);
            let rotated = render(&value, rotate);
            prop_assert_eq!(pairs(&sorted).string_to_sign("k"), pairs(&rotated).string_to_sign("k"));
        }
    }
}
