//! M2Money payout callbacks (`payout.transfer.success|failed|reverse`).
//!
//! Signed by the sender's webhook library: header `Signature` = hex HMAC-SHA256(secret, raw body bytes),
//! verified over the bytes as received (PHP's `json_encode` escapes `/` and non-ASCII, so re-serialising
//! would break it). Event id: `m2money:payout:{orderRefId}:{event}` (event trimmed and lower-cased): a
//! reversal can follow a success.

use super::contract::{Ack, Authenticate, Context, Route, Signer, Spec};
use super::fields::{model, Field, Reason, StatusTable, Unusable};
use crate::error::Rejection;
use crate::event::{event_id, Facts, NormalisedEvent, Status};
use crate::verify::canonical::Ambiguity;
use crate::verify::json::{Document, Value};
use crate::verify::{secrets, signing, Scheme, Verified};

pub(crate) const SIGNATURE_HEADER: &str = "signature";

pub(super) const SPEC: Spec = Spec {
    settings: &[],
    typical: ("payout_success", "ORD2025112200017"),
    registration: "Register the URL with a webhook secret; the same secret goes in the secret parameter (M2Money signs the body with HMAC-SHA256 in the Signature header).",
    ack: Ack::JsonOk,
    route: Route::Plain,
    signer: Signer::BodyHmacHeader(SIGNATURE_HEADER),
    authenticate: Authenticate::Request(authenticate),
    normalise,
};

fn authenticate(ctx: &Context<'_, '_>) -> Result<Verified, Rejection> {
    let provided = ctx.header(SIGNATURE_HEADER).ok_or(Rejection::MissingSignature("header `Signature`"))?;
    let secret_index = ctx
        .secrets
        .webhook
        .find(|s| secrets::hex_matches(&signing::hmac_sha256(s.expose().as_bytes(), &[ctx.req.body]), provided))
        .ok_or(Rejection::InvalidSignature)?;
    Ok(Verified { scheme: Scheme::BodyHmacSha256, secret_index, dialect: None })
}

model!(Data {
    order_ref_id: "orderRefId",
    client_ref_id: "clientRefId",
    amount: "amount",
    currency: "currency",
    status: "status",
} facts {
    utr: "utr",
    contact_id: "contactId",
});

fn normalise(doc: &Document<'_>, _: &[Ambiguity]) -> Vec<Result<NormalisedEvent, Unusable>> {
    vec![event(doc)]
}

fn event(doc: &Document<'_>) -> Result<NormalisedEvent, Unusable> {
    // The whole body is one model: any field of the wrong shape makes it unusable as `body`.
    let event = Field::read(doc.field("event"), "body", "", "event")?;
    let data = match doc.field("data") {
        Value::Absent | Value::Null => None,
        data => Some(Data::read(data, "body", "data")?),
    };
    let sent = event.id_part()?;
    let word = sent.to_ascii_lowercase();
    let data = data.ok_or_else(|| Unusable::new(Reason::MissingField, "data"))?;
    let order = data.order_ref_id.id_part()?;
    let id = event_id(&["m2money", "payout", &order, &word]);
    let status = status(&word, data.status.optional());
    let provider_status = Some(event.as_sent(&sent));
    Ok(NormalisedEvent::new(id, "payout", order, (status, provider_status))
        .with_merchant_reference(data.client_ref_id.optional_part()?)
        .with_amount(data.amount.amount()?, data.currency.optional_part()?)
        .with_facts(Facts {
            // The bank's UTR of the transfer; the beneficiary as M2Money's contact id (its name and phone
            // are personal data: they stay in the payload).
            provider_reference: data.utr.fact(),
            counterparty: data.contact_id.fact(),
            ..Facts::default()
        }))
}

const EVENTS: StatusTable = StatusTable(&[
    (Status::Succeeded, &["payout.transfer.success"]),
    (Status::Failed, &["payout.transfer.failed"]),
    (Status::Reversed, &["payout.transfer.reverse", "payout.transfer.reversed"]),
]);

/// `data.status`, read only where the event is not one we know.
const DATA_STATUS: StatusTable = StatusTable(&[
    (Status::Pending, &["queued", "pending", "processing"]),
    (Status::Failed, &["failed"]),
    (Status::Reversed, &["reversed"]),
]);

/// The event decides; `data.status` only where the event is not one we know.
fn status(event: &str, data_status: Option<&str>) -> Status {
    EVENTS.get(Some(event)).or_else(|| DATA_STATUS.get(data_status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_decides() {
        assert_eq!(status("payout.transfer.success", Some("processed")), Status::Succeeded);
        assert_eq!(status("payout.transfer.failed", Some("processed")), Status::Failed);
        assert_eq!(status("payout.transfer.reverse", None), Status::Reversed);
        assert_eq!(status("payout.transfer.hold", Some("queued")), Status::Pending);
        assert_eq!(status("payout.transfer.new", Some("processed")), Status::Unknown);
    }
}
