//! MUDA (Uganda): `transaction_status` (older) and `transaction_event` (current) webhooks.
//!
//! MUDA documents no signature for these webhooks: the callback URL ends in a secret token. When an
//! `X-Muda-Signature` header arrives and `MUDA_SIGNING_KEYS` is set, it must also match hex
//! HMAC-SHA256(key, body + `X-Muda-Timestamp`) (MUDA's Liquidity Rail scheme).
//! Event id: `muda:transaction:{transaction_id}:{STATUS}` (status upper-cased: PENDING, SUCCESS, FAILED).

use serde::Deserialize;

use super::{amount, optional, parse_as, required, Context, Ingested, Verified};
use crate::error::Rejection;
use crate::event::{NormalisedEvent, Status};
use crate::json::Text;
use crate::secrets;
use crate::signing;

pub const SIGNATURE_HEADER: &str = "x-muda-signature";
pub const TIMESTAMP_HEADER: &str = "x-muda-timestamp";

#[derive(Debug, Deserialize)]
struct Webhook {
    transaction_id: Option<Text>,
    status: Option<Text>,
    amount: Option<Text>,
    currency: Option<Text>,
    reference_id: Option<Text>,
}

pub(crate) fn ingest<'a>(ctx: &Context<'_, 'a>) -> Result<Ingested<'a>, Rejection> {
    let mut verified = ctx.verify_path_token()?;
    if let (Some(provided), Some(keys)) = (ctx.header(SIGNATURE_HEADER), &ctx.config.muda_signing_keys) {
        let timestamp = ctx.header(TIMESTAMP_HEADER).ok_or(Rejection::InvalidTimestamp)?;
        keys.find(|k| {
            secrets::hex_matches(
                &signing::hmac_sha256(k.expose().as_bytes(), &[ctx.req.body, timestamp.as_bytes()]),
                provided,
            )
        })
        .ok_or(Rejection::InvalidSignature)?;
        verified = Verified { scheme: "url-token+muda-hmac-sha256", ..verified };
    }

    let (body, members) = ctx.members()?;
    let hook: Webhook = parse_as(body, "body")?;
    let txn = required(&hook.transaction_id, "transaction_id")?;
    let status_text = required(&hook.status, "status")?.to_ascii_uppercase();
    let event = NormalisedEvent {
        id: format!("muda:transaction:{txn}:{status_text}"),
        kind: "transaction".to_owned(),
        subject: txn.clone(),
        reference: txn,
        merchant_reference: optional(&hook.reference_id),
        status: match status_text.as_str() {
            "PENDING" => Status::Pending,
            "SUCCESS" => Status::Succeeded,
            "FAILED" => Status::Failed,
            _ => Status::Unknown,
        },
        provider_status: optional(&hook.status),
        amount: amount(&hook.amount, "amount")?,
        currency: optional(&hook.currency),
        batch_index: None,
    };
    Ok((verified, body, members, vec![event]))
}
