//! The canonical string: a body's leaves as sorted `path=value` pairs with the secret among them, and where it
//! could be read as another body's (its second readings). Choice Bank BaaS and Niobi sign it.
//!
//! Choice's Postman pre-request script (transcribed in providers.md) deletes `signature`, flattens the body
//! (`a.b` for nested keys, `a[i]` for array items, `a={}` / `a=[]` for empty containers), pushes
//! `senderKey=<private key>`, sorts the `key=value` strings with JavaScript's `Array.prototype.sort`
//! (UTF-16 code-unit order over the whole string) and joins them with `&`. Niobi documents the same steps.
//! Values are the text as sent: a number's digits are never re-rendered, `null` renders as `null`
//! (JavaScript string concatenation). The flattening itself is done by the reader ([`super::json`]).

use std::borrow::Cow;
use std::cmp::Ordering;

use strum::{EnumCount, VariantArray};

use super::json::{any_byte_is, segment, segment_len, shown, word, write_canonical, Document, Kind, Pair, Segment};
use super::number;

/// The field a signer adds with its secret before sorting.
pub const SENDER_KEY: &str = "senderKey";
/// The body field that carries the signature; never part of what is signed.
pub const SIGNATURE_FIELD: &str = "signature";

/// One complete way of turning a body into the string to sign. Neither Choice nor Niobi publishes which one
/// its servers use, so each callback is verified with the first that matches, in the configured order
/// (`CANONICAL_DIALECTS`). A dialect changes only how the same leaves are written and ordered, never which
/// leaves are signed.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
    strum::EnumCount,
)]
#[strum(serialize_all = "lowercase")]
pub enum Dialect {
    /// Choice's Postman script: value text as sent, `null` and `{}`/`[]` written out, whole `key=value`
    /// strings sorted in JavaScript (UTF-16) order.
    Postman,
    /// The same steps on a parsed body in JavaScript: numbers as `String(n)` (`100.50` is `100.5`).
    JavaScript,
    /// The same steps with Java/Jackson number text (`100.50` is `100.5`, `1e2` is `100.0`).
    Jackson,
    /// Value text as sent, with `null` values and empty objects left out.
    Compact,
    /// A Java signer (an integrator's `ChoiceBankSignatureUtil`): Jackson number text, `null` values and empty
    /// objects left out, keys in `TreeMap` order at every level.
    Java,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Numbers {
    AsSent,
    JavaScript,
    Jackson,
}

impl Dialect {
    pub const ALL: [Dialect; Self::COUNT] = *Self::VARIANTS.first_chunk().expect("one entry per variant");

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.trim().parse().ok()
    }

    fn numbers(self) -> Numbers {
        match self {
            Dialect::Postman | Dialect::Compact => Numbers::AsSent,
            Dialect::JavaScript => Numbers::JavaScript,
            Dialect::Jackson | Dialect::Java => Numbers::Jackson,
        }
    }

    fn omits_nulls_and_empty_objects(self) -> bool {
        matches!(self, Dialect::Compact | Dialect::Java)
    }

    /// Whether this dialect writes a leaf of this kind into the signed string: `Compact` and `Java` leave out
    /// `null` and `{}`, so a signature in them vouches for nothing about those members (they are read as
    /// absent).
    pub fn signs(self, kind: Kind) -> bool {
        !(matches!(kind, Kind::Null | Kind::EmptyObject) && self.omits_nulls_and_empty_objects())
    }

    fn sorts_keys(self) -> bool {
        self == Dialect::Java
    }

    /// Whether this dialect writes numbers other than as sent: then the body is normalised from the numbers
    /// as signed, so that another spelling of the same number can never make another id.
    pub fn renders_numbers(self) -> bool {
        self.numbers() != Numbers::AsSent
    }

    /// Whether this dialect may write `doc` other than the Postman dialect does (if not, trying it again
    /// would only repeat the same hashes). Cheap: no string is built for numbers written as sent.
    pub fn differs_from_postman(self, doc: &Document<'_>) -> bool {
        self.sorts_keys()
            || doc.pairs.iter().any(|p| match p.kind {
                Kind::Null | Kind::EmptyObject => self.omits_nulls_and_empty_objects(),
                Kind::Number => self.renders_numbers() && self.number(&p.value).as_deref() != Some(&*p.value),
                _ => false,
            })
    }

    /// A number as this dialect writes it; `None` if the written form would not be exactly the same number
    /// (a signature over it would then cover other numbers too, so the dialect does not apply).
    pub fn number(self, text: &str) -> Option<Cow<'_, str>> {
        let written = match self.numbers() {
            Numbers::AsSent => return Some(Cow::Borrowed(text)),
            Numbers::JavaScript => number::javascript(text)?,
            Numbers::Jackson => number::jackson(text)?,
        };
        (number::exact(text)? == number::exact(&written)?).then_some(Cow::Owned(written))
    }
}

/// The body with every number written as `dialect` writes it (the text that dialect signed), everything
/// else byte for byte. `None` if the dialect cannot write one of its numbers exactly.
pub fn with_numbers_as(doc: &Document<'_>, dialect: Dialect) -> Option<String> {
    let mut out = String::with_capacity(doc.text.len());
    let mut copied = 0;
    for pair in doc.pairs.iter().filter(|p| p.kind == Kind::Number) {
        out.push_str(&doc.text[copied..pair.start]);
        out.push_str(&dialect.number(&pair.value)?);
        copied = pair.start + pair.value.len();
    }
    out.push_str(&doc.text[copied..]);
    Some(out)
}

/// The flattened `key=value` strings of a body in one dialect's order, without `signature`: written once
/// into one buffer, ordered as spans of it.
#[derive(Debug, Clone)]
pub struct CanonicalPairs {
    text: String,
    /// Each pair's `(start, end)` in `text`, in signing order.
    spans: Vec<(usize, usize)>,
    /// For key order: where `senderKey` goes among the pairs (by top-level key); `None` for string order.
    sender_key_at: Option<usize>,
}

impl PartialEq for CanonicalPairs {
    fn eq(&self, other: &Self) -> bool {
        self.sender_key_at == other.sender_key_at && self.pairs().eq(other.pairs())
    }
}

impl CanonicalPairs {
    /// The pairs of `doc` in the Postman dialect (leaving out top-level `signature`).
    #[cfg(any(test, feature = "test-util"))]
    pub fn of(doc: &Document<'_>) -> Self {
        Self::in_dialect(doc, Dialect::Postman).expect("the Postman dialect writes every body")
    }

    /// The pairs of `doc` in `dialect`; `None` if the dialect cannot write this body exactly.
    pub fn in_dialect(doc: &Document<'_>, dialect: Dialect) -> Option<Self> {
        // Room for every path (the paths buffer holds each one, or a longer structural form) and value as sent;
        // only a dialect that writes a number longer than sent can outgrow it.
        let mut text = String::with_capacity(doc.paths_len() + doc.text.len() + doc.pairs.len());
        let mut leaves: Vec<(&Pair<'_>, (usize, usize))> = Vec::with_capacity(doc.pairs.len());
        for pair in doc.leaves_without(&[SIGNATURE_FIELD]) {
            let start = text.len();
            doc.write_path(pair, &mut text);
            text.push('=');
            match pair.kind {
                kind if !dialect.signs(kind) => {
                    text.truncate(start);
                    continue;
                }
                Kind::Number => text.push_str(&dialect.number(&pair.value)?),
                _ => text.push_str(&pair.value),
            }
            leaves.push((pair, (start, text.len())));
        }
        let (spans, sender_key_at) = if dialect.sorts_keys() {
            let mut keyed: Vec<_> = leaves.into_iter().map(|(p, span)| (doc.segments(p), span)).collect();
            keyed.sort_by(|(a, _), (b, _)| key_order(a, b));
            // `senderKey` goes among the top-level keys: a path's first step.
            let top = |segments: &[Segment<'_>]| match segments.first() {
                Some(Segment::Key(key)) => js_cmp(key, SENDER_KEY) != Ordering::Greater,
                _ => true,
            };
            let at = keyed.partition_point(|(segments, _)| top(segments));
            (keyed.into_iter().map(|(_, span)| span).collect(), Some(at))
        } else {
            let mut spans: Vec<(usize, usize)> = leaves.into_iter().map(|(_, span)| span).collect();
            let bytes = text.as_bytes();
            if text.is_ascii() || bytes.iter().all(|&b| b < 0xEE) {
                // Byte order is UTF-16 order when no character is at or above U+E000.
                let mut keyed: Vec<(u128, (usize, usize))> =
                    spans.iter().map(|&(start, end)| (super::prefix_key(&bytes[start..end]), (start, end))).collect();
                keyed.sort_unstable_by(|(ka, a), (kb, b)| {
                    ka.cmp(kb).then_with(|| bytes[a.0..a.1].cmp(&bytes[b.0..b.1]))
                });
                spans = keyed.into_iter().map(|(_, span)| span).collect();
            } else {
                spans.sort_unstable_by(|a, b| js_cmp(&text[a.0..a.1], &text[b.0..b.1]));
            }
            (spans, None)
        };
        Some(Self { text, spans, sender_key_at })
    }

    fn pairs(&self) -> impl Iterator<Item = &str> + '_ {
        self.spans.iter().map(|&(start, end)| &self.text[start..end])
    }

    /// The pairs alone, joined with `&`.
    #[cfg(any(test, feature = "test-util"))]
    pub fn joined(&self) -> String {
        self.pairs().collect::<Vec<_>>().join("&")
    }

    /// The parts of the string to sign, in order: these pairs with `sender_key` (`senderKey=<secret>`) in
    /// its place. Joined with `&` they are the string.
    pub fn parts_to_sign<'s>(&'s self, sender_key: &'s str) -> impl Iterator<Item = &'s str> {
        let at = self.sender_key_at.unwrap_or_else(|| {
            self.spans.partition_point(|&(start, end)| js_cmp(&self.text[start..end], sender_key) != Ordering::Greater)
        });
        self.pairs().take(at).chain(std::iter::once(sender_key)).chain(self.pairs().skip(at))
    }

    /// The string to sign: these pairs plus `senderKey=<secret>` in its place, joined with `&`.
    pub fn string_to_sign(&self, secret: &str) -> String {
        let sender_key = format!("{SENDER_KEY}={secret}");
        let mut out = String::with_capacity(self.text.len() + sender_key.len() + self.spans.len());
        for (i, part) in self.parts_to_sign(&sender_key).enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(part);
        }
        out
    }
}

/// A place where a signed body's canonical string reads as another body's in the dialect that verified it:
/// what is there cannot be believed, since a body with the same signature says something else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ambiguity {
    /// The canonical path of the key or value.
    pub path: String,
    /// Every path the other reading may write: the value's own and each key a piece of a split could have.
    pub reach: Vec<String>,
    /// For the quarantine: what is ambiguous.
    pub why: String,
}

/// The most `&` a value is split at before it is taken as ambiguous without looking further (the search is
/// cubic in them; a genuine value with more is as good as certain to be a list of pairs).
const MAX_SPLITS: usize = 32;

/// Where the sender's secret goes among the pairs (its value is unknown here).
const SENDER_SLOT: &str = "senderKey=";

/// A place where a body read for a signature might have a second reading.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Suspect {
    /// The canonical path of the key or value.
    path: String,
    kind: SuspectKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SuspectKind {
    /// A key holds a separator: another nesting writes the same pairs.
    KeySeparator,
    /// A string value holds `&` and then `=`: the leaf whose value starts at this byte of the body.
    PairInValue { start: usize },
}

/// Where `doc`'s canonical string might be read as another body's: every key that holds a separator, and
/// every string value holding `&` with a `=` after it, in document order. One walk of the leaves: a key is
/// looked at once, at the first leaf under it.
fn suspects(doc: &Document<'_>) -> Vec<Suspect> {
    let mut found = Vec::new();
    let mut previous = "";
    for pair in &doc.pairs {
        let path = doc.structural(pair);
        let mut end = 0;
        while end < path.len() {
            let start = end;
            end += segment_len(&path[start..]);
            // A step the previous leaf shares (the same bytes up to it: the lengths make that the same steps).
            if previous.as_bytes().get(..end) == Some(&path.as_bytes()[..end]) {
                continue;
            }
            if let Segment::Key(key) = segment(&path[start..end]) {
                if holds_separator(key) {
                    let mut canonical = String::new();
                    write_canonical(&path[..end], &mut canonical);
                    found.push(Suspect { path: canonical, kind: SuspectKind::KeySeparator });
                }
            }
        }
        if pair.kind == Kind::String && pair.value.split_once('&').is_some_and(|(_, after)| after.contains('=')) {
            let mut canonical = String::new();
            doc.write_path(pair, &mut canonical);
            found.push(Suspect { path: canonical, kind: SuspectKind::PairInValue { start: pair.start } });
        }
        previous = path;
    }
    found
}

/// Whether a key holds a character the canonical string uses as a separator: `&`, `=`, `.`, `[` or `]`.
/// Eight bytes at a time, as every key of every body is checked.
pub(super) fn holds_separator(key: &str) -> bool {
    const SEPARATORS: [u8; 5] = [b'&', b'=', b'.', b'[', b']'];
    let mut chunks = key.as_bytes().chunks_exact(8);
    let in_chunk = |chunk: &[u8]| SEPARATORS.iter().any(|&c| any_byte_is(word(chunk), c));
    chunks.any(in_chunk) || chunks.remainder().iter().any(|c| SEPARATORS.contains(c))
}

/// The real second readings of `doc`'s canonical string in `dialect`: every key that holds a separator (another
/// nesting writes the same pairs), and every string value holding `&<key>=` that can be split into pairs which
/// sort exactly where the value stood, so that the split body signs the same string. A value whose splits all
/// sort elsewhere (`"name": "Duka&zz=1"`, whose `zz=1` would sort after `timestamp`) has no second reading.
pub fn second_readings(doc: &Document<'_>, dialect: Dialect) -> Vec<Ambiguity> {
    let suspects = suspects(doc);
    if suspects.is_empty() {
        return Vec::new();
    }
    let pairs = CanonicalPairs::in_dialect(doc, dialect);
    // The string to sign as its parts, the sender's where its unknown secret would sort.
    let parts: Vec<&str> = pairs.as_ref().map(|p| p.parts_to_sign(SENDER_SLOT).collect()).unwrap_or_default();
    let mut found = Vec::new();
    for suspect in &suspects {
        let start = match suspect.kind {
            SuspectKind::KeySeparator => {
                let why = format!("key `{}` holds a separator", shown(&suspect.path));
                found.push(Ambiguity { path: suspect.path.clone(), reach: vec![suspect.path.clone()], why });
                continue;
            }
            SuspectKind::PairInValue { start } => start,
        };
        // Gone with what the dialect left unsigned, or not a string: nothing to split.
        let Some(leaf) = doc.pairs.iter().find(|p| p.start == start && p.kind == Kind::String) else { continue };
        let value = &leaf.value;
        let text = format!("{}={value}", suspect.path);
        let around = around(&parts, &text);
        let real = match around {
            Some((before, after)) => splits_in_place(&suspect.path, value, before, after, dialect.sorts_keys()),
            // The dialect cannot write the body, or the pair is not where it should be: take no chance.
            None => true,
        };
        if real {
            // Every key a piece could have: from after each `&` to the first `=` after it (across later `&`).
            let mut reach = vec![suspect.path.clone()];
            let keys = value.match_indices('&').filter_map(|(at, _)| value[at + 1..].split_once('=').map(|(k, _)| k));
            reach.extend(keys.map(str::to_owned));
            let why = format!("value of `{}` holds `&<key>=` that reads as more pairs", shown(&suspect.path));
            found.push(Ambiguity { path: suspect.path.clone(), reach, why });
        }
    }
    found
}

/// A neighbour of a pair in the string to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Neighbour<'s> {
    /// The pair is first (before) or last (after).
    None,
    /// `senderKey=<secret>`, whose secret is not known here.
    Sender,
    Pair(&'s str),
}

/// What stands before and after the pair whose text is `pair` among `parts` (the string to sign, with
/// [`SENDER_SLOT`] for the sender's pair).
fn around<'s>(parts: &[&'s str], pair: &str) -> Option<(Neighbour<'s>, Neighbour<'s>)> {
    let is_sender = |part: &str| std::ptr::eq(part, SENDER_SLOT);
    let at = parts.iter().position(|part| !is_sender(part) && *part == pair)?;
    let neighbour = |i: Option<usize>| match i.and_then(|i| parts.get(i)) {
        None => Neighbour::None,
        Some(part) if is_sender(part) => Neighbour::Sender,
        Some(part) => Neighbour::Pair(part),
    };
    Some((neighbour(at.checked_sub(1)), neighbour(Some(at + 1))))
}

/// Whether `value` (at `path`) can be split at some of its `&` into pieces `path=v1`, `k2=v2`, ... that sort
/// in that order between `before` and `after`: then a body holding those pairs signs the same string. In
/// string order whole pieces are compared; in key order (`sorts_keys`) the pieces' paths, each new key after
/// the one before it. A search over the chains of pieces, cubic in the number of `&`.
fn splits_in_place(path: &str, value: &str, before: Neighbour<'_>, after: Neighbour<'_>, sorts_keys: bool) -> bool {
    let amps: Vec<usize> = value.match_indices('&').map(|(i, _)| i).collect();
    if amps.len() > MAX_SPLITS {
        return true;
    }
    let m = amps.len();
    // A piece runs from a start (`None`: the value's start, with `path=` before it; `Some(i)`: after the i-th
    // `&`) to an end (the j-th `&`, or `m`: the value's end).
    let piece = |from: Option<usize>, to: usize| -> Cow<'_, str> {
        let end = if to == m { value.len() } else { amps[to] };
        match from {
            None => Cow::Owned(format!("{path}={}", &value[..end])),
            Some(i) => Cow::Borrowed(&value[amps[i] + 1..end]),
        }
    };
    // Whether `a` may stand right before `b` in a sorted string to sign.
    let in_order = |a: &str, b: &str| {
        if sorts_keys {
            key_order(&path_segments(key_of(a)), &path_segments(key_of(b))) == Ordering::Less
        } else {
            js_cmp(a, b) != Ordering::Greater
        }
    };
    let after_before = |first: &str| match before {
        Neighbour::None => true,
        // Key order: the first piece keeps the value's path, so its place among the keys.
        _ if sorts_keys => true,
        Neighbour::Sender => js_cmp(first, SENDER_SLOT) != Ordering::Less,
        Neighbour::Pair(a) => js_cmp(a, first) != Ordering::Greater,
    };
    let before_after = |last: &str| match after {
        Neighbour::None => true,
        Neighbour::Sender if sorts_keys => {
            let top = path_segments(key_of(last));
            matches!(top.first(), Some(Segment::Key(k)) if js_cmp(k, SENDER_KEY) != Ordering::Greater)
        }
        Neighbour::Sender => js_cmp(last, SENDER_SLOT) != Ordering::Greater || last.starts_with(SENDER_SLOT),
        Neighbour::Pair(b) => in_order(last, b),
    };
    // reach[i][j]: a chain of pieces satisfying the order so far can end with the piece from after the i-th
    // `&` to the j-th (`first[j]`: the first piece, ending at the j-th `&`).
    let first: Vec<bool> = (0..m).map(|j| after_before(&piece(None, j))).collect();
    let mut reach = vec![vec![false; m + 1]; m];
    for i in 0..m {
        for j in i + 1..=m {
            let this = piece(Some(i), j);
            if !this.contains('=') {
                continue;
            }
            let follows_first = first[i] && in_order(&piece(None, i), &this);
            let follows_other = (0..i).any(|h| reach[h][i] && in_order(&piece(Some(h), i), &this));
            reach[i][j] = follows_first || follows_other;
        }
    }
    (0..m).any(|i| reach[i][m] && before_after(&piece(Some(i), m)))
}

/// The text before a pair's first `=`: its path.
fn key_of(pair: &str) -> &str {
    pair.split_once('=').map_or(pair, |(key, _)| key)
}

/// A canonical path's steps: keys split at `.`, `[n]` an index.
fn path_segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() || rest.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some((index, next)) = rest.split_once(']') {
            out.push(index.parse().map_or(Segment::Key(index), Segment::Index));
            rest = next.strip_prefix('[').unwrap_or(next);
        }
    }
    out
}

/// JavaScript's default sort order: UTF-16 code units. UTF-8 byte order is the same except between a
/// character in U+E000..U+FFFF (lead byte 0xEE/0xEF) and one above U+FFFF (lead byte 0xF0..0xF4, a surrogate
/// pair in UTF-16, which sorts first); so compare bytes and fix that one case, without allocating.
pub(crate) fn js_cmp(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    // Skip the common prefix eight bytes at a time (pairs share `params.` and more).
    let words = x.chunks_exact(8).zip(y.chunks_exact(8)).take_while(|(p, q)| p == q).count() * 8;
    let Some(at) = x[words..].iter().zip(&y[words..]).position(|(p, q)| p != q).map(|i| words + i) else {
        return x.len().cmp(&y.len());
    };
    let (p, q) = (x[at], y[at]);
    let high_bmp = |byte: u8| (0xEE..=0xEF).contains(&byte);
    let astral = |byte: u8| byte >= 0xF0;
    if (high_bmp(p) && astral(q)) || (astral(p) && high_bmp(q)) {
        q.cmp(&p)
    } else {
        p.cmp(&q)
    }
}

/// `TreeMap` order over paths: keys by UTF-16 code units at each level, array items by index.
fn key_order(a: &[Segment<'_>], b: &[Segment<'_>]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let ord = match (x, y) {
            (Segment::Key(x), Segment::Key(y)) => js_cmp(x, y),
            (Segment::Index(x), Segment::Index(y)) => x.cmp(y),
            (Segment::Key(_), Segment::Index(_)) => Ordering::Less,
            (Segment::Index(_), Segment::Key(_)) => Ordering::Greater,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspects_are_found_in_keys_and_values_in_document_order() {
        for (body, want) in [
            (r#"{"requestId": "R1&salt=abc"}"#, vec![("requestId", false)]),
            (r#"{"a.b": 1}"#, vec![("a.b", true)]),
            (r#"{"p": {"x=y": 1}}"#, vec![("p.x=y", true)]),
            (r#"{"p": {"x[0]": 1}}"#, vec![("p.x[0]", true)]),
            (r#"{"p": ["a&b&c=d"]}"#, vec![("p[0]", false)]),
            (r#"{"name": "Tom & Jerry", "q": "a=b", "r": "a=b&c"}"#, vec![]),
            // A key is named once, before the values under it; one sharing a prefix with a key before it too.
            (
                r#"{"a.b": {"c": "x&y=1", "d=": [1, 2]}, "a.bc": 1}"#,
                vec![("a.b", true), ("a.b.c", false), ("a.b.d=", true), ("a.bc", true)],
            ),
            (r#"{"p": {"x": 1, "y&": {"z": 2}}}"#, vec![("p.y&", true)]),
        ] {
            let found: Vec<(String, bool)> = suspects(&json::read_signed(body).unwrap())
                .into_iter()
                .map(|s| (s.path, s.kind == SuspectKind::KeySeparator))
                .collect();
            let want: Vec<(String, bool)> = want.into_iter().map(|(p, k)| (p.to_owned(), k)).collect();
            assert_eq!(found, want, "{body}");
            let unsigned: Vec<(String, bool)> = suspects(&json::read(body).unwrap())
                .into_iter()
                .map(|s| (s.path, s.kind == SuspectKind::KeySeparator))
                .collect();
            assert_eq!(unsigned, want, "the same from the structural paths: {body}");
        }
    }

    proptest::proptest! {
        #[test]
        fn separators_are_found_eight_bytes_at_a_time_as_one_at_a_time(key in "[a-z.&=\\[\\]\u{80}-\u{10FFFF}]{0,40}") {
            let naive = key.bytes().any(|c| matches!(c, b'&' | b'=' | b'.' | b'[' | b']'));
            proptest::prop_assert_eq!(holds_separator(&key), naive);
        }
    }
    use crate::verify::json;
    use proptest::prelude::*;

    fn pairs(body: &str) -> CanonicalPairs {
        CanonicalPairs::of(&json::read(body).unwrap())
    }

    fn in_dialect(body: &str, dialect: Dialect) -> Option<String> {
        CanonicalPairs::in_dialect(&json::read(body).unwrap(), dialect).map(|p| p.string_to_sign("k"))
    }

    #[test]
    fn numbers_in_each_dialect() {
        let js = |t: &str| Dialect::JavaScript.number(t).map(Cow::into_owned);
        let java = |t: &str| Dialect::Jackson.number(t).map(Cow::into_owned);
        for (sent, want) in [
            ("100.50", "100.5"),
            ("10.00", "10"),
            ("1e2", "100"),
            ("8", "8"),
            ("-0", "0"),
            ("0.000001", "0.000001"),
            ("1e-7", "1e-7"),
            ("1e21", "1e+21"),
            ("123e18", "123000000000000000000"),
            ("123e20", "1.23e+22"),
        ] {
            assert_eq!(js(sent).as_deref(), Some(want), "js {sent}");
        }
        for (sent, want) in [
            ("100.50", "100.5"),
            ("10.00", "10.0"),
            ("1e2", "100.0"),
            ("8", "8"),
            ("0.001", "0.001"),
            ("0.0001", "1.0E-4"),
            ("12345678.9", "1.23456789E7"),
            ("-2.50", "-2.5"),
        ] {
            assert_eq!(java(sent).as_deref(), Some(want), "java {sent}");
        }
        // A number the written form would not carry exactly: the dialect cannot vouch for it.
        assert_eq!(js("12345678901234567890"), None);
        assert_eq!(java("0.1000000000000000055511151231257827"), None);
        assert_eq!(Dialect::Postman.number("1.50").as_deref(), Some("1.50"));
    }

    #[test]
    fn dialects_write_the_same_leaves_differently() {
        let body = r#"{"b":{"x":null,"e":{},"l":[],"amount":100.50},"amount2":"2","amount":"1"}"#;
        assert_eq!(
            in_dialect(body, Dialect::Postman).unwrap(),
            "amount2=2&amount=1&b.amount=100.50&b.e={}&b.l=[]&b.x=null&senderKey=k"
        );
        assert_eq!(
            in_dialect(body, Dialect::JavaScript).unwrap(),
            "amount2=2&amount=1&b.amount=100.5&b.e={}&b.l=[]&b.x=null&senderKey=k"
        );
        assert_eq!(
            in_dialect(body, Dialect::Compact).unwrap(),
            "amount2=2&amount=1&b.amount=100.50&b.l=[]&senderKey=k"
        );
        // TreeMap order: `amount` before `amount2` (a key sort), `senderKey` among the top-level keys.
        assert_eq!(in_dialect(body, Dialect::Java).unwrap(), "amount=1&amount2=2&b.amount=100.5&b.l=[]&senderKey=k");
        let big = r#"{"amount":12345678901234567890}"#;
        assert_eq!(in_dialect(big, Dialect::JavaScript), None);
        assert!(in_dialect(big, Dialect::Postman).is_some());
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

    proptest! {
        #[test]
        fn js_order_is_utf16_order(a in "\\PC{0,6}", b in "\\PC{0,6}", common in "[a-z\u{E000}-\u{FFFF}\u{1F600}]{0,3}") {
            let (a, b) = (format!("{common}{a}"), format!("{common}{b}"));
            prop_assert_eq!(js_cmp(&a, &b), a.encode_utf16().cmp(b.encode_utf16()));
        }
    }

    /// Whether some split of the value pair `pair` at its `&` (each piece after the first a `key=value`)
    /// reproduces `parts` (sorted, with the sender's pair) once sorted again: the plain way, every subset.
    fn a_split_reproduces(parts: &[String], pair: &str) -> bool {
        let (path, value) = pair.split_once('=').unwrap();
        let amps: Vec<usize> = value.match_indices('&').map(|(i, _)| i).collect();
        (1..1u32 << amps.len()).any(|subset| {
            let cuts: Vec<usize> = (0..amps.len()).filter(|i| subset & (1 << i) != 0).map(|i| amps[i]).collect();
            let mut pieces = Vec::new();
            let mut from = 0;
            for &cut in &cuts {
                pieces.push(value[from..cut].to_owned());
                from = cut + 1;
            }
            pieces.push(value[from..].to_owned());
            if pieces[1..].iter().any(|p| !p.contains('=')) {
                return false;
            }
            pieces[0] = format!("{path}={}", pieces[0]);
            let mut split: Vec<String> = parts.iter().filter(|p| *p != pair).cloned().chain(pieces).collect();
            split.sort_by(|a, b| js_cmp(a, b));
            split.join("&") == parts.join("&")
        })
    }

    /// A value with more `&` than the search looks at is taken as ambiguous without looking; with as many
    /// `&` as it looks at, the same kind of value (no split sorts in place) is not.
    #[test]
    fn a_value_with_too_many_ampersands_is_taken_as_ambiguous() {
        let flagged = |n: usize| {
            let body = format!(r#"{{"m":"v{}"}}"#, "&zz=1".repeat(n));
            !second_readings(&json::read_signed(&body).unwrap(), Dialect::Postman).is_empty()
        };
        assert!(!flagged(MAX_SPLITS), "`zz=1` sorts after `m=v…` only as one string, never in place");
        assert!(flagged(MAX_SPLITS + 1));
    }

    proptest! {
        /// In string order, a value is flagged exactly when some split of it signs the same string.
        #[test]
        fn a_second_reading_is_flagged_exactly_when_a_split_signs_the_same_string(
            members in prop::collection::btree_map("[a-c]{1,2}", "[a-c=&]{0,7}", 1..5),
        ) {
            let body = serde_json::to_string(&members).unwrap();
            let doc = json::read_signed(&body).unwrap();
            let flagged: Vec<String> =
                second_readings(&doc, Dialect::Postman).into_iter().map(|a| a.path).collect();
            let pairs = CanonicalPairs::of(&doc);
            let parts: Vec<String> = pairs.parts_to_sign("senderKey=k").map(str::to_owned).collect();
            for (key, value) in &members {
                let real = value.contains('&') && a_split_reproduces(&parts, &format!("{key}={value}"));
                prop_assert_eq!(flagged.contains(key), real, "{} in {}", key, body);
            }
        }
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
