//! The messages payhooks puts on its SQS queues, as owned types a consumer deserializes: one [`Event`] per
//! message body, a CloudEvents 1.0 document whose `data` is an [`EventData`] or, for an authenticated
//! callback payhooks could not read, a [`QuarantineData`]. Serializing an `Event` gives back the JSON it was
//! read from (the round-trip test holds this over every message the tests produce).
//!
//! Amounts stay the provider's decimal text, and `payload` keeps every number's text as sent. The closed
//! sets (provider, kind, status, quarantine reason) are enums whose `Other` keeps a value added later, and a
//! field added later is ignored, so an older consumer still reads a newer message.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// The version of these types and of the schema generated from them (`schema/payhooks-event.schema.json`).
pub const SCHEMA_VERSION: &str = "1.1.0";

/// One message body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Event {
    /// Set (to the replay time, RFC 3339) on a message `payhooks-admin replay` sent again: the same event,
    /// with the same `id`, so a consumer that deduplicates by `id` takes it once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed: Option<String>,
    /// Always `1.0`.
    pub specversion: String,
    /// The event id: deterministic, the same for every delivery of the same fact (`niobi:payin:{depositId}:{statusCode}`).
    /// Deduplicate by it.
    pub id: String,
    /// `payhooks/<provider>`.
    pub source: String,
    /// `<provider>.<kind>.<status>`, or `<provider>.quarantined`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When payhooks received the callback (RFC 3339, UTC, milliseconds).
    pub time: String,
    /// The provider's transaction reference (the FIFO group); a quarantine's own id.
    pub subject: String,
    /// Always `application/json`.
    pub datacontenttype: String,
    pub data: Data,
}

/// `data`: a normalised event, or a quarantined callback (the one with a `reason`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum Data {
    Quarantine(QuarantineData),
    Event(Box<EventData>),
}

impl<'de> Deserialize<'de> for Data {
    // Not serde's `untagged`: it buffers the input, and `payload` (raw JSON text) cannot be read from a buffer.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Probe {
            reason: Option<serde::de::IgnoredAny>,
        }
        let raw = Box::<RawValue>::deserialize(d)?;
        let probe: Probe = serde_json::from_str(raw.get()).map_err(serde::de::Error::custom)?;
        let data = match probe.reason {
            Some(_) => serde_json::from_str(raw.get()).map(Data::Quarantine),
            None => serde_json::from_str(raw.get()).map(|data| Data::Event(Box::new(data))),
        };
        data.map_err(serde::de::Error::custom)
    }
}

/// `data` of a normalised event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EventData {
    pub provider: Provider,
    pub kind: Kind,
    /// The provider's transaction reference: every event of one transaction shares it.
    pub reference: String,
    /// Your own reference, where the provider echoes it.
    pub merchant_reference: Option<String>,
    pub status: Status,
    /// The status exactly as the provider sent it (`000000`, `8`, `payout.transfer.reverse`, `Success`).
    pub provider_status: Option<String>,
    /// Decimal text exactly as sent (`"250.50"`); never a float.
    pub amount: Option<String>,
    pub currency: Option<String>,
    /// The provider's fee, decimal text as sent. This and the three facts below are absent (read as
    /// `None`) where the provider sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<String>,
    /// The provider's own receipt or transaction number: Lipia's M-Pesa receipt, M2Money's bank UTR,
    /// Niobi's `reference`/`ref`, Choice's `externalTxId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_reference: Option<String>,
    /// The provider's own time for the event, as sent (Niobi's `transaction_date`, Choice's `updateTime` in
    /// epoch milliseconds, MUDA's `timestamp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_time: Option<String>,
    /// The other party as the provider names it without personal data (Choice's `oppoChannelId`, Niobi's
    /// `payment_channel`, M2Money's `contactId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty: Option<String>,
    /// Choice batch items only: the item's position in `resultArray`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_index: Option<u64>,
    /// Where the transaction stands after this event: the one field to drive a ledger from. Absent when no
    /// state is kept for the event; `null` while nothing is recorded and the event's status is `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Status>"))]
    pub transaction_status: Option<Option<Status>>,
    /// This event ranks below the state already recorded (a timeout after a success): not for balances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression: Option<bool>,
    /// This event contradicts a final outcome (a failure after a success): a question for a human.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contradiction: Option<bool>,
    /// The provider's JSON as received, `signature` removed, every value's text as sent; `null` only when
    /// the message would pass SQS's 256 KiB (`payhooks-admin inspect <id> --body` shows it then).
    pub payload: Payload,
}

/// `data` of a `<provider>.quarantined` event: an authenticated callback that could not be normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct QuarantineData {
    pub provider: Provider,
    pub reason: QuarantineReason,
    /// The field at fault (`params.resultArray[1].amount`), or why the body could not be read.
    pub field: String,
    /// As for an event; for `unreadable_body`, the body's text as one JSON string.
    pub payload: Payload,
}

/// The provider's JSON exactly as received: its text, not a parsed value.
#[derive(Debug, Clone)]
pub struct Payload(pub Box<RawValue>);

impl Payload {
    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Read it as `T` (your own type for the provider's body).
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> serde_json::Result<T> {
        serde_json::from_str(self.0.get())
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for Payload {}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(Payload)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Payload {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Payload".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "The provider's JSON as received (any JSON value; numbers keep their text)"
        })
    }
}

/// A field that, when present, is a value or `null` (`Some(None)`), as opposed to absent (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A closed set read from and written as text, with `Other` for a value this version does not know.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value added after this version.
            Other(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $($text => $name::$variant,)+
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
                Ok($name::from(text.as_ref()))
            }
        }

        #[cfg(feature = "schema")]
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "description": concat!("Known values: ", $($text, " "),+, "(and values added later)"),
                    "examples": [$($text),+]
                })
            }
        }
    };
}

text_enum!(
    /// The provider that sent the callback.
    Provider { Niobi = "niobi", Choice = "choice", M2Money = "m2money", Lipia = "lipia", Muda = "muda" }
);

text_enum!(
    /// What the event is about. Choice kinds not in its document arrive as `notification_<type>` (`Other`).
    Kind {
        Payin = "payin",
        Payout = "payout",
        Stk = "stk",
        Transaction = "transaction",
        Onboarding = "onboarding",
        BalanceChange = "balance_change",
        BulkTransfer = "bulk_transfer",
        WalletUpgrade = "wallet_upgrade",
        SmeAccountOpening = "sme_account_opening",
        UtilityPayment = "utility_payment",
        AccountOpening = "account_opening",
        Fx = "fx",
        AirtimePurchase = "airtime_purchase",
        FileJob = "file_job",
        InterestDisbursement = "interest_disbursement",
        AccountClosure = "account_closure",
        Otp = "otp",
        AccountStatusChange = "account_status_change",
        MerchantBalanceChange = "merchant_balance_change",
        InterbankTransfer = "interbank_transfer",
        ProfileCheck = "profile_check",
        FixedDeposit = "fixed_deposit",
        CnyTransfer = "cny_transfer",
    }
);

text_enum!(
    /// A payment's status, or a notification's documented state (`account_opened`, `frozen`, ... as
    /// `Other`). `unknown` is a code the provider has not documented: never a success.
    Status {
        Pending = "pending",
        Succeeded = "succeeded",
        Failed = "failed",
        Timeout = "timeout",
        Reversed = "reversed",
        Unknown = "unknown",
    }
);

text_enum!(
    /// Why an authenticated callback could not be normalised.
    QuarantineReason {
        MissingField = "missing_field",
        InvalidId = "invalid_id",
        InvalidAmount = "invalid_amount",
        UnknownShape = "unknown_shape",
        AmbiguousSignature = "ambiguous_signature",
        EmptyBatch = "empty_batch",
        UnreadableBody = "unreadable_body",
    }
);

impl Event {
    /// A message body, read.
    pub fn from_json(text: &str) -> serde_json::Result<Self> {
        serde_json::from_str(text)
    }

    /// Whether this is a `<provider>.quarantined` event (route it to a human).
    pub fn is_quarantine(&self) -> bool {
        matches!(self.data, Data::Quarantine(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"specversion":"1.0","id":"niobi:payin:A7KQ2M9XW002:000000","source":"payhooks/niobi","type":"niobi.payin.succeeded","time":"2026-11-22T12:00:00.123Z","subject":"A7KQ2M9XW002","datacontenttype":"application/json","data":{"provider":"niobi","kind":"payin","reference":"A7KQ2M9XW002","merchant_reference":null,"status":"succeeded","provider_status":"000000","amount":"250.50","currency":null,"fee":"0.3","provider_reference":"SKJ3F5TQ1Z","transaction_status":"succeeded","regression":false,"contradiction":false,"payload":{"params":{"amount":250.50,"x":1e3}}}}"#;

    #[test]
    fn a_message_reads_and_writes_back_the_same_text() {
        let event = Event::from_json(EVENT).unwrap();
        assert_eq!(serde_json::to_string(&event).unwrap(), EVENT);
        let Data::Event(data) = &event.data else { panic!("an event") };
        assert_eq!((data.status.clone(), data.amount.as_deref()), (Status::Succeeded, Some("250.50")));
        assert_eq!(data.payload.get(), r#"{"params":{"amount":250.50,"x":1e3}}"#, "numbers keep their text");
        assert_eq!(data.transaction_status, Some(Some(Status::Succeeded)));
    }

    #[test]
    fn values_added_later_are_kept() {
        let newer =
            EVENT.replace(r#""kind":"payin""#, r#""kind":"refund""#).replace("\"niobi\",\"kind", "\"stripe\",\"kind");
        let event = Event::from_json(&newer).unwrap();
        let Data::Event(data) = &event.data else { panic!("an event") };
        assert_eq!(
            (data.kind.clone(), data.provider.clone()),
            (Kind::Other("refund".into()), Provider::Other("stripe".into()))
        );
        assert_eq!(serde_json::to_string(&event).unwrap(), newer);
    }

    #[test]
    fn null_and_absent_transaction_status_stay_apart() {
        let null = EVENT.replace(r#""transaction_status":"succeeded""#, r#""transaction_status":null"#);
        let Data::Event(data) = Event::from_json(&null).unwrap().data else { panic!() };
        assert_eq!(data.transaction_status, Some(None));
        let absent = EVENT.replace(r#""transaction_status":"succeeded","regression":false,"contradiction":false,"#, "");
        let event = Event::from_json(&absent).unwrap();
        let Data::Event(data) = &event.data else { panic!() };
        assert_eq!((data.transaction_status.clone(), data.regression), (None, None));
        assert_eq!(serde_json::to_string(&event).unwrap(), absent);
    }

    #[test]
    fn a_field_added_later_is_ignored() {
        let newer = EVENT.replace(r#""specversion":"1.0","#, r#""specversion":"1.0","traceparent":"00-x","#);
        assert_eq!(Event::from_json(&newer).unwrap(), Event::from_json(EVENT).unwrap());
    }

    #[test]
    fn a_quarantine_and_a_replay_read_as_such() {
        let quarantine = r#"{"replayed":"2026-11-23T00:00:00.000Z","specversion":"1.0","id":"m2money:quarantined:6f1c","source":"payhooks/m2money","type":"m2money.quarantined","time":"2026-11-22T12:00:00.123Z","subject":"m2money:quarantined:6f1c","datacontenttype":"application/json","data":{"provider":"m2money","reason":"invalid_amount","field":"data.amount","payload":"not json \u0000"}}"#;
        let event = Event::from_json(quarantine).unwrap();
        assert!(event.is_quarantine() && event.replayed.is_some());
        assert_eq!(serde_json::to_string(&event).unwrap(), quarantine);
    }
}
