//! What every provider module uses to turn fields into event facts, with the rules that make a signature
//! authorise one meaning: id parts, references and statuses must be plain printable text, amounts exact
//! decimals. A field that breaks a rule makes its event [`Unusable`]: quarantined, never guessed at.

use serde::Deserialize;

use crate::event::Status;
use crate::verify::json::Text;
pub use crate::verify::number::decimal;

/// The longest id part, reference or status accepted (bytes).
pub const MAX_ID_PART: usize = 128;

/// Why an authenticated callback (or batch item) cannot become an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    MissingField,
    InvalidId,
    InvalidAmount,
    UnknownShape,
    AmbiguousSignature,
    EmptyBatch,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MissingField => "missing_field",
            Reason::InvalidId => "invalid_id",
            Reason::InvalidAmount => "invalid_amount",
            Reason::UnknownShape => "unknown_shape",
            Reason::AmbiguousSignature => "ambiguous_signature",
            Reason::EmptyBatch => "empty_batch",
        }
    }
}

/// An authenticated callback, or one batch item, that is quarantined instead of normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    pub reason: Reason,
    /// The field at fault (`params.amount`, `params.resultArray[2]`, ...), or what was ambiguous.
    pub field: String,
}

impl Unusable {
    pub fn new(reason: Reason, field: impl Into<String>) -> Self {
        Self { reason, field: field.into() }
    }
}

/// A provider's status words or codes, grouped by what they mean. Lookups trim the text and ignore ASCII
/// case; anything not in the table is `unknown`, never a success.
pub(crate) struct StatusTable(pub &'static [(Status, &'static [&'static str])]);

impl StatusTable {
    pub fn get(&self, text: Option<&str>) -> Status {
        let Some(text) = text.map(str::trim) else { return Status::Unknown };
        let means = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(text));
        self.0.iter().find(|(_, words)| means(words)).map_or(Status::Unknown, |(status, _)| *status)
    }
}

/// Whether `text` may stand in an id, a reference, a status or an SQS attribute: printable, no `&` or `=`
/// (the canonical string's separators), no control or non-SQS character, at most [`MAX_ID_PART`] bytes, and
/// not a word the canonical string cannot tell from a JSON literal (`null`, `true`, `false`, `{}`, `[]`).
pub fn is_plain(text: &str) -> bool {
    let sqs_ok = |c: char| matches!(c, '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
    !text.is_empty()
        && text.len() <= MAX_ID_PART
        && text.chars().all(|c| sqs_ok(c) && c != '&' && c != '=')
        && !matches!(text, "null" | "true" | "false" | "{}" | "[]")
}

/// A required id part (trimmed): present, not empty, plain, and without `:` (the id's own separator: with it,
/// `A` + `b:success` and `A:b` + `success` would make the same id).
pub(crate) fn id_part(value: &Option<Text>, field: &str) -> Result<String, Unusable> {
    let text = value.as_ref().map(|t| t.as_str().trim()).filter(|t| !t.is_empty());
    let text = text.ok_or_else(|| Unusable::new(Reason::MissingField, field))?;
    if is_plain(text) && !text.contains(':') {
        Ok(text.to_owned())
    } else {
        Err(Unusable::new(Reason::InvalidId, field))
    }
}

/// An optional reference, status or currency (trimmed; empty counts as absent); plain when present.
pub(crate) fn optional_part(value: &Option<Text>, field: &str) -> Result<Option<String>, Unusable> {
    match value.as_ref().map(|t| t.as_str().trim()).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(text) if is_plain(text) => Ok(Some(text.to_owned())),
        Some(_) => Err(Unusable::new(Reason::InvalidId, field)),
    }
}

/// A status word for the envelope's `provider_status`: the text as sent, or its plain form (`id`, already
/// checked) where the text as sent is longer than an id part may be.
pub(crate) fn as_sent(value: &Option<Text>, plain: &str) -> String {
    match value {
        Some(text) if text.as_str().len() <= MAX_ID_PART => text.as_str().to_owned(),
        _ => plain.to_owned(),
    }
}

/// The text of an optional field, trimmed, for classification only (never copied into an event).
pub(crate) fn optional(value: &Option<Text>) -> Option<&str> {
    value.as_ref().map(|t| t.as_str().trim()).filter(|s| !s.is_empty())
}

/// An amount as exact decimal text (string or number as sent; empty means absent). Plain decimals are
/// kept as sent (`100.50`, `-3`); exponent forms are written out exactly, never through a float
/// (`1.5E+3` is `1500`, `2.50e-1` is `0.250`). Anything else (`1,750.00`) makes the event unusable.
pub(crate) fn amount(value: &Option<Text>, field: &str) -> Result<Option<String>, Unusable> {
    let Some(text) = optional(value) else { return Ok(None) };
    decimal(text).map(Some).ok_or_else(|| Unusable::new(Reason::InvalidAmount, field))
}

/// Parse a section of the body into a typed model; a shape that does not fit is unusable.
pub(crate) fn parse_as<'de, T: Deserialize<'de>>(raw: &'de str, field: &str) -> Result<T, Unusable> {
    serde_json::from_str(raw).map_err(|_| Unusable::new(Reason::UnknownShape, field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_decimal_text() {
        let t = |s: &str| Some(Text(s.to_owned()));
        assert_eq!(amount(&t("100.50"), "a"), Ok(Some("100.50".into())));
        assert_eq!(amount(&t("-3"), "a"), Ok(Some("-3".into())));
        assert_eq!(amount(&t(""), "a"), Ok(None));
        assert_eq!(amount(&None, "a"), Ok(None));
        for (sent, exact) in [
            ("1.5E+3", "1500"),
            ("2.50e-1", "0.250"),
            ("1e2", "100"),
            ("-1.25E1", "-12.5"),
            ("12E-5", "0.00012"),
            ("0.5e1", "5"),
            ("123.456e1", "1234.56"),
        ] {
            assert_eq!(decimal(sent).as_deref(), Some(exact), "{sent}");
        }
        for bad in ["1,000", "1,750.00", "ten", "1.", ".5", "--1", "1e", "1e+", "1e999", "0x10", "1 000", "+1"] {
            assert_eq!(amount(&t(bad), "data.amount").unwrap_err().reason, Reason::InvalidAmount, "{bad}");
        }
    }

    #[test]
    fn id_parts_are_plain() {
        let t = |s: &str| Some(Text(s.to_owned()));
        assert_eq!(id_part(&t(" R1 "), "requestId"), Ok("R1".into()));
        assert_eq!(id_part(&t(""), "requestId").unwrap_err().reason, Reason::MissingField);
        assert_eq!(id_part(&None, "requestId").unwrap_err().reason, Reason::MissingField);
        for bad in ["R1&salt=abc", "a=b", "x\u{0}", "x\u{FFFF}", "null", "{}", "A:b", &"x".repeat(129)] {
            assert_eq!(id_part(&t(bad), "requestId").unwrap_err().reason, Reason::InvalidId, "{bad:?}");
        }
        assert_eq!(optional_part(&t("ORDER-77"), "ref"), Ok(Some("ORDER-77".into())));
        assert_eq!(optional_part(&t("a&b=c"), "ref").unwrap_err().reason, Reason::InvalidId);
    }

    #[test]
    fn status_tables_trim_and_fold_case() {
        const TABLE: StatusTable = StatusTable(&[(Status::Succeeded, &["success", "8"])]);
        for text in ["success", "SUCCESS", " Success ", "8"] {
            assert_eq!(TABLE.get(Some(text)), Status::Succeeded, "{text}");
        }
        assert_eq!(TABLE.get(Some("succes")), Status::Unknown);
        assert_eq!(TABLE.get(None), Status::Unknown);
    }
}
