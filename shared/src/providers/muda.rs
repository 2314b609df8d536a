//! MUDA (Uganda): `transaction_status` (older) and `transaction_event` (current) webhooks.
//!
//! MUDA documents no signature for these webhooks: the callback URL ends in a secret token. When signing
//! keys are configured (`MUDA_SIGNING_KEYS_PARAM`), every callback must also carry `X-Muda-Signature` = hex
//! HMAC-SHA256(key, body + `X-Muda-Timestamp`) (MUDA's Liquidity Rail scheme), with a fresh timestamp.
//! Event id: `muda:transaction:{transaction_id}:{STATUS}` (status trimmed and upper-cased).

use super::contract::{Ack, Authenticate, Context, Route, Setting, Signer, Spec};
use super::fields::{model, StatusTable, Unusable};
use crate::error::Rejection;
use crate::event::{event_id, Facts, NormalisedEvent, Status};
use crate::verify::canonical::Ambiguity;
use crate::verify::json::Document;
use crate::verify::{secrets, signing, Scheme, Verified};

pub(crate) const SIGNATURE_HEADER: &str = "x-muda-signature";
pub(crate) const TIMESTAMP_HEADER: &str = "x-muda-timestamp";

pub(super) const SPEC: Spec = Spec {
    settings: &[Setting::SigningKeys { variable: "MUDA_SIGNING_KEYS", parameter: "MudaSigningKeysParameter" }],
    typical: ("transaction_event_success", "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"),
    registration: "The token at the end of the URL is the secret, the first value of the secret parameter. Rotating it changes the URL: put `new,old` in the parameter, give MUDA the new URL, drop `old` once its callbacks stop. If MUDA signs (X-Muda-Signature), its keys go in MudaSigningKeysParameter.",
    ack: Ack::JsonOk,
    route: Route::Token,
    signer: Signer::PathToken,
    authenticate: Authenticate::Request(authenticate),
    normalise,
};

fn authenticate(ctx: &Context<'_, '_>) -> Result<Verified, Rejection> {
    let verified = ctx.verify_path_token()?;
    let Some(keys) = &ctx.secrets.signing_keys else { return Ok(verified) };
    let provided = ctx.header(SIGNATURE_HEADER).ok_or(Rejection::MissingSignature("header `X-Muda-Signature`"))?;
    let timestamp = ctx.header(TIMESTAMP_HEADER).ok_or(Rejection::InvalidTimestamp)?;
    let body_and_time = [ctx.req.body, timestamp.as_bytes()];
    keys.find(|k| secrets::hex_matches(&signing::hmac_sha256(k.expose().as_bytes(), &body_and_time), provided))
        .ok_or(Rejection::InvalidSignature)?;
    ctx.check_timestamp(timestamp)?;
    Ok(Verified { scheme: Scheme::UrlTokenAndBodyHmac, ..verified })
}

model!(Webhook {
    transaction_id: "transaction_id",
    status: "status",
    amount: "amount",
    currency: "currency",
    reference_id: "reference_id",
} facts {
    fee: "fee",
    timestamp: "timestamp",
});

fn normalise(doc: &Document<'_>, _: &[Ambiguity]) -> Vec<Result<NormalisedEvent, Unusable>> {
    vec![Webhook::read(doc.root(), "body", "").and_then(|hook| event(&hook))]
}

fn event(hook: &Webhook<'_>) -> Result<NormalisedEvent, Unusable> {
    let txn = hook.transaction_id.id_part()?;
    let sent = hook.status.id_part()?;
    let word = sent.to_ascii_uppercase();
    let id = event_id(&["muda", "transaction", &txn, &word]);
    let status = STATUSES.get(Some(&word));
    let provider_status = Some(hook.status.as_sent(&sent));
    Ok(NormalisedEvent::new(id, "transaction", txn, (status, provider_status))
        .with_merchant_reference(hook.reference_id.optional_part()?)
        .with_amount(hook.amount.amount()?, hook.currency.optional_part()?)
        // The sender's and receiver's accounts are phone numbers or wallet addresses: left in the payload.
        .with_facts(Facts { fee: hook.fee.fact_amount(), provider_time: hook.timestamp.fact(), ..Facts::default() }))
}

const STATUSES: StatusTable =
    StatusTable(&[(Status::Pending, &["PENDING"]), (Status::Succeeded, &["SUCCESS"]), (Status::Failed, &["FAILED"])]);
