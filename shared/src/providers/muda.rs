//! MUDA (Uganda): `transaction_status` (older) and `transaction_event` (current) webhooks.
//!
//! MUDA documents no signature for these webhooks: the callback URL ends in a secret token. When an
//! `X-Muda-Signature` header arrives and `MUDA_SIGNING_KEYS` is set, it must also match hex
//! HMAC-SHA256(key, body + `X-Muda-Timestamp`) (MUDA's Liquidity Rail scheme).
//! Event id: `muda:transaction:{transaction_id}:{STATUS}` (status upper-cased: PENDING, SUCCESS, FAILED).

use serde::Deserialize;

use super::{amount, optional, parse_as, required, Ack, Context, Ingested, Route, Signer, Spec, StatusTable};
use crate::error::Rejection;
use crate::event::{NormalisedEvent, Status};
use crate::verify::json::Text;
use crate::verify::{secrets, signing, Scheme, Verified};

pub(crate) const SIGNATURE_HEADER: &str = "x-muda-signature";
pub(crate) const TIMESTAMP_HEADER: &str = "x-muda-timestamp";

pub(super) const SPEC: Spec = Spec { ack: Ack::JsonOk, route: Route::Token, signer: Signer::PathToken, ingest };

#[derive(Debug, Deserialize)]
struct Webhook {
    transaction_id: Option<Text>,
    status: Option<Text>,
    amount: Option<Text>,
    currency: Option<Text>,
    reference_id: Option<Text>,
}

fn ingest<'a>(ctx: &Context<'_, 'a>) -> Result<Ingested<'a>, Rejection> {
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
        verified = Verified { scheme: Scheme::UrlTokenMudaHmac, ..verified };
    }

    let (body, members) = ctx.members()?;
    let hook: Webhook = parse_as(body, "body")?;
    let txn = required(&hook.transaction_id, "transaction_id")?;
    let status_text = required(&hook.status, "status")?.to_ascii_uppercase();
    let id = format!("muda:transaction:{txn}:{status_text}");
    let status = STATUSES.get(Some(&status_text));
    let event = NormalisedEvent::new(id, "transaction", txn, (status, optional(&hook.status)))
        .with_merchant_reference(optional(&hook.reference_id))
        .with_amount(amount(&hook.amount, "amount")?, optional(&hook.currency));
    Ok(Ingested { verified, body, members, events: vec![event] })
}

const STATUSES: StatusTable =
    StatusTable(&[(Status::Pending, &["PENDING"]), (Status::Succeeded, &["SUCCESS"]), (Status::Failed, &["FAILED"])]);
