//! M2Money payout callbacks (`payout.transfer.success|failed|reverse`).
//!
//! Signed by the sender's webhook library: header `Signature` = hex HMAC-SHA256(secret, raw body bytes),
//! verified over the bytes as received (PHP's `json_encode` escapes `/` and non-ASCII, so re-serialising
//! would break it). Event id: `m2money:payout:{orderRefId}:{event}`: a reversal can follow a success.

use serde::Deserialize;

use super::{amount, optional, parse_as, required, Context, Ingested, Verified};
use crate::error::Rejection;
use crate::event::{NormalisedEvent, Status};
use crate::json::Text;
use crate::secrets;
use crate::signing;

pub const SIGNATURE_HEADER: &str = "signature";

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

pub(crate) fn ingest<'a>(ctx: &Context<'_, 'a>) -> Result<Ingested<'a>, Rejection> {
    let provided = ctx.header(SIGNATURE_HEADER).ok_or(Rejection::MissingSignature("header `Signature`"))?;
    let secret_index = ctx
        .secrets
        .find(|s| secrets::hex_matches(&signing::hmac_sha256(s.expose().as_bytes(), &[ctx.req.body]), provided))
        .ok_or(Rejection::InvalidSignature)?;
    let verified = Verified { scheme: "m2money-hmac-sha256", secret_index };

    let (body, members) = ctx.members()?;
    let callback: Callback = parse_as(body, "body")?;
    let event = required(&callback.event, "event")?;
    let data = callback.data.ok_or(Rejection::missing("data"))?;
    let order = required(&data.order_ref_id, "data.orderRefId")?;
    let normalised = NormalisedEvent {
        id: format!("m2money:payout:{order}:{event}"),
        kind: "payout".to_owned(),
        subject: order.clone(),
        reference: order,
        merchant_reference: optional(&data.client_ref_id),
        status: status(&event, optional(&data.status).as_deref()),
        provider_status: Some(event),
        amount: amount(&data.amount, "data.amount")?,
        currency: optional(&data.currency),
        batch_index: None,
    };
    Ok((verified, body, members, vec![normalised]))
}

/// The event decides; `data.status` only where the event is not one we know.
fn status(event: &str, data_status: Option<&str>) -> Status {
    match event {
        "payout.transfer.success" => Status::Succeeded,
        "payout.transfer.failed" => Status::Failed,
        "payout.transfer.reverse" | "payout.transfer.reversed" => Status::Reversed,
        _ => match data_status.map(str::to_ascii_lowercase).as_deref() {
            Some("queued" | "pending" | "processing") => Status::Pending,
            Some("failed") => Status::Failed,
            Some("reversed") => Status::Reversed,
            _ => Status::Unknown,
        },
    }
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
