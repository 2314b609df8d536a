//! The normalised event: what a provider's module makes of a callback (its envelope is [`crate::envelope`]).

use std::borrow::Cow;

use crate::provider::Provider;

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
