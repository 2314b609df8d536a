//! MUDA (Uganda): `transaction_status` (older) and `transaction_event` (current) webhooks.
//!
//! MUDA documents no signature for these webhooks: the callback URL ends in a secret token. When signing
//! keys are configured (`MUDA_SIGNING_KEYS_PARAM`), every callback must also carry `X-Muda-Signature` = hex
//! HMAC-SHA256(key, body + `X-Muda-Timestamp`) (MUDA's Liquidity Rail scheme), with a fresh timestamp.
//! Event id: `muda:transaction:{transaction_id}:{STATUS}` (status trimmed and upper-cased).

use serde::Deserialize;

use super::fields::{amount, as_sent, id_part, optional_part, parse_as, StatusTable, Unusable};
use super::{Ack, Context, Route, Signer, Spec};
use crate::error::Rejection;
use crate::event::{NormalisedEvent, Status};
use crate::verify::json::{Document, Text};
use crate::verify::{secrets, signing, Scheme, Verified};

pub(crate) const SIGNATURE_HEADER: &str = "x-muda-signature";
pub(crate) const TIMESTAMP_HEADER: &str = "x-muda-timestamp";

pub(super) const SPEC: Spec =
    Spec { ack: Ack::JsonOk, route: Route::Token, signer: Signer::PathToken, authenticate, normalise };

fn authenticate(ctx: &Context<'_, '_>, _: &Document<'_>) -> Result<Verified, Rejection> {
    let verified = ctx.verify_path_token()?;
    let Some(keys) = &ctx.secrets.signing_keys else { return Ok(verified) };
    let provided = ctx.header(SIGNATURE_HEADER).ok_or(Rejection::MissingSignature("header `X-Muda-Signature`"))?;
    let timestamp = ctx.header(TIMESTAMP_HEADER).ok_or(Rejection::InvalidTimestamp)?;
    let body_and_time = [ctx.req.body, timestamp.as_bytes()];
    keys.find(|k| secrets::hex_matches(&signing::hmac_sha256(k.expose().as_bytes(), &body_and_time), provided))
        .ok_or(Rejection::InvalidSignature)?;
    ctx.check_timestamp(timestamp)?;
    Ok(Verified { scheme: Scheme::UrlTokenMudaHmac, ..verified })
}

#[derive(Debug, Deserialize)]
struct Webhook {
    transaction_id: Option<Text>,
    status: Option<Text>,
    amount: Option<Text>,
    currency: Option<Text>,
    reference_id: Option<Text>,
}

fn normalise(doc: &Document<'_>) -> Vec<Result<NormalisedEvent, Unusable>> {
    vec![parse_as(doc.text, "body").and_then(|hook| event(&hook))]
}

fn event(hook: &Webhook) -> Result<NormalisedEvent, Unusable> {
    let txn = id_part(&hook.transaction_id, "transaction_id")?;
    let sent = id_part(&hook.status, "status")?;
    let word = sent.to_ascii_uppercase();
    let id = format!("muda:transaction:{txn}:{word}");
    let status = STATUSES.get(Some(&word));
    let provider_status = Some(as_sent(&hook.status, &sent));
    Ok(NormalisedEvent::new(id, "transaction", txn, (status, provider_status))
        .with_merchant_reference(optional_part(&hook.reference_id, "reference_id")?)
        .with_amount(amount(&hook.amount, "amount")?, optional_part(&hook.currency, "currency")?))
}

const STATUSES: StatusTable =
    StatusTable(&[(Status::Pending, &["PENDING"]), (Status::Succeeded, &["SUCCESS"]), (Status::Failed, &["FAILED"])]);
