//! What every provider module uses to turn fields into event facts, with the rules that make a signature
//! authorise one meaning: id parts, references and statuses must be plain printable text, amounts exact
//! decimals. A field that breaks a rule makes its event [`Unusable`]: quarantined, never guessed at.

use crate::event::Status;
use crate::verify::json::{Document, Value};
pub use crate::verify::number::decimal;

/// The longest id part, reference or status accepted (bytes).
pub const MAX_ID_PART: usize = 128;

/// Why an authenticated callback (or batch item) cannot become an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Reason {
    MissingField,
    InvalidId,
    InvalidAmount,
    UnknownShape,
    AmbiguousSignature,
    EmptyBatch,
    /// The body itself cannot be read (not UTF-8, not one JSON object, a repeated key, past a limit), but
    /// the request is authentic: its URL token or HMAC covers the bytes, not the body as read.
    UnreadableBody,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        self.into()
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

/// One field of a provider's model: its text as the provider means it (a string's content, a number's
/// digits as sent, `true`/`false`; `None` when absent or null) and where it is, to name it when it is unusable.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'d> {
    pub text: Option<&'d str>,
    /// Whether the body has the field at all (a `null` included).
    pub sent: bool,
    /// The object it is in, as a path prefix (`params`, `params.resultArray[2]`, or empty at the top level).
    prefix: &'d str,
    name: &'static str,
}

impl<'d> Field<'d> {
    /// The field `name` of the object at `prefix`, from its value; an object or array where the model expects
    /// text makes the whole model unusable (`UnknownShape`, named `shape`).
    pub fn read(value: Value<'d, '_>, shape: &str, prefix: &'d str, name: &'static str) -> Result<Self, Unusable> {
        match value {
            Value::Absent => Ok(Self { text: None, sent: false, prefix, name }),
            Value::Null => Ok(Self { text: None, sent: true, prefix, name }),
            Value::Text(text) => Ok(Self { text: Some(text), sent: true, prefix, name }),
            Value::Object(_) | Value::Array(_) => Err(Unusable::new(Reason::UnknownShape, shape)),
        }
    }

    /// An informational field (a fact: a fee, a receipt): like [`Field::read`], except that an object or
    /// array reads as absent. A fact's shape never makes an event unusable; `payload` keeps it as sent.
    pub fn lenient(value: Value<'d, '_>, prefix: &'d str, name: &'static str) -> Self {
        match value {
            Value::Text(text) => Self { text: Some(text), sent: true, prefix, name },
            Value::Absent => Self { text: None, sent: false, prefix, name },
            Value::Null | Value::Object(_) | Value::Array(_) => Self { text: None, sent: true, prefix, name },
        }
    }

    /// A field known by its path alone (a top-level member).
    pub fn top(doc: &'d Document<'_>, name: &'static str) -> Self {
        let value = doc.field(name);
        Self { text: value.text(), sent: value.is_present(), prefix: "", name }
    }

    /// This field, with `other`'s text where it has none (a field the provider spells two ways).
    pub fn or(self, other: Field<'d>) -> Self {
        Self { text: self.text.or(other.text), sent: self.sent || other.sent, ..self }
    }

    /// The field's path in the body (`params.txId`).
    pub fn path(&self) -> String {
        if self.prefix.is_empty() {
            self.name.to_owned()
        } else {
            format!("{}.{}", self.prefix, self.name)
        }
    }

    fn unusable(&self, reason: Reason) -> Unusable {
        Unusable::new(reason, self.path())
    }

    /// A required id part (trimmed): present, not empty, plain, and without `:` (the id's own separator:
    /// with it, `A` + `b:success` and `A:b` + `success` would make the same id).
    pub fn id_part(&self) -> Result<String, Unusable> {
        let text = self.optional().ok_or_else(|| self.unusable(Reason::MissingField))?;
        if is_plain(text) && !text.contains(':') {
            Ok(text.to_owned())
        } else {
            Err(self.unusable(Reason::InvalidId))
        }
    }

    /// An optional reference, status or currency (trimmed; empty counts as absent); plain when present.
    pub fn optional_part(&self) -> Result<Option<String>, Unusable> {
        match self.optional() {
            None => Ok(None),
            Some(text) if is_plain(text) => Ok(Some(text.to_owned())),
            Some(_) => Err(self.unusable(Reason::InvalidId)),
        }
    }

    /// The text, trimmed, for classification only (never copied into an event); empty counts as absent.
    pub fn optional(&self) -> Option<&'d str> {
        self.text.map(str::trim).filter(|s| !s.is_empty())
    }

    /// A status word for the envelope's `provider_status`: the text as sent, or its plain form (`plain`,
    /// already checked) where the text as sent is longer than an id part may be.
    pub fn as_sent(&self, plain: &str) -> String {
        match self.text {
            Some(text) if text.len() <= MAX_ID_PART => text.to_owned(),
            _ => plain.to_owned(),
        }
    }

    /// An informational fact (a receipt number, a time, a channel): the text as sent, trimmed, if plain and
    /// short enough for an id part; otherwise absent. It never makes an event unusable: the payload has it.
    pub fn fact(&self) -> Option<String> {
        self.optional().filter(|t| is_plain(t) && t.len() <= MAX_ID_PART).map(str::to_owned)
    }

    /// An informational amount (a fee) as exact decimal text; absent when it is not a decimal.
    pub fn fact_amount(&self) -> Option<String> {
        self.optional().and_then(decimal)
    }

    /// An amount as exact decimal text (string or number as sent; empty means absent). Plain decimals are
    /// kept as sent (`100.50`, `-3`); exponent forms are written out exactly, never through a float
    /// (`1.5E+3` is `1500`, `2.50e-1` is `0.250`). Anything else (`1,750.00`) makes the event unusable.
    pub fn amount(&self) -> Result<Option<String>, Unusable> {
        let Some(text) = self.optional() else { return Ok(None) };
        decimal(text).map(Some).ok_or_else(|| self.unusable(Reason::InvalidAmount))
    }
}

/// A provider's model of one JSON object: the fields it reads, each by its JSON name. `read(value, shape,
/// prefix)` takes them from a read document in one pass over the object's leaves; a value that is not an
/// object, or a field that is an object or array, makes the model unusable (`UnknownShape`, named `shape`).
/// Fields the model does not name are ignored. Fields listed under `facts` are read leniently
/// ([`Field::lenient`]): informational, their shape never makes the model unusable.
macro_rules! model {
    (
        $(#[$meta:meta])* $name:ident { $($field:ident: $key:literal),* $(,)? }
        $(facts { $($fact:ident: $fact_key:literal),* $(,)? })?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        struct $name<'d> {
            $($field: $crate::providers::fields::Field<'d>,)*
            $($($fact: $crate::providers::fields::Field<'d>,)*)?
        }

        impl<'d> $name<'d> {
            fn read(
                value: $crate::verify::json::Value<'d, '_>,
                shape: &str,
                prefix: &'d str,
            ) -> Result<Self, $crate::providers::fields::Unusable> {
                use $crate::providers::fields::{Field, Reason, Unusable};
                let object = value.object().ok_or_else(|| Unusable::new(Reason::UnknownShape, shape))?;
                let [$($field,)* $($($fact,)*)?] = object.fields([$($key,)* $($($fact_key,)*)?]);
                Ok(Self {
                    $($field: Field::read($field, shape, prefix, $key)?,)*
                    $($($fact: Field::lenient($fact, prefix, $fact_key),)*)?
                })
            }
        }
    };
}
pub(crate) use model;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_decimal_text() {
        let t = |s: &'static str| Field { text: Some(s), sent: true, prefix: "data", name: "amount" };
        assert_eq!(t("100.50").amount(), Ok(Some("100.50".into())));
        assert_eq!(t("-3").amount(), Ok(Some("-3".into())));
        assert_eq!(t("").amount(), Ok(None));
        assert_eq!(Field { text: None, sent: false, prefix: "", name: "a" }.amount(), Ok(None));
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
            assert_eq!(t(bad).amount(), Err(Unusable::new(Reason::InvalidAmount, "data.amount")), "{bad}");
        }
    }

    #[test]
    fn id_parts_are_plain() {
        fn t(s: &str) -> Field<'_> {
            Field { text: Some(s), sent: true, prefix: "", name: "requestId" }
        }
        assert_eq!(t(" R1 ").id_part(), Ok("R1".into()));
        assert_eq!(t("").id_part().unwrap_err().reason, Reason::MissingField);
        assert_eq!(
            Field { text: None, sent: false, prefix: "", name: "requestId" }.id_part().unwrap_err().reason,
            Reason::MissingField
        );
        for bad in ["R1&salt=abc", "a=b", "x\u{0}", "x\u{FFFF}", "null", "{}", "A:b", &"x".repeat(129)] {
            assert_eq!(t(bad).id_part(), Err(Unusable::new(Reason::InvalidId, "requestId")), "{bad:?}");
        }
        assert_eq!(t("ORDER-77").optional_part(), Ok(Some("ORDER-77".into())));
        assert_eq!(t("a&b=c").optional_part().unwrap_err().reason, Reason::InvalidId);
    }

    model!(Sample { a: "a", b: "b" });

    #[test]
    fn models_read_text_and_refuse_containers() {
        let doc =
            crate::verify::json::read(r#"{"p": {"a": 10.50, "b": null, "c": {"x": 1}}, "q": {"a": [1]}, "r": 1}"#)
                .unwrap();
        let p = Sample::read(doc.field("p"), "p", "p").unwrap();
        assert_eq!((p.a.text, p.b.text, p.a.path()), (Some("10.50"), None, "p.a".to_owned()));
        assert_eq!(Sample::read(doc.field("q"), "q", "q").unwrap_err(), Unusable::new(Reason::UnknownShape, "q"));
        assert_eq!(Sample::read(doc.field("r"), "body", "").unwrap_err(), Unusable::new(Reason::UnknownShape, "body"));
        // An array is not an object, even one whose items would fill the model in order.
        let listed = crate::verify::json::read(r#"{"p": ["x", "y"], "q": [{"a": "x"}]}"#).unwrap();
        for field in ["p", "q"] {
            assert_eq!(Sample::read(listed.field(field), field, field).unwrap_err().reason, Reason::UnknownShape);
        }
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
