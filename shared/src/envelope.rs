//! The CloudEvents 1.0 message sent to SQS, as one struct ([`CloudEvent`]) serialised whole.
//!
//! A record stores its message without `payload` (the body is stored once, apart) and without where the
//! transaction stands (known only once the event is applied, at send time): [`CloudEvent::to_json`]. At send
//! time the stored text is read back into the same struct and [`CloudEvent::message`] serialises it with
//! both, the payload as raw JSON.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::event::NormalisedEvent;
use crate::provider::Provider;
use crate::state::TransactionView;
use crate::verify::json::{self, Value};

/// One message: the CloudEvents attributes, then `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent<'a, D = Data<'a>> {
    /// The extension attribute a replay (`payhooks-admin replay`) carries: when it was sent again.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    pub replayed: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub specversion: Cow<'a, str>,
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub source: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    pub event_type: Cow<'a, str>,
    #[serde(borrow)]
    pub time: Cow<'a, str>,
    #[serde(borrow)]
    pub subject: Cow<'a, str>,
    #[serde(borrow)]
    pub datacontenttype: Cow<'a, str>,
    pub data: D,
}

/// `data` as stored: an event's, or a quarantined item's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
// One per message, built and dropped at once: boxing the event's data would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Data<'a> {
    Event(#[serde(borrow)] EventData<'a>),
    Quarantine(#[serde(borrow)] QuarantineData<'a>),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventData<'a> {
    pub provider: Provider,
    pub kind: Cow<'a, str>,
    pub reference: Cow<'a, str>,
    pub merchant_reference: Option<Cow<'a, str>>,
    pub status: Cow<'a, str>,
    pub provider_status: Option<Cow<'a, str>>,
    pub amount: Option<Cow<'a, str>>,
    pub currency: Option<Cow<'a, str>>,
    // The facts are left out where the provider sends none (a consumer reads absent as null): the stored
    // envelope keeps an event's marker within one DynamoDB write unit (1 KB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_reference: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_time: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_index: Option<usize>,
}

/// `data` of a `<provider>.quarantined` event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuarantineData<'a> {
    pub provider: Provider,
    /// Why it could not be normalised (`invalid_amount`, `ambiguous_signature`, `empty_batch`, ...).
    pub reason: Cow<'a, str>,
    /// The field at fault.
    pub field: Cow<'a, str>,
}

/// A stored envelope that does not read as one: never written by payhooks, so a record changed by hand.
#[derive(Debug, thiserror::Error)]
#[error("the stored envelope cannot be read: {0}")]
pub struct UnreadableEnvelope(String);

/// A stored envelope's text value, owned (the reader unescapes it once).
fn optional(value: Value<'_, '_>) -> Option<Cow<'static, str>> {
    value.text().map(|text| Cow::Owned(text.to_owned()))
}

fn required(value: Value<'_, '_>, name: &str) -> Result<Cow<'static, str>, UnreadableEnvelope> {
    optional(value).ok_or_else(|| UnreadableEnvelope(format!("no `{name}`")))
}

fn provider_of(value: Value<'_, '_>) -> Result<Provider, UnreadableEnvelope> {
    let name = value.text().ok_or_else(|| UnreadableEnvelope("no `data.provider`".into()))?;
    name.parse().map_err(|e: crate::provider::UnknownProvider| UnreadableEnvelope(e.to_string()))
}

/// `data` as sent: as stored, then where the transaction stands, then the provider's JSON.
#[derive(Debug, Serialize)]
struct Sent<'m, 'a> {
    #[serde(flatten)]
    data: &'m Data<'a>,
    #[serde(flatten)]
    transaction: Option<&'m TransactionView>,
    payload: &'m RawValue,
}

impl Serialize for Provider {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'a> CloudEvent<'a> {
    /// The message of a normalised event received at `received`.
    pub fn event(provider: Provider, event: &'a NormalisedEvent, received: DateTime<Utc>) -> Self {
        let text = |s: &'a Option<String>| s.as_deref().map(Cow::Borrowed);
        let data = EventData {
            provider,
            kind: Cow::Borrowed(&event.kind),
            reference: Cow::Borrowed(&event.reference),
            merchant_reference: text(&event.merchant_reference),
            status: Cow::Borrowed(event.status.as_str()),
            provider_status: text(&event.provider_status),
            amount: text(&event.amount),
            currency: text(&event.currency),
            fee: text(&event.facts.fee),
            provider_reference: text(&event.facts.provider_reference),
            provider_time: text(&event.facts.provider_time),
            counterparty: text(&event.facts.counterparty),
            batch_index: event.batch_index,
        };
        Self::new(provider, &event.id, event.event_type(provider), &event.reference, received, Data::Event(data))
    }

    /// A `<provider>.quarantined` message; its subject is its own id.
    pub fn quarantined(
        provider: Provider,
        id: &'a str,
        reason: &'a str,
        field: &'a str,
        received: DateTime<Utc>,
    ) -> Self {
        let data = QuarantineData { provider, reason: Cow::Borrowed(reason), field: Cow::Borrowed(field) };
        Self::new(provider, id, format!("{provider}.quarantined"), id, received, Data::Quarantine(data))
    }

    fn new(
        provider: Provider,
        id: &'a str,
        event_type: String,
        subject: &'a str,
        received: DateTime<Utc>,
        data: Data<'a>,
    ) -> Self {
        CloudEvent {
            replayed: None,
            specversion: Cow::Borrowed("1.0"),
            id: Cow::Borrowed(id),
            source: Cow::Owned(format!("payhooks/{provider}")),
            event_type: Cow::Owned(event_type),
            time: Cow::Owned(received.to_rfc3339_opts(SecondsFormat::Millis, true)),
            subject: Cow::Borrowed(subject),
            datacontenttype: Cow::Borrowed("application/json"),
            data,
        }
    }

    /// A message as a record stores it (no payload, no transaction status), read back.
    pub fn stored(text: &'a str) -> Result<Self, UnreadableEnvelope> {
        let doc = json::read(text).map_err(|e| UnreadableEnvelope(e.to_string()))?;
        let event_type = required(doc.field("type"), "type")?;
        let data = doc.field("data").object().ok_or_else(|| UnreadableEnvelope("no `data` object".into()))?;
        // An event's data has a `kind`; a quarantined item's has none (its type alone could be mistaken: a
        // provider's own state may be any word).
        let data = if !data.fields(["kind"])[0].is_present() {
            let [provider, reason, field] = data.fields(["provider", "reason", "field"]);
            Data::Quarantine(QuarantineData {
                provider: provider_of(provider)?,
                reason: required(reason, "data.reason")?,
                field: required(field, "data.field")?,
            })
        } else {
            let [provider, kind, reference, merchant_reference, status, provider_status, amount, currency, fee, provider_reference, provider_time, counterparty, batch_index] =
                data.fields([
                    "provider",
                    "kind",
                    "reference",
                    "merchant_reference",
                    "status",
                    "provider_status",
                    "amount",
                    "currency",
                    "fee",
                    "provider_reference",
                    "provider_time",
                    "counterparty",
                    "batch_index",
                ]);
            Data::Event(EventData {
                provider: provider_of(provider)?,
                kind: required(kind, "data.kind")?,
                reference: required(reference, "data.reference")?,
                merchant_reference: optional(merchant_reference),
                status: required(status, "data.status")?,
                provider_status: optional(provider_status),
                amount: optional(amount),
                currency: optional(currency),
                fee: optional(fee),
                provider_reference: optional(provider_reference),
                provider_time: optional(provider_time),
                counterparty: optional(counterparty),
                batch_index: batch_index.text().and_then(|n| n.parse().ok()),
            })
        };
        Ok(CloudEvent {
            replayed: optional(doc.field("replayed")),
            specversion: required(doc.field("specversion"), "specversion")?,
            id: required(doc.field("id"), "id")?,
            source: required(doc.field("source"), "source")?,
            event_type,
            time: required(doc.field("time"), "time")?,
            subject: required(doc.field("subject"), "subject")?,
            datacontenttype: required(doc.field("datacontenttype"), "datacontenttype")?,
            data,
        })
    }

    /// The text a record stores: the message without `payload` and where the transaction stands.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a CloudEvent always serialises")
    }

    /// The message as sent: `data` completed with where the transaction stands and `payload`, the
    /// provider's JSON as its text (a payload that is not JSON is sent as one JSON string of it).
    pub fn message(&self, transaction: Option<&TransactionView>, payload: &str) -> String {
        let as_string;
        let payload: &RawValue = match serde_json::from_str(payload) {
            Ok(raw) => raw,
            Err(_) => {
                as_string = serde_json::value::to_raw_value(payload).expect("a string always serialises");
                &as_string
            }
        };
        let sent = CloudEvent {
            replayed: self.replayed.clone(),
            specversion: Cow::Borrowed(&self.specversion),
            id: Cow::Borrowed(&self.id),
            source: Cow::Borrowed(&self.source),
            event_type: Cow::Borrowed(&self.event_type),
            time: Cow::Borrowed(&self.time),
            subject: Cow::Borrowed(&self.subject),
            datacontenttype: Cow::Borrowed(&self.datacontenttype),
            data: Sent { data: &self.data, transaction, payload },
        };
        serde_json::to_string(&sent).expect("a CloudEvent always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Status;

    #[test]
    fn a_stored_envelope_gets_its_payload_back() {
        let event = NormalisedEvent::new("p:1".into(), "payin", "R".into(), (Status::Succeeded, Some("0".into())))
            .with_amount(Some("1.50".into()), None);
        let payload = r#"{"a": [1, "x"], "amount": 1.50}"#;
        let now = Utc::now();
        let stored = CloudEvent::event(Provider::Niobi, &event, now).to_json();
        assert!(!stored.contains("payload"));
        let read = CloudEvent::stored(&stored).unwrap();
        assert_eq!(read, CloudEvent::event(Provider::Niobi, &event, now));
        let full: serde_json::Value = serde_json::from_str(&read.message(None, payload)).unwrap();
        assert_eq!(full["data"]["payload"], serde_json::from_str::<serde_json::Value>(payload).unwrap());
        assert_eq!((full["data"]["amount"].as_str(), full["id"].as_str()), (Some("1.50"), Some("p:1")));
        assert!(read.message(None, payload).ends_with(r#""payload":{"a": [1, "x"], "amount": 1.50}}}"#));
        let view = TransactionView { status: Some("succeeded".into()), regression: true, contradiction: false };
        let json: serde_json::Value = serde_json::from_str(&read.message(Some(&view), payload)).unwrap();
        assert_eq!(json["data"]["transaction_status"], "succeeded");
        assert_eq!(
            (json["data"]["regression"].as_bool(), json["data"]["contradiction"].as_bool()),
            (Some(true), Some(false))
        );
        assert_eq!(json["data"]["payload"]["a"][1], "x");
        let unset = TransactionView { status: None, regression: false, contradiction: false };
        let json: serde_json::Value = serde_json::from_str(&read.message(Some(&unset), payload)).unwrap();
        assert!(json["data"]["transaction_status"].is_null() && json["data"].get("transaction_status").is_some());

        let stored = CloudEvent::quarantined(Provider::Muda, "q", "invalid_amount", "amount", now).to_json();
        let quarantined = CloudEvent::stored(&stored).unwrap();
        assert!(matches!(quarantined.data, Data::Quarantine(_)));
        let quarantined: serde_json::Value = serde_json::from_str(&quarantined.message(None, payload)).unwrap();
        assert_eq!(
            (quarantined["data"]["reason"].as_str(), quarantined["data"]["payload"]["a"][0].as_i64()),
            (Some("invalid_amount"), Some(1))
        );
    }

    /// The message as the splicing that built it before gave it, member for member and byte for byte: a
    /// consumer sees no change.
    #[test]
    fn the_message_is_the_stored_envelope_completed() {
        let event = NormalisedEvent::new("m:1".into(), "payout", "R\"1".into(), (Status::Failed, None))
            .with_merchant_reference(Some("é".into()))
            .with_batch_index(3);
        let stored = CloudEvent::event(Provider::M2Money, &event, Utc::now()).to_json();
        let view = TransactionView { status: Some("failed".into()), regression: false, contradiction: true };
        let spliced = format!(
            "{},\"transaction_status\":\"failed\",\"regression\":false,\"contradiction\":true,\"payload\":{{\"x\":1}}}}}}",
            stored.strip_suffix("}}").unwrap()
        );
        assert_eq!(CloudEvent::stored(&stored).unwrap().message(Some(&view), r#"{"x":1}"#), spliced);
    }

    /// A record changed by hand is an error to report, never a panic or a message with holes.
    #[test]
    fn an_envelope_that_does_not_read_is_named() {
        for (text, why) in [
            ("{}", "no `type`"),
            ("not json", "cannot be read"),
            (r#"{"type": "niobi.payin.succeeded", "data": {"provider": "stripe"}}"#, "unknown provider `stripe`"),
            (r#"{"type": "niobi.payin.succeeded", "data": {"provider": "niobi"}}"#, "no `data.reason`"),
            (
                r#"{"type": "niobi.payin.succeeded", "data": {"provider": "niobi", "kind": "payin"}}"#,
                "no `data.reference`",
            ),
        ] {
            let err = CloudEvent::stored(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    /// An event whose provider state is the word `quarantined` is still an event.
    #[test]
    fn an_event_is_told_from_a_quarantine_by_its_data() {
        let event =
            NormalisedEvent::new("c:1".into(), "notification_x", "R".into(), (Status::State("quarantined"), None));
        let stored = CloudEvent::event(Provider::Choice, &event, Utc::now()).to_json();
        let read = CloudEvent::stored(&stored).unwrap();
        assert_eq!(read.event_type, "choice.notification_x.quarantined");
        assert!(matches!(read.data, Data::Event(_)));
    }

    #[test]
    fn a_payload_that_is_not_json_is_sent_as_its_text() {
        let stored = CloudEvent::quarantined(Provider::Lipia, "q", "unreadable_body", "x", Utc::now()).to_json();
        let message = CloudEvent::stored(&stored).unwrap().message(None, "{not json");
        let json: serde_json::Value = serde_json::from_str(&message).unwrap();
        assert_eq!(json["data"]["payload"], "{not json");
    }

    #[test]
    fn a_replay_carries_its_extension_first() {
        let stored = CloudEvent::quarantined(Provider::Lipia, "q", "r", "f", Utc::now()).to_json();
        let mut replay = CloudEvent::stored(&stored).unwrap();
        replay.replayed = Some("2026-12-07T00:00:00.000Z".into());
        assert!(replay.message(None, "null").starts_with(r#"{"replayed":"2026-12-07T00:00:00.000Z","specversion""#));
    }
}
