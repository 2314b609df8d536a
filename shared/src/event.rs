//! The normalised event and its CloudEvents 1.0 envelope.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::provider::Provider;
use crate::state::TransactionView;

/// A normalised status. Payment facts use the first six; other notifications carry the provider's
/// documented state (`account_opened`, `frozen`, ...). Anything not recognised is `Unknown`, never success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Succeeded,
    Failed,
    Timeout,
    Reversed,
    Unknown,
    State(&'static str),
}

impl Status {
    /// This status, or where it is `Unknown`, the one `fallback` finds.
    pub fn or_else(self, fallback: impl FnOnce() -> Status) -> Status {
        if self == Status::Unknown {
            fallback()
        } else {
            self
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Timeout => "timeout",
            Status::Reversed => "reversed",
            Status::Unknown => "unknown",
            Status::State(s) => s,
        }
    }
}

/// An event id: its parts joined with `:` (`lipia:stk:{CheckoutRequestID}:{status}`). Id parts never hold
/// `:` themselves (`fields::Field::id_part`), so the parts can always be read back.
pub fn event_id(parts: &[&str]) -> String {
    parts.join(":")
}

/// One business fact taken from a callback, before it is stamped with the time it was received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalisedEvent {
    /// Deterministic id, also the idempotency key (`niobi:payin:{depositId}:{statusCode}`, ...).
    pub id: String,
    /// What the event is about (`payin`, `payout`, `transaction`, ...): a provider's own closed set, or
    /// `notification_<type>` for a Choice type this version does not know.
    pub kind: Cow<'static, str>,
    /// The provider's transaction reference: every event of one transaction shares it (FIFO group, and the
    /// envelope's `subject`).
    pub reference: String,
    /// The merchant's own reference, where the provider echoes it.
    pub merchant_reference: Option<String>,
    pub status: Status,
    pub provider_status: Option<String>,
    /// Decimal text exactly as sent.
    pub amount: Option<String>,
    pub currency: Option<String>,
    /// Position in a batch notification (Choice 0004, 0008, 0014).
    pub batch_index: Option<usize>,
    /// What the provider says besides: fee, its own receipt, its own time, the other party.
    pub facts: Facts,
}

/// The facts a consumer needs beside the amount, where the provider sends them (docs/envelope.md lists
/// each provider's fields). None of them is personal data: names, phone numbers, e-mail addresses and
/// account numbers stay in `payload`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The provider's fee, decimal text as sent.
    pub fee: Option<String>,
    /// The provider's own receipt or transaction number (an M-Pesa receipt, a bank UTR).
    pub provider_reference: Option<String>,
    /// The provider's own time for the event, as sent.
    pub provider_time: Option<String>,
    /// The other party as the provider names it without personal data (a channel, a provider's contact id).
    pub counterparty: Option<String>,
}

impl NormalisedEvent {
    /// The one way to build an event: what identifies it, its status and the provider's own status text
    /// (code or word, as sent); the optional facts follow with the `with_*` calls.
    pub fn new(
        id: String,
        kind: impl Into<Cow<'static, str>>,
        reference: String,
        (status, provider_status): (Status, Option<String>),
    ) -> Self {
        Self {
            id,
            kind: kind.into(),
            reference,
            merchant_reference: None,
            status,
            provider_status,
            amount: None,
            currency: None,
            batch_index: None,
            facts: Facts::default(),
        }
    }

    pub fn with_merchant_reference(self, merchant_reference: Option<String>) -> Self {
        Self { merchant_reference, ..self }
    }

    /// The amount (decimal text as sent) and its currency.
    pub fn with_amount(self, amount: Option<String>, currency: Option<String>) -> Self {
        Self { amount, currency, ..self }
    }

    pub fn with_facts(self, facts: Facts) -> Self {
        Self { facts, ..self }
    }

    pub fn with_batch_index(self, index: usize) -> Self {
        Self { batch_index: Some(index), ..self }
    }

    pub fn event_type(&self, provider: Provider) -> String {
        format!("{provider}.{}.{}", self.kind, self.status.as_str())
    }
}

impl Serialize for Provider {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// The CloudEvents 1.0 JSON document sent to SQS, as stored: `data` is [`EventData`], or [`QuarantineData`]
/// for what could not be normalised. At send time [`complete`] adds where the transaction stands and
/// `payload`, the provider's JSON as received (`signature` removed).
#[derive(Debug, Serialize)]
pub struct CloudEvent<'a, D> {
    pub specversion: &'static str,
    pub id: &'a str,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: String,
    pub subject: &'a str,
    pub datacontenttype: &'static str,
    pub data: D,
}

#[derive(Debug, Serialize)]
pub struct EventData<'a> {
    pub provider: Provider,
    pub kind: &'a str,
    pub reference: &'a str,
    pub merchant_reference: Option<&'a str>,
    pub status: &'static str,
    pub provider_status: Option<&'a str>,
    pub amount: Option<&'a str>,
    pub currency: Option<&'a str>,
    // The facts are left out where the provider sends none (a consumer reads absent as null): the stored
    // envelope keeps an event's marker within one DynamoDB write unit (1 KB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_reference: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_time: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterparty: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_index: Option<usize>,
}

/// `data` of a `<provider>.quarantined` event.
#[derive(Debug, Serialize)]
pub struct QuarantineData<'a> {
    pub provider: Provider,
    /// Why it could not be normalised (`invalid_amount`, `ambiguous_signature`, `empty_batch`, ...).
    pub reason: &'a str,
    /// The field at fault.
    pub field: &'a str,
}

fn envelope<'a, D>(
    provider: Provider,
    id: &'a str,
    event_type: String,
    subject: &'a str,
    received: DateTime<Utc>,
    data: D,
) -> CloudEvent<'a, D> {
    CloudEvent {
        specversion: "1.0",
        id,
        source: format!("payhooks/{provider}"),
        event_type,
        time: received.to_rfc3339_opts(SecondsFormat::Millis, true),
        subject,
        datacontenttype: "application/json",
        data,
    }
}

impl<'a> CloudEvent<'a, EventData<'a>> {
    pub fn new(provider: Provider, event: &'a NormalisedEvent, received: DateTime<Utc>) -> Self {
        let data = EventData {
            provider,
            kind: &event.kind,
            reference: &event.reference,
            merchant_reference: event.merchant_reference.as_deref(),
            status: event.status.as_str(),
            provider_status: event.provider_status.as_deref(),
            amount: event.amount.as_deref(),
            currency: event.currency.as_deref(),
            fee: event.facts.fee.as_deref(),
            provider_reference: event.facts.provider_reference.as_deref(),
            provider_time: event.facts.provider_time.as_deref(),
            counterparty: event.facts.counterparty.as_deref(),
            batch_index: event.batch_index,
        };
        envelope(provider, &event.id, event.event_type(provider), &event.reference, received, data)
    }
}

impl<'a> CloudEvent<'a, QuarantineData<'a>> {
    /// A `<provider>.quarantined` event; its subject is its own id.
    pub fn quarantined(
        provider: Provider,
        id: &'a str,
        reason: &'a str,
        field: &'a str,
        received: DateTime<Utc>,
    ) -> Self {
        let data = QuarantineData { provider, reason, field };
        envelope(provider, id, format!("{provider}.quarantined"), id, received, data)
    }
}

impl<D: Serialize> CloudEvent<'_, D> {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a CloudEvent always serialises")
    }
}

/// A message stored without its payload (`data` is its last member, `payload` would be the last of `data`),
/// completed at send time: where the transaction stands (`transaction_status`, `regression`,
/// `contradiction`), then `payload`.
pub fn complete(envelope: &str, transaction: Option<&TransactionView>, payload: &str) -> String {
    let head = envelope.strip_suffix("}}").expect("an envelope ends with `data`, an object");
    let mut out = String::with_capacity(head.len() + payload.len() + 96);
    out.push_str(head);
    if let Some(view) = transaction {
        let status = serde_json::to_string(&view.status).expect("a string always serialises");
        out.push_str(&format!(
            ",\"transaction_status\":{status},\"regression\":{},\"contradiction\":{}",
            view.regression, view.contradiction
        ));
    }
    out.push_str(",\"payload\":");
    out.push_str(payload);
    out.push_str("}}");
    out
}

/// A message with the CloudEvents extension attribute `name` set to `value` (top level, first).
pub fn with_extension(message: &str, name: &str, value: &str) -> String {
    let body = message.strip_prefix('{').expect("a message is a JSON object");
    format!("{{{}:{},{body}", serde_json::json!(name), serde_json::json!(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_envelope_gets_its_payload_back() {
        let event = NormalisedEvent::new("p:1".into(), "payin", "R".into(), (Status::Succeeded, Some("0".into())))
            .with_amount(Some("1.50".into()), None);
        let payload = r#"{"a": [1, "x"], "amount": 1.50}"#;
        let now = Utc::now();
        let stored = CloudEvent::new(Provider::Niobi, &event, now).to_json();
        assert!(!stored.contains("payload"));
        let full: serde_json::Value = serde_json::from_str(&complete(&stored, None, payload)).unwrap();
        assert_eq!(full["data"]["payload"], serde_json::from_str::<serde_json::Value>(payload).unwrap());
        assert_eq!((full["data"]["amount"].as_str(), full["id"].as_str()), (Some("1.50"), Some("p:1")));
        assert!(complete(&stored, None, payload).ends_with(r#""payload":{"a": [1, "x"], "amount": 1.50}}}"#));
        let view = TransactionView { status: Some("succeeded".into()), regression: true, contradiction: false };
        let json: serde_json::Value = serde_json::from_str(&complete(&stored, Some(&view), payload)).unwrap();
        assert_eq!(json["data"]["transaction_status"], "succeeded");
        assert_eq!(
            (json["data"]["regression"].as_bool(), json["data"]["contradiction"].as_bool()),
            (Some(true), Some(false))
        );
        assert_eq!(json["data"]["payload"]["a"][1], "x");
        let stored = CloudEvent::quarantined(Provider::Muda, "q", "invalid_amount", "amount", now).to_json();
        let quarantined: serde_json::Value = serde_json::from_str(&complete(&stored, None, payload)).unwrap();
        assert_eq!(
            (quarantined["data"]["reason"].as_str(), quarantined["data"]["payload"]["a"][0].as_i64()),
            (Some("invalid_amount"), Some(1))
        );
    }
}
