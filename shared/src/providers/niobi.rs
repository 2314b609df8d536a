//! Niobi (Kenya): pay-in (USSD push, payment link), payout and timeout callbacks.
//!
//! Envelope `{client_id, sender, salt, timestamp (seconds), params, signature}`, signed with the same
//! canonical string as Choice; the hash is `NIOBI_SIGNATURE_HASH` (`sha256` by default, or `hmac-sha256`).
//! Event id: `niobi:{payin|payout}:{depositId|payoutId}:{statusCode}`: a `000006` timeout and a later `000000`
//! success for one deposit are two events.

use serde::Deserialize;

use super::fields::{amount, id_part, optional, optional_part, parse_as, Reason, StatusTable, Unusable};
use super::{section, unusable, Ack, Context, Route, Signer, Spec};
use crate::error::Rejection;
use crate::event::{NormalisedEvent, Status};
use crate::verify::json::{Document, Text};
use crate::verify::signing::CanonicalHash;
use crate::verify::{Scheme, Verified};

pub(super) const SPEC: Spec =
    Spec { ack: Ack::JsonOk, route: Route::Plain, signer: Signer::CanonicalSeconds, authenticate, normalise };

fn authenticate(ctx: &Context<'_, '_>, doc: &Document<'_>) -> Result<Verified, Rejection> {
    let hash = ctx.config.niobi_hash;
    let scheme = match hash {
        CanonicalHash::Sha256 => Scheme::NiobiSha256,
        CanonicalHash::HmacSha256 => Scheme::NiobiHmacSha256,
    };
    ctx.verify_canonical(doc, hash, scheme)
}

fn normalise(doc: &Document<'_>) -> Vec<Result<NormalisedEvent, Unusable>> {
    if let Some(why) = &doc.ambiguity {
        return unusable(Unusable::new(Reason::AmbiguousSignature, why));
    }
    vec![section(doc, "params").and_then(|raw| parse_as(raw, "params")).and_then(|p| event(&p))]
}

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

fn event(p: &Params) -> Result<NormalisedEvent, Unusable> {
    let (kind, txn_id, merchant_reference) = if optional(&p.payout_id).is_some() {
        (
            "payout",
            id_part(&p.payout_id, "params.payoutId")?,
            optional_part(&p.payment_reference, "params.payment_reference")?,
        )
    } else {
        let reference = optional_part(&p.third_party_reference_1, "params.third_party_reference_1")?;
        ("payin", id_part(&p.deposit_id, "params.depositId")?, reference)
    };
    let code = id_part(&p.status_code, "params.statusCode")?;
    let id = format!("niobi:{kind}:{txn_id}:{code}");
    let status = status(&code, optional(&p.status));
    Ok(NormalisedEvent::new(id, kind, txn_id, (status, Some(code)))
        .with_merchant_reference(merchant_reference)
        .with_amount(amount(&p.amount, "params.amount")?, optional_part(&p.currency, "params.currency")?))
}

/// Codes Niobi has published: `000000` success (final), `000006` timeout (not final: a success may follow).
const CODES: StatusTable = StatusTable(&[(Status::Succeeded, &["000000"]), (Status::Timeout, &["000006"])]);

/// For codes Niobi has not published, the `status` word decides; it can never make a success.
const WORDS: StatusTable = StatusTable(&[
    (Status::Failed, &["failed", "failure", "fail"]),
    (Status::Pending, &["pending", "processing"]),
    (Status::Timeout, &["timeout"]),
]);

/// A published code decides; otherwise the word, which can never make a success.
fn status(code: &str, word: Option<&str>) -> Status {
    CODES.get(Some(code)).or_else(|| WORDS.get(word))
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
