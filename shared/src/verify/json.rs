//! The one reader of a callback body: a single linear pass with an explicit stack (no recursion that input
//! can drive) that checks the limits while it reads and yields everything later steps need.
//!
//! - **Limits**: nesting deeper than [`MAX_DEPTH`] is refused as it is met; strings must be valid JSON strings
//!   (no raw control characters, no lone surrogate escapes such as `\udead`).
//! - **One meaning**: a key repeated in any object is refused, so the verifier and the parser can never
//!   read different values.
//! - **Value text as sent**: numbers keep their digits; strings are unescaped once. Signatures (Choice,
//!   Niobi) are computed over this text, so numbers are never re-rendered through `f64`.
//! - **Output**: the top-level members (raw text), the flattened `path=value` pairs of the canonical string,
//!   an unambiguous content hash and whether the canonical string could be read another way.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use serde::de::{self, Deserializer};

use super::canonical::js_cmp;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

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

/// One leaf of the flattened body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair<'a> {
    /// The canonical path: `a.b` for nested keys, `a[i]` for array items.
    pub path: String,
    /// The value as the canonical string renders it: a string's content, a number's text as sent,
    /// `true`/`false`/`null`, `{}`/`[]` for empty containers.
    pub value: Cow<'a, str>,
    pub kind: Kind,
    /// The top-level key this leaf sits under.
    pub top: Cow<'a, str>,
    /// Where the value's text starts in the body (numbers: the value is that text).
    pub start: usize,
    /// The path written so that no two different paths look alike: each key length-prefixed.
    structural: String,
}

/// One step of a leaf's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment<'p> {
    Key(&'p str),
    Index(usize),
}

impl Pair<'_> {
    /// The path's steps, read back from its length-prefixed form.
    pub fn segments(&self) -> Vec<Segment<'_>> {
        let mut out = Vec::new();
        let mut rest = self.structural.as_str();
        while let Some(tag) = rest.chars().next() {
            rest = &rest[1..];
            if tag == '.' {
                let (len, tail) = rest.split_once(':').expect("a key step is `.len:key`");
                let len: usize = len.parse().expect("a key length");
                out.push(Segment::Key(&tail[..len]));
                rest = &tail[len..];
            } else {
                let (index, tail) = rest.split_once(']').expect("an index step is `[i]`");
                out.push(Segment::Index(index.parse().expect("an index")));
                rest = tail;
            }
        }
        out
    }

    /// `path=value`, the pair as the canonical string joins it.
    #[cfg(any(test, feature = "test-util"))]
    pub fn joined(&self) -> String {
        let mut s = String::with_capacity(self.path.len() + 1 + self.value.len());
        s.push_str(&self.path);
        s.push('=');
        s.push_str(&self.value);
        s
    }
}

/// A body that has been read: nothing later parses it again for structure.
#[derive(Debug)]
pub struct Document<'a> {
    pub text: &'a str,
    /// Top-level members in the order sent: (key, raw value text).
    pub members: Vec<(Cow<'a, str>, &'a str)>,
    /// Every leaf, in document order.
    pub pairs: Vec<Pair<'a>>,
    /// Why the canonical string (`path=value&...`) of this body could also be read as another body's, if
    /// it could: a key holding `&`, `=`, `.`, `[` or `]`, or a value holding `&` followed by `<key>=`.
    pub ambiguity: Option<String>,
    /// Bytes of `path=value` text so far.
    flattened: usize,
}

impl<'a> Document<'a> {
    /// A top-level member's raw value text.
    pub fn member(&self, name: &str) -> Option<&'a str> {
        self.members.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }

    /// A top-level scalar's text as the provider means it (`None` for null, objects and arrays).
    pub fn member_text(&self, name: &str) -> Option<Cow<'a, str>> {
        let leaf = self.pairs.iter().find(|p| p.top == name && p.path == name)?;
        matches!(leaf.kind, Kind::String | Kind::Number | Kind::Bool).then(|| leaf.value.clone())
    }

    /// The object re-assembled without the top-level keys in `drop`, values byte for byte as received.
    pub fn object_without(&self, drop: &[&str]) -> Box<RawValue> {
        let kept = self.members.iter().filter(|(k, _)| !drop.contains(&k.as_ref())).map(|(k, v)| (k.as_ref(), *v));
        RawValue::from_string(assemble(kept)).expect("re-assembled object is valid JSON")
    }

    /// The object with top-level `key` set to the JSON text `value` (replaced in place, or appended).
    #[cfg(any(test, feature = "test-util"))]
    pub fn object_with(&self, key: &str, value: &str) -> String {
        let present = self.members.iter().any(|(k, _)| k == key);
        let replaced = self.members.iter().map(|(k, v)| (k.as_ref(), if k == key { value } else { *v }));
        let appended = (!present).then_some((key, value));
        assemble(replaced.chain(appended))
    }

    /// SHA-256 (hex) of the body's content without the top-level keys in `skip`: every leaf as its
    /// length-prefixed path, type and length-prefixed value, sorted. Two bodies have the same hash only if
    /// they hold the same values at the same paths, whatever their key order or whitespace.
    pub fn content_hash(&self, skip: &[&str]) -> String {
        let mut leaves: Vec<String> = self
            .pairs
            .iter()
            .filter(|p| !skip.contains(&p.top.as_ref()))
            .map(|p| format!("{}={}{}:{}", p.structural, p.kind.tag(), p.value.len(), p.value))
            .collect();
        leaves.sort_unstable();
        let mut hasher = Sha256::new();
        for leaf in &leaves {
            hasher.update(leaf.as_bytes());
            hasher.update(b"\n");
        }
        hex::encode(hasher.finalize())
    }
}

enum Container {
    Object,
    Array,
}

/// One open object or array.
struct Frame<'a> {
    container: Container,
    /// Lengths of the path buffers when this container was opened.
    path_len: usize,
    structural_len: usize,
    /// Members or items read so far.
    count: usize,
    /// An object's keys, checked for repeats when it closes.
    keys: Vec<Cow<'a, str>>,
}

/// Read `text` as one JSON object.
pub fn read(text: &str) -> Result<Document<'_>, ReadError> {
    Reader { text, bytes: text.as_bytes(), pos: 0 }.document()
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn fail<T>(&self, what: &'static str) -> Result<T, ReadError> {
        Err(ReadError::Invalid { what, at: self.pos })
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), ReadError> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(what)
        }
    }

    fn document(mut self) -> Result<Document<'a>, ReadError> {
        let mut doc =
            Document { text: self.text, members: Vec::new(), pairs: Vec::new(), ambiguity: None, flattened: 0 };
        let flattened_limit = (MAX_FLATTENED_RATIO * self.text.len()).max(65_536);
        self.skip_ws();
        if self.peek() != Some(b'{') {
            return self.fail("expected a JSON object");
        }
        self.pos += 1;
        let mut stack =
            vec![Frame { container: Container::Object, path_len: 0, structural_len: 0, count: 0, keys: Vec::new() }];
        let mut path = String::new();
        let mut structural = String::new();
        // The top-level key whose value is being read, and where that value started.
        let mut top: Cow<'a, str> = Cow::Borrowed("");
        let mut top_start = 0;

        while let Some(frame) = stack.last_mut() {
            self.skip_ws();
            let closing = match frame.container {
                Container::Object => b'}',
                Container::Array => b']',
            };
            if self.peek() == Some(closing) {
                self.pos += 1;
                let frame = stack.pop().expect("a frame is open");
                check_unique(frame.keys, self.pos)?;
                if stack.is_empty() {
                    break;
                }
                if frame.count == 0 {
                    let kind = match frame.container {
                        Container::Object => Kind::EmptyObject,
                        Container::Array => Kind::EmptyArray,
                    };
                    let value = Cow::Borrowed(if kind == Kind::EmptyObject { "{}" } else { "[]" });
                    push_pair(&mut doc, &path, &structural, value, kind, &top);
                    if doc.pairs.len() > MAX_LEAVES || doc.flattened > flattened_limit {
                        return Err(ReadError::TooComplex);
                    }
                }
                path.truncate(frame.path_len);
                structural.truncate(frame.structural_len);
                if stack.len() == 1 {
                    doc.members.push((top.clone(), &self.text[top_start..self.pos]));
                }
                continue;
            }
            if frame.count > 0 {
                if self.peek() != Some(b',') {
                    return self.fail(if closing == b'}' { "expected `,` or `}`" } else { "expected `,` or `]`" });
                }
                self.pos += 1;
                self.skip_ws();
            }
            let parent_path = path.len();
            let parent_structural = structural.len();
            match frame.container {
                Container::Object => {
                    if self.peek() != Some(b'"') {
                        return self.fail("expected a key");
                    }
                    let key = self.string()?;
                    self.expect(b':', "expected `:`")?;
                    if stack.len() == 1 {
                        top = key.clone();
                        path.clear();
                    } else {
                        path.push('.');
                    }
                    path.push_str(&key);
                    let _ = write!(structural, ".{}:{}", key.len(), key);
                    if doc.ambiguity.is_none() && key.contains(['&', '=', '.', '[', ']']) {
                        doc.ambiguity = Some(format!("key `{key}` holds a separator"));
                    }
                    let frame = stack.last_mut().expect("a frame is open");
                    frame.keys.push(key);
                    frame.count += 1;
                }
                Container::Array => {
                    let _ = write!(path, "[{}]", frame.count);
                    let _ = write!(structural, "[{}]", frame.count);
                    frame.count += 1;
                }
            }
            self.skip_ws();
            let value_start = self.pos;
            if stack.len() == 1 {
                top_start = value_start;
            }
            match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(ReadError::TooDeep);
                    }
                    self.pos += 1;
                    stack.push(Frame {
                        container: if open == b'{' { Container::Object } else { Container::Array },
                        path_len: parent_path,
                        structural_len: parent_structural,
                        count: 0,
                        keys: Vec::new(),
                    });
                    continue;
                }
                Some(b'"') => {
                    let value = self.string()?;
                    if doc.ambiguity.is_none() && holds_a_pair(&path, &value) {
                        doc.ambiguity = Some(format!("value of `{path}` holds `&<key>=`"));
                    }
                    push_pair(&mut doc, &path, &structural, value, Kind::String, &top);
                }
                Some(b't') => self.literal("true", &mut doc, &path, &structural, Kind::Bool, &top)?,
                Some(b'f') => self.literal("false", &mut doc, &path, &structural, Kind::Bool, &top)?,
                Some(b'n') => self.literal("null", &mut doc, &path, &structural, Kind::Null, &top)?,
                Some(b'-' | b'0'..=b'9') => {
                    let number = self.number()?;
                    push_pair(&mut doc, &path, &structural, Cow::Borrowed(number), Kind::Number, &top);
                }
                _ => return self.fail("expected a value"),
            }
            if stack.len() == 1 {
                doc.members.push((top.clone(), &self.text[value_start..self.pos]));
            }
            if doc.pairs.len() > MAX_LEAVES || doc.flattened > flattened_limit {
                return Err(ReadError::TooComplex);
            }
            path.truncate(parent_path);
            structural.truncate(parent_structural);
        }
        self.skip_ws();
        if self.pos != self.bytes.len() {
            return self.fail("trailing characters after the object");
        }
        Ok(doc)
    }

    #[allow(clippy::ptr_arg)] // the Cow is cloned into the pair: borrowed stays borrowed
    fn literal(
        &mut self,
        word: &'static str,
        doc: &mut Document<'a>,
        path: &str,
        structural: &str,
        kind: Kind,
        top: &Cow<'a, str>,
    ) -> Result<(), ReadError> {
        if !self.bytes[self.pos..].starts_with(word.as_bytes()) {
            return self.fail("expected a value");
        }
        self.pos += word.len();
        push_pair(doc, path, structural, Cow::Borrowed(word), kind, top);
        Ok(())
    }

    /// A number's text, checked against JSON's grammar.
    fn number(&mut self) -> Result<&'a str, ReadError> {
        let start = self.pos;
        let digits = |r: &mut Self| {
            let from = r.pos;
            while let Some(b'0'..=b'9') = r.peek() {
                r.pos += 1;
            }
            r.pos - from
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return self.fail("invalid number"),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return self.fail("invalid number");
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return self.fail("invalid number");
            }
        }
        Ok(&self.text[start..self.pos])
    }

    /// A string's content (the reader is on its opening quote), unescaped; borrowed when it has no escape.
    fn string(&mut self) -> Result<Cow<'a, str>, ReadError> {
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek() {
                None => return self.fail("unterminated string"),
                Some(b'"') => {
                    let s = &self.text[start..self.pos];
                    self.pos += 1;
                    return Ok(Cow::Borrowed(s));
                }
                Some(b'\\') => break,
                Some(0..=0x1f) => return self.fail("control character in a string"),
                Some(_) => self.pos += 1,
            }
        }
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            match self.peek() {
                None => return self.fail("unterminated string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let c = self.unicode_escape()?;
                            out.push(c);
                            continue;
                        }
                        _ => return self.fail("invalid escape"),
                    };
                    self.pos += 1;
                    out.push(escaped);
                }
                Some(0..=0x1f) => return self.fail("control character in a string"),
                Some(_) => {
                    // Copy the run up to the next quote or backslash (UTF-8 boundaries are kept).
                    let from = self.pos;
                    while let Some(b) = self.peek() {
                        if b == b'"' || b == b'\\' || b < 0x20 {
                            break;
                        }
                        self.pos += 1;
                    }
                    out.push_str(&self.text[from..self.pos]);
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u16, ReadError> {
        let Some(digits) = self.text.get(self.pos..self.pos + 4) else { return self.fail("invalid \\u escape") };
        let Ok(value) = u16::from_str_radix(digits, 16) else { return self.fail("invalid \\u escape") };
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return self.fail("invalid \\u escape");
        }
        self.pos += 4;
        Ok(value)
    }

    /// The character of a `\uXXXX` escape (the reader is past `\u`); a surrogate must come as a pair.
    fn unicode_escape(&mut self) -> Result<char, ReadError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.bytes[self.pos..].starts_with(b"\\u") {
                    return self.fail("lone surrogate escape");
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return self.fail("lone surrogate escape");
                }
                0x10000 + ((u32::from(first) - 0xD800) << 10) + (u32::from(second) - 0xDC00)
            }
            0xDC00..=0xDFFF => return self.fail("lone surrogate escape"),
            other => u32::from(other),
        };
        char::from_u32(code).map_or_else(|| self.fail("invalid \\u escape"), Ok)
    }
}

/// `{"key":value,...}` from keys and raw value texts.
fn assemble<'m>(members: impl Iterator<Item = (&'m str, &'m str)>) -> String {
    let mut out = String::from("{");
    for (key, value) in members {
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(key).expect("a string always serialises"));
        out.push(':');
        out.push_str(value);
    }
    out.push('}');
    out
}

#[allow(clippy::ptr_arg)] // the Cow is cloned into the pair: borrowed stays borrowed
fn push_pair<'a>(
    doc: &mut Document<'a>,
    path: &str,
    structural: &str,
    value: Cow<'a, str>,
    kind: Kind,
    top: &Cow<'a, str>,
) {
    doc.flattened += path.len() + 1 + value.len();
    let start = match (&value, kind) {
        (Cow::Borrowed(text), Kind::Number) => text.as_ptr() as usize - doc.text.as_ptr() as usize,
        _ => 0,
    };
    doc.pairs.push(Pair {
        path: path.to_owned(),
        value,
        kind,
        top: top.clone(),
        start,
        structural: structural.to_owned(),
    });
}

/// Refuse an object whose keys repeat.
fn check_unique(mut keys: Vec<Cow<'_, str>>, at: usize) -> Result<(), ReadError> {
    if keys.len() < 2 {
        return Ok(());
    }
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(ReadError::Invalid { what: "duplicate key", at });
    }
    Ok(())
}

/// Whether the string value at `path` could be split into more pairs by a body carrying the same signed
/// string: it holds `&` followed by `<key>=` (before the next `&`), where that pair would sort after what
/// precedes it, in string order or in key order (a split pair that sorts before its neighbour changes the
/// signed string, so it is no forgery: `"remark": "a/b & c=d"` is not ambiguous). A merged value (`"R1&salt=abc"`)
/// always is: its pairs were sorted in the genuine body.
fn holds_a_pair(path: &str, value: &str) -> bool {
    let mut segments = value.split('&');
    let first = segments.next().unwrap_or_default();
    let mut before = vec![format!("{path}={first}")];
    for segment in segments {
        if let Some((key, _)) = segment.split_once('=') {
            let after = |earlier: &String| {
                let earlier_key = earlier.split_once('=').map_or(earlier.as_str(), |(k, _)| k);
                js_cmp(segment, earlier).is_gt() || js_cmp(key, earlier_key).is_gt()
            };
            if before.iter().any(after) {
                return true;
            }
        }
        let last = before.last_mut().expect("one pair at least");
        last.push('&');
        last.push_str(segment);
        before.push(segment.to_owned());
    }
    false
}

/// A string or number field kept as the provider's text (amounts, ids, status codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <&RawValue>::deserialize(deserializer)?;
        scalar_text(raw.get()).map(Text).ok_or_else(|| de::Error::custom(NotScalar))
    }
}

struct NotScalar;

impl fmt::Display for NotScalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected a string or number")
    }
}

impl Text {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The text of a scalar's raw JSON as a provider means it: a string's content, a number's digits as sent,
/// `true`/`false`. `None` for `null`, objects and arrays.
fn scalar_text(raw: &str) -> Option<String> {
    match raw.as_bytes().first()? {
        b'"' => serde_json::from_str::<String>(raw).ok(),
        b'{' | b'[' | b'n' => None,
        _ => Some(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(body: &str) -> Vec<String> {
        read(body).unwrap().pairs.iter().map(Pair::joined).collect()
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
        let members: Vec<(&str, &str)> = doc.members.iter().map(|(k, v)| (k.as_ref(), *v)).collect();
        assert_eq!(members, [("signature", r#""s""#), ("amount", "10.50"), ("n", r#"{"x":[1, 2]}"#)]);
        assert_eq!(doc.object_without(&["signature"]).get(), r#"{"amount":10.50,"n":{"x":[1, 2]}}"#);
        assert_eq!(doc.member_text("amount").as_deref(), Some("10.50"));
        assert_eq!(doc.member_text("n"), None);
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        for body in [r#"{"a": 1, "a": 2}"#, r#"{"p": {"x": 1, "y": [{"k": 1, "k": 2}]}}"#, r#"{"a\u0062": 1, "ab": 2}"#]
        {
            assert_eq!(read(body).unwrap_err().to_string().split(" at ").next(), Some("duplicate key"), "{body}");
        }
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
    fn ambiguity_is_found() {
        for body in [
            r#"{"requestId": "R1&salt=abc"}"#,
            r#"{"a.b": 1}"#,
            r#"{"p": {"x=y": 1}}"#,
            r#"{"p": {"x[0]": 1}}"#,
            r#"{"p": ["a&b&c=d"]}"#,
        ] {
            assert!(read(body).unwrap().ambiguity.is_some(), "{body}");
        }
        for body in
            [r#"{"name": "Tom & Jerry"}"#, r#"{"q": "a=b"}"#, r#"{"a": {"b": 1}}"#, r#"{"p": {"remark": "a/b & c=d"}}"#]
        {
            assert_eq!(read(body).unwrap().ambiguity, None, "{body}");
        }
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
