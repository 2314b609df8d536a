//! Niobi (Kenya): pay-in (USSD push, payment link), payout and timeout callbacks.
//!
//! Envelope `{client_id, sender, salt, timestamp (seconds), params, signature}`, signed with the same
//! canonical string as Choice; the hash is `NIOBI_SIGNATURE_HASH` (`sha256` by default, or `hmac-sha256`).
//! Event id: `niobi:{payin|payout}:{depositId|payoutId}:{statusCode}`: a `000006` timeout and a later `000000`
//! success for one deposit are two events.

use serde::Deserialize;

use super::{amount, optional, parse_as, required, Context, Ingested};
use crate::error::Rejection;
use crate::event::{NormalisedEvent, Status};
use crate::json::Text;
use crate::signing::CanonicalHash;

#[derive(Debug, Deserialize)]
struct Params {
    #[serde(rename = "depositId")]
    deposit_id: Option<Text>,
    #[serde(rename = "payoutId")]
    payout_id: Option<Text>,
    #[serde(rename = "statusCode", alias = "status_code")]
    status_code: Option<Text>,
    status: Option<Text>,
    amount: Option<Text>,
    currency: Option<Text>,
    third_party_reference_1: Option<Text>,
    payment_reference: Option<Text>,
}

pub(crate) fn ingest<'a>(ctx: &Context<'_, 'a>) -> Result<Ingested<'a>, Rejection> {
    let (body, members) = ctx.members()?;
    let hash = ctx.config.niobi_hash;
    let scheme = match hash {
        CanonicalHash::Sha256 => "niobi-sha256",
        CanonicalHash::HmacSha256 => "niobi-hmac-sha256",
    };
    let verified = ctx.verify_canonical(&members, hash, scheme)?;
    let params_raw =
        members.iter().find(|(k, _)| k == "params").map(|(_, v)| v.get()).ok_or(Rejection::missing("params"))?;
    let params: Params = parse_as(params_raw, "params")?;
    Ok((verified, body, members, vec![normalise(&params)?]))
}

fn normalise(p: &Params) -> Result<NormalisedEvent, Rejection> {
    let (kind, txn_id, merchant_reference) = if p.payout_id.is_some() {
        ("payout", required(&p.payout_id, "params.payoutId")?, optional(&p.payment_reference))
    } else {
        ("payin", required(&p.deposit_id, "params.depositId")?, optional(&p.third_party_reference_1))
    };
    let code = required(&p.status_code, "params.statusCode")?;
    Ok(NormalisedEvent {
        id: format!("niobi:{kind}:{txn_id}:{code}"),
        kind: kind.to_owned(),
        subject: txn_id.clone(),
        reference: txn_id,
        merchant_reference,
        status: status(&code, optional(&p.status).as_deref()),
        provider_status: Some(code),
        amount: amount(&p.amount, "params.amount")?,
        currency: optional(&p.currency),
        batch_index: None,
    })
}

/// `000000` success (final), `000006` timeout (not final: a success may follow). Other codes are in a table
/// Niobi has not published; for those the `status` word decides, and it can never make a success.
fn status(code: &str, word: Option<&str>) -> Status {
    match code {
        "000000" => Status::Succeeded,
        "000006" => Status::Timeout,
        _ => match word.map(str::to_ascii_lowercase).as_deref() {
            Some("failed" | "failure" | "fail") => Status::Failed,
            Some("pending" | "processing") => Status::Pending,
            Some("timeout") => Status::Timeout,
            _ => Status::Unknown,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        assert_eq!(status("000000", Some("success")), Status::Succeeded);
        assert_eq!(status("000006", Some("timeout")), Status::Timeout);
        assert_eq!(status("000123", Some("failed")), Status::Failed);
        // An unknown code never becomes a success, whatever the word says.
        assert_eq!(status("000999", Some("success")), Status::Unknown);
    }
}
