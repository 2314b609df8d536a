//! M2Money payout callbacks (`payout.transfer.success|failed|reverse`).
//!
//! Signed by the sender's webhook library: header `Signature` = hex HMAC-SHA256(secret, raw body bytes),
//! verified over the bytes as received (PHP's `json_encode` escapes `/` and non-ASCII, so re-serialising
//! would break it). Event id: `m2money:payout:{orderRefId}:{event}`: a reversal can follow a success.

use serde::Deserialize;

use super::{amount, optional, parse_as, required, Ack, Context, Ingested, Route, Signer, Spec, StatusTable};
use crate::error::Rejection;
use crate::event::{NormalisedEvent, Status};
use crate::verify::json::Text;
use crate::verify::{secrets, signing, Scheme, Verified};

pub(crate) const SIGNATURE_HEADER: &str = "signature";

pub(super) const SPEC: Spec =
    Spec { ack: Ack::JsonOk, route: Route::Plain, signer: Signer::BodyHmacHeader(SIGNATURE_HEADER), ingest };

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

fn ingest<'a>(ctx: &Context<'_, 'a>) -> Result<Ingested<'a>, Rejection> {
    let provided = ctx.header(SIGNATURE_HEADER).ok_or(Rejection::MissingSignature("header `Signature`"))?;
    let secret_index = ctx
        .secrets
        .find(|s| secrets::hex_matches(&signing::hmac_sha256(s.expose().as_bytes(), &[ctx.req.body]), provided))
        .ok_or(Rejection::InvalidSignature)?;
    let verified = Verified { scheme: Scheme::M2MoneyHmacSha256, secret_index };

    let (body, members) = ctx.members()?;
    let callback: Callback = parse_as(body, "body")?;
    let event = required(&callback.event, "event")?;
    let data = callback.data.ok_or(Rejection::missing("data"))?;
    let order = required(&data.order_ref_id, "data.orderRefId")?;
    let id = format!("m2money:payout:{order}:{event}");
    let status = status(&event, optional(&data.status).as_deref());
    let normalised = NormalisedEvent::new(id, "payout", order, (status, Some(event)))
        .with_merchant_reference(optional(&data.client_ref_id))
        .with_amount(amount(&data.amount, "data.amount")?, optional(&data.currency));
    Ok(Ingested { verified, body, members, events: vec![normalised] })
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
