//! M2Money payout callbacks (`payout.transfer.success|failed|reverse`).
//!
//! Signed by the sender's webhook library: header `Signature` = hex HMAC-SHA256(secret, raw body bytes),
//! verified over the bytes as received (PHP's `json_encode` escapes `/` and non-ASCII, so re-serialising
//! would break it). Event id: `m2money:payout:{orderRefId}:{event}` (event trimmed and lower-cased): a
//! reversal can follow a success.

use serde::Deserialize;

use super::fields::{amount, as_sent, id_part, optional, optional_part, parse_as, Reason, StatusTable, Unusable};
use super::{Ack, Context, Route, Signer, Spec};
use crate::error::Rejection;
use crate::event::{NormalisedEvent, Status};
use crate::verify::json::{Document, Text};
use crate::verify::{secrets, signing, Scheme, Verified};

pub(crate) const SIGNATURE_HEADER: &str = "signature";

pub(super) const SPEC: Spec = Spec {
    ack: Ack::JsonOk,
    route: Route::Plain,
    signer: Signer::BodyHmacHeader(SIGNATURE_HEADER),
    authenticate,
    normalise,
};

fn authenticate(ctx: &Context<'_, '_>, _: &Document<'_>) -> Result<Verified, Rejection> {
    let provided = ctx.header(SIGNATURE_HEADER).ok_or(Rejection::MissingSignature("header `Signature`"))?;
    let secret_index = ctx
        .secrets
        .webhook
        .find(|s| secrets::hex_matches(&signing::hmac_sha256(s.expose().as_bytes(), &[ctx.req.body]), provided))
        .ok_or(Rejection::InvalidSignature)?;
    Ok(Verified { scheme: Scheme::M2MoneyHmacSha256, secret_index, dialect: None })
}

#[derive(Debug, Deserialize)]
struct Callback {
    event: Option<Text>,
    data: Option<Data>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    order_ref_id: Option<Text>,
    client_ref_id: Option<Text>,
    amount: Option<Text>,
    currency: Option<Text>,
    status: Option<Text>,
}

fn normalise(doc: &Document<'_>) -> Vec<Result<NormalisedEvent, Unusable>> {
    vec![parse_as(doc.text, "body").and_then(|callback| event(&callback))]
}

fn event(callback: &Callback) -> Result<NormalisedEvent, Unusable> {
    let sent = id_part(&callback.event, "event")?;
    let event = sent.to_ascii_lowercase();
    let data = callback.data.as_ref().ok_or_else(|| Unusable::new(Reason::MissingField, "data"))?;
    let order = id_part(&data.order_ref_id, "data.orderRefId")?;
    let id = format!("m2money:payout:{order}:{event}");
    let status = status(&event, optional(&data.status));
    let provider_status = Some(as_sent(&callback.event, &sent));
    Ok(NormalisedEvent::new(id, "payout", order, (status, provider_status))
        .with_merchant_reference(optional_part(&data.client_ref_id, "data.clientRefId")?)
        .with_amount(amount(&data.amount, "data.amount")?, optional_part(&data.currency, "data.currency")?))
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
