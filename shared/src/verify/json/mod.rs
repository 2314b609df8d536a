//! The one reader of a callback body: a single linear pass with an explicit stack (no recursion that input
//! can drive) that checks the limits while it reads and yields everything later steps need.
//!
//! - **Limits**: nesting deeper than [`MAX_DEPTH`] is refused as it is met; strings must be valid JSON strings
//!   (no raw control characters, no lone surrogate escapes such as `\udead`).
//! - **One meaning**: a key repeated in any object is refused, so the verifier and the parser can never
//!   read different values.
//! - **Value text as sent**: numbers keep their digits; strings are unescaped once. Signatures (Choice,
//!   Niobi) are computed over this text, so numbers are never re-rendered through `f64`.
//! - **Output**: the top-level members (raw text) and every leaf with its path, from which the query API
//!   ([`Value`]), the canonical string (`super::canonical`, which also looks for second readings of it) and
//!   the content hash (`hash.rs`) are read.
//!
//! `lex.rs` reads tokens, `flatten.rs` the structure, `query.rs` answers the providers' models, `hash.rs`
//! hashes the content.

use std::borrow::Cow;

mod flatten;
mod hash;
mod lex;
mod query;

pub use flatten::{read, read_signed};
pub(crate) use lex::{any_byte_is, word};
pub use query::Value;

/// Deepest nesting accepted (the top-level object is depth 1).
pub const MAX_DEPTH: usize = 32;
/// Most leaves (scalars and empty containers) a body may flatten to: real callbacks have tens.
pub const MAX_LEAVES: usize = 4096;
/// A body's flattened `path=value` text may be at most this many times its own size (or 64 KiB): every leaf
/// repeats its whole path, so a deep or wide body would otherwise flatten to megabytes.
pub const MAX_FLATTENED_RATIO: usize = 4;

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("nesting is deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("body flattens to more than {MAX_LEAVES} fields or {MAX_FLATTENED_RATIO} times its size")]
    TooComplex,
    #[error("{what} at byte {at}")]
    Invalid { what: &'static str, at: usize },
}

/// What a scalar or empty container is (its tag in the content hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Number,
    Bool,
    Null,
    EmptyObject,
    EmptyArray,
}

impl Kind {
    fn tag(self) -> char {
        match self {
            Kind::String => 's',
            Kind::Number => 'n',
            Kind::Bool => 'b',
            Kind::Null => 'z',
            Kind::EmptyObject => 'o',
            Kind::EmptyArray => 'a',
        }
    }
}

/// One leaf of the flattened body. Its paths live in the document's one buffer ([`Document::write_path`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair<'a> {
    /// `paths[path.0..path.1]` is the leaf's structural path: written so that no two different paths look
    /// alike, each key length-prefixed (`.1:a.1:b`, `.1:a[0]`). Offsets are `u32` (a leaf is 48 bytes, not
    /// 72): a buffer that would outgrow them is refused as too complex.
    path: (u32, u32),
    /// `paths[canonical_start..path.0]` is the canonical path (`a.b`, `a[0]`) when the body was read for a
    /// signature over it ([`read_signed`]); otherwise it is empty, and written from the structural path
    /// when asked.
    canonical_start: u32,
    /// The value as the canonical string renders it: a string's content, a number's text as sent,
    /// `true`/`false`/`null`, `{}`/`[]` for empty containers.
    pub value: Cow<'a, str>,
    pub kind: Kind,
    /// Where the value's text starts in the body (numbers: the value is that text).
    pub start: usize,
}

/// One step of a leaf's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment<'p> {
    Key(&'p str),
    Index(usize),
}

/// One top-level member.
#[derive(Debug)]
struct Member<'a> {
    key: Cow<'a, str>,
    /// The member's text, from its key's opening quote to the end of its value.
    span: (usize, usize),
    /// Its value's raw text.
    raw: &'a str,
    /// Its leaves: `pairs[leaves.0..leaves.1]`.
    leaves: (usize, usize),
}

/// A body that has been read: nothing later parses it again.
#[derive(Debug)]
pub struct Document<'a> {
    pub text: &'a str,
    /// Top-level members in the order sent.
    members: Vec<Member<'a>>,
    /// Every leaf, in document order (so the leaves of any object or array are one run).
    pub pairs: Vec<Pair<'a>>,
    /// Every leaf's structural (and, read for a signature, canonical) path, back to back: one buffer per
    /// callback.
    paths: String,
}

impl<'a> Document<'a> {
    /// Append a leaf's canonical path (`a.b[0]`) to `out`.
    pub fn write_path(&self, pair: &Pair<'_>, out: &mut String) {
        if pair.canonical_start < pair.path.0 {
            out.push_str(&self.paths[pair.canonical_start as usize..pair.path.0 as usize]);
        } else {
            write_canonical(self.structural(pair), out);
        }
    }

    /// The length of the buffer of every leaf's paths (to size what is written from them).
    pub fn paths_len(&self) -> usize {
        self.paths.len()
    }

    /// A leaf's length-prefixed path (`.1:a.1:b[0]`).
    pub(crate) fn structural(&self, pair: &Pair<'_>) -> &str {
        &self.paths[pair.path.0 as usize..pair.path.1 as usize]
    }

    /// The leaves of every top-level member except those named in `skip`, in document order.
    pub fn leaves_without<'s>(&'s self, skip: &'s [&str]) -> impl Iterator<Item = &'s Pair<'a>> + 's {
        let kept = self.members.iter().filter(move |m| !skip.contains(&m.key.as_ref()));
        kept.flat_map(|member| &self.pairs[member.leaves.0..member.leaves.1])
    }

    /// The top-level keys and their raw value texts, in the order sent.
    pub fn members(&self) -> impl Iterator<Item = (&str, &'a str)> + '_ {
        self.members.iter().map(|m| (m.key.as_ref(), m.raw))
    }

    /// A leaf's path, step by step.
    pub fn segments(&self, pair: &Pair<'_>) -> Vec<Segment<'_>> {
        let mut out = Vec::new();
        let mut rest = self.structural(pair);
        while !rest.is_empty() {
            let len = segment_len(rest);
            out.push(segment(&rest[..len]));
            rest = &rest[len..];
        }
        out
    }

    /// `path=value`, the pair as the canonical string joins it.
    #[cfg(any(test, feature = "signing"))]
    pub fn joined(&self, pair: &Pair<'_>) -> String {
        let mut out = String::new();
        self.write_path(pair, &mut out);
        out.push('=');
        out.push_str(&pair.value);
        out
    }

    fn find(&self, name: &str) -> Option<&Member<'a>> {
        self.members.iter().find(|m| m.key == name)
    }

    /// The body without the top-level keys in `drop`: the body itself if it has none of them, else its
    /// other members' text byte for byte, joined with `,`.
    pub fn object_without(&self, drop: &[&str]) -> Cow<'a, str> {
        if !self.members.iter().any(|m| drop.contains(&m.key.as_ref())) {
            return Cow::Borrowed(self.text);
        }
        let kept = self.members.iter().filter(|m| !drop.contains(&m.key.as_ref()));
        let mut out = String::with_capacity(self.text.len());
        out.push('{');
        for (i, member) in kept.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&self.text[member.span.0..member.span.1]);
        }
        out.push('}');
        Cow::Owned(out)
    }

    /// The object with top-level `key` set to the JSON text `value` (replaced in place, or appended).
    #[cfg(any(test, feature = "signing"))]
    pub fn object_with(&self, key: &str, value: &str) -> String {
        let quoted = serde_json::to_string(key).expect("a string always serialises");
        let mut parts: Vec<String> = self
            .members
            .iter()
            .map(|m| if m.key == key { format!("{quoted}:{value}") } else { self.text[m.span.0..m.span.1].to_owned() })
            .collect();
        if self.find(key).is_none() {
            parts.push(format!("{quoted}:{value}"));
        }
        format!("{{{}}}", parts.join(","))
    }

    /// The document without the nested leaves `unsigned` picks (a `null` or `{}` member or array item that a
    /// dialect leaves out of the signed string): whatever reads it next (the content hash, normalisation) sees
    /// them as absent, and an array keeps its other items' indices. A top-level member's own value stays: it
    /// is read by name only, so it cannot add an item or change a field (a required section sent as `{}`
    /// stays an empty section).
    pub fn without_nested_leaves(mut self, unsigned: impl Fn(&Pair<'a>) -> bool) -> Self {
        let keep: Vec<bool> = self
            .pairs
            .iter()
            .map(|pair| {
                let structural = self.structural(pair);
                !unsigned(pair) || segment_len(structural) == structural.len()
            })
            .collect();
        if keep.iter().all(|&k| k) {
            return self;
        }
        let pairs = std::mem::take(&mut self.pairs);
        for member in &mut self.members {
            let start = self.pairs.len();
            let run = member.leaves.0..member.leaves.1;
            self.pairs.extend(pairs[run.clone()].iter().zip(&keep[run]).filter(|(_, &k)| k).map(|(p, _)| p.clone()));
            member.leaves = (start, self.pairs.len());
        }
        self
    }
}

/// The length of the first step of a structural path: `.<len>:<key>` or `[<index>]`.
pub(crate) fn segment_len(structural: &str) -> usize {
    let bytes = structural.as_bytes();
    let mut digits = 0;
    let mut value = 0;
    while let Some(&b @ b'0'..=b'9') = bytes.get(1 + digits) {
        value = value * 10 + usize::from(b - b'0');
        digits += 1;
    }
    if bytes[0] == b'.' {
        2 + digits + value
    } else {
        2 + digits
    }
}

/// Write a structural path's canonical form: keys joined with `.`, indexes as `[i]`.
pub(crate) fn write_canonical(mut structural: &str, out: &mut String) {
    let mut first = true;
    while !structural.is_empty() {
        let len = segment_len(structural);
        let step = &structural[..len];
        match segment(step) {
            Segment::Key(key) => {
                if !first {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(_) => out.push_str(step),
        }
        first = false;
        structural = &structural[len..];
    }
}

/// One structural step as a [`Segment`].
pub(crate) fn segment(step: &str) -> Segment<'_> {
    if step.starts_with('.') {
        // The key starts after `.`, the length's digits and `:` (a key may hold `:` itself).
        let digits = step.as_bytes()[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        Segment::Key(&step[digits + 2..])
    } else {
        Segment::Index(step[1..step.len() - 1].parse().expect("an index step is `[i]`"))
    }
}
/// A key or path as a quarantine names it: at most [`SHOWN_CHARS`] characters, then `…` (a body may hold a
/// key of 100 KB, and the name goes into the record, the message and the log).
pub(crate) fn shown(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(SHOWN_CHARS) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!("{}…", &text[..cut])),
    }
}

/// The most characters of a key or path a quarantine shows.
const SHOWN_CHARS: usize = 128;

#[cfg(test)]
mod tests {
    use super::lex::{any_byte_below, any_byte_is, word};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_word_is_searched_as_its_bytes_one_by_one(bytes in any::<[u8; 8]>(), bound in 0u8..=0x80, byte: u8) {
            let x = word(&bytes);
            prop_assert_eq!(any_byte_below(x, bound), bytes.iter().any(|&b| b < bound));
            prop_assert_eq!(any_byte_is(x, byte), bytes.contains(&byte));
            // The bytes searched for most, placed among others.
            let mut with = bytes;
            with[usize::from(byte) % 8] = b'"';
            prop_assert!(any_byte_is(word(&with), b'"'));
        }

        #[test]
        fn keyed_sorting_is_byte_order(mut texts in proptest::collection::vec("[\\x00ab.=\\[\\]\u{e9}]{0,24}", 0..40)) {
            let mut keyed: Vec<(u128, String)> =
                texts.iter().map(|t| (crate::verify::prefix_key(t.as_bytes()), t.clone())).collect();
            keyed.sort_unstable();
            texts.sort_unstable();
            prop_assert_eq!(keyed.into_iter().map(|(_, t)| t).collect::<Vec<_>>(), texts);
        }
    }

    /// A JSON text whose objects keep their members in the order generated (not sorted), with keys of one
    /// to eleven bytes and arrays of up to eleven items (so `.9:` meets `.10:`, and `[9]` meets `[10]`).
    fn json_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("{}".to_owned()),
            Just("[]".to_owned()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i32>().prop_map(|n| n.to_string()),
            "[a-c\u{e9}]{0,12}".prop_map(|t| format!("\"{t}\"")),
        ];
        let value = leaf.prop_recursive(4, 64, 12, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 1..12).prop_map(|items| format!("[{}]", items.join(","))),
                object(inner),
            ]
        });
        object(value.boxed())
    }

    fn object(value: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
        proptest::collection::vec(("[a-c]{1,11}", value), 1..12).prop_map(|members| {
            let mut seen = std::collections::HashSet::new();
            let kept: Vec<String> = members
                .into_iter()
                .filter(|(k, _)| seen.insert(k.clone()))
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            format!("{{{}}}", kept.join(","))
        })
    }

    proptest! {
        /// The content hash's lines are the leaves' lines sorted as whole texts, however the sort gets there.
        #[test]
        fn content_hash_lines_are_sorted_as_whole_texts(body in json_text()) {
            let doc = read(&body).unwrap();
            let skip = ["b"];
            let mut lines: Vec<String> = doc
                .leaves_without(&skip)
                .map(|p| format!("{}={}{}:{}\n", doc.structural(p), p.kind.tag(), p.value.len(), p.value))
                .collect();
            lines.sort();
            prop_assert_eq!(doc.content_hash_input(&skip), lines.concat());
        }
    }

    #[test]
    fn a_leaf_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Pair<'_>>(), 48);
    }

    /// The content hash's encoding never changes: a record stored before an upgrade must match a retry of the
    /// same callback after it (else a retried delivery becomes a conflict, a retried quarantine a second id).
    #[test]
    fn the_content_hash_is_pinned() {
        let body = r#"{"b": {"y": [1, {"z": null}], "x": "v\u00e9", "long_key_10": 2}, "a": true, "salt": "s", "c": {}, "d": []}"#;
        let doc = read(body).unwrap();
        assert_eq!(
            doc.content_hash_input(&["salt"]),
            ".1:a=b4:true\n.1:b.11:long_key_10=n1:2\n.1:b.1:x=s3:v\u{e9}\n.1:b.1:y[0]=n1:1\n.1:b.1:y[1].1:z=z4:null\n.1:c=o2:{}\n.1:d=a2:[]\n"
        );
        assert_eq!(doc.content_hash(&["salt"]), "fe78d00514cb7ba253f24cce4fac548b7df5589d882cc6f974841ced3c6ea234");
    }

    fn leaves(body: &str) -> Vec<String> {
        let doc = read(body).unwrap();
        doc.pairs.iter().map(|p| doc.joined(p)).collect()
    }

    #[test]
    fn flattens_with_text_as_sent() {
        assert_eq!(
            leaves(r#"{"a": 10.50, "b": {"c": [1e2, "x\u0041", null, {}, []]}, "d": {}}"#),
            ["a=10.50", "b.c[0]=1e2", "b.c[1]=xA", "b.c[2]=null", "b.c[3]={}", "b.c[4]=[]", "d={}"]
        );
    }

    #[test]
    fn members_keep_their_raw_text() {
        let doc = read(r#"{"signature":"s","amount":10.50,"n":{"x":[1, 2]}}"#).unwrap();
        let members: Vec<(&str, &str)> = doc.members().collect();
        assert_eq!(members, [("signature", r#""s""#), ("amount", "10.50"), ("n", r#"{"x":[1, 2]}"#)]);
        assert_eq!(doc.object_without(&["signature"]), r#"{"amount":10.50,"n":{"x":[1, 2]}}"#);
        assert_eq!(doc.member_text("amount"), Some("10.50"));
        assert_eq!(doc.member_text("n"), None);
        // Nothing to drop: the body itself, whitespace and all.
        let spaced = r#" { "a" : 1 ,"b":[ ] } "#;
        assert!(matches!(read(spaced).unwrap().object_without(&["signature"]), Cow::Borrowed(b) if b == spaced));
        assert_eq!(
            read(r#"{"a" : 1, "signature":"s" ,"b":2}"#).unwrap().object_without(&["signature"]),
            r#"{"a" : 1,"b":2}"#
        );
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        for body in [r#"{"a": 1, "a": 2}"#, r#"{"p": {"x": 1, "y": [{"k": 1, "k": 2}]}}"#, r#"{"a\u0062": 1, "ab": 2}"#]
        {
            assert_eq!(read(body).unwrap_err().to_string().split(" at ").next(), Some("duplicate key"), "{body}");
        }
        // Past 16 keys an object's keys are sorted to be compared: repeats of every length, the empty key,
        // and keys alike in their first 16 bytes.
        let many: Vec<String> = (0..20).map(|i| format!("\"k{i}\": 1")).collect();
        for repeated in ["", "k7", "a_key_longer_than_sixteen_bytes"] {
            let body = format!("{{{}, \"{repeated}\": 1, \"x\": 2, \"{repeated}\": 3}}", many.join(", "));
            let refused = read(&body).unwrap_err().to_string();
            assert!(refused.starts_with("duplicate key"), "{repeated}: {refused}");
        }
        let alike = format!(
            "{{{}, \"a_key_longer_than_sixteen_bytes\": 1, \"a_key_longer_than_sixteen_bytez\": 2}}",
            many.join(", ")
        );
        assert!(read(&alike).is_ok());
    }

    #[test]
    fn depth_is_limited_while_reading() {
        let nested = |depth: usize| format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        assert!(read(&nested(MAX_DEPTH)).is_ok());
        assert_eq!(read(&nested(MAX_DEPTH + 1)).unwrap_err(), ReadError::TooDeep);
        let arrays = format!("{{\"signature\":\"00\",\"params\":{}{}}}", "[".repeat(20_000), "]".repeat(20_000));
        assert_eq!(read(&arrays).unwrap_err(), ReadError::TooDeep);
    }

    #[test]
    fn flattening_is_limited() {
        let wide = format!("{{\"a\":[{}1]}}", "1,".repeat(MAX_LEAVES));
        assert_eq!(read(&wide).unwrap_err(), ReadError::TooComplex);
        let fits = format!("{{\"a\":[{}1]}}", "1,".repeat(MAX_LEAVES - 1));
        assert_eq!(read(&fits).unwrap().pairs.len(), MAX_LEAVES);
        // A long key repeated as the path of many leaves.
        let long_key = format!("{{\"{}\":[{}1]}}", "k".repeat(60_000), "1,".repeat(100));
        assert_eq!(read(&long_key).unwrap_err(), ReadError::TooComplex);
    }

    #[test]
    fn malformed_input_is_refused() {
        for body in [
            r#"{"a": 1} x"#,
            "[1]",
            r#"{"a": 01}"#,
            r#"{"a": 1.}"#,
            r#"{"a": tru}"#,
            r#"{"a": "\udead"}"#,
            r#"{"a": "\ud800\u0041"}"#,
            "{\"a\": \"\u{1}\"}",
            r#"{"a": "x\q"}"#,
            r#"{"a" 1}"#,
            r#"{"a": 1,}"#,
            r#"{"a": [1 2]}"#,
            r#"{"a": "open"#,
            "",
        ] {
            assert!(read(body).is_err(), "{body:?} was accepted");
        }
        assert_eq!(leaves(r#"{"e": "\ud83d\ude00"}"#), ["e=😀"]);
    }

    #[test]
    fn content_hash_tells_apart_what_the_canonical_string_does_not() {
        let hash = |body: &str| read(body).unwrap().content_hash(&[]);
        assert_eq!(hash(r#"{"a": 1, "b": "x"}"#), hash(r#"{ "b":"x","a":1 }"#));
        assert_ne!(hash(r#"{"a.b": 1}"#), hash(r#"{"a": {"b": 1}}"#));
        assert_ne!(hash(r#"{"a": null}"#), hash(r#"{"a": "null"}"#));
        assert_ne!(hash(r#"{"a": "x&b=y"}"#), hash(r#"{"a": "x", "b": "y"}"#));
        assert_ne!(hash(r#"{"a": 1, "salt": "s"}"#), hash(r#"{"a": 1}"#));
        assert_eq!(read(r#"{"a": 1, "salt": "s"}"#).unwrap().content_hash(&["salt"]), hash(r#"{"a": 1}"#));
    }

    #[test]
    fn paths_kept_for_signing_are_the_paths_written_later() {
        for body in [
            r#"{"a": 1, "b": {"c": [1, {"d": null}, [], {}], "e.f": "x"}, "": {"": [true]}, "g\u0041": "y"}"#,
            r#"{"p": [[[1]], [[2, 3]]], "q": {"r": {"s": {"t": "u"}}}}"#,
        ] {
            let (kept, written) = (read_signed(body).unwrap(), read(body).unwrap());
            let paths = |doc: &Document<'_>| -> Vec<String> { doc.pairs.iter().map(|p| doc.joined(p)).collect() };
            assert_eq!(paths(&kept), paths(&written), "{body}");
        }
        assert_eq!(leaves(r#"{"p": [[[1]]], "gA": {"h.i": 2}}"#), ["p[0][0][0]=1", "gA.h.i=2"]);
    }

    #[test]
    fn fields_are_read_from_the_leaves() {
        let doc = read(
            r#"{"p": {"a": 1.50, "b": "x\u0041", "c": null, "d": {}, "e": [], "f": {"g": [true, {"h": 2}]}}, "q": 3}"#,
        )
        .unwrap();
        let p = doc.field("p").object().unwrap();
        let [a, b, c, d, e, f, z] = p.fields(["a", "b", "c", "d", "e", "f", "z"]);
        assert_eq!((a.text(), b.text()), (Some("1.50"), Some("xA")));
        assert!(matches!(c, Value::Null) && matches!(z, Value::Absent) && !z.is_present());
        assert_eq!(d.object().unwrap().children().count(), 0);
        assert_eq!(e.array().unwrap().items().count(), 0);
        let items: Vec<_> = f.object().unwrap().fields(["g"])[0].array().unwrap().items().collect();
        assert_eq!(items[0].text(), Some("true"));
        assert_eq!(items[1].object().unwrap().fields(["h"])[0].text(), Some("2"));
        assert_eq!(doc.field("q").text(), Some("3"));
        assert!(doc.field("p").text().is_none() && !doc.field("r").is_present());
        let keys: Vec<_> = p.children().map(|(step, _)| step).collect();
        assert_eq!(keys[..2], [Segment::Key("a"), Segment::Key("b")]);
    }
}
