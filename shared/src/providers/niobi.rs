//! Niobi (Kenya): pay-in (USSD push, payment link), payout and timeout callbacks.
//!
//! Envelope `{client_id, sender, salt, timestamp (seconds), params, signature}`, signed with the same
//! canonical string as Choice; the hash is `NIOBI_SIGNATURE_HASH` (`sha256` by default, or `hmac-sha256`).
//! Event id: `niobi:{payin|payout}:{depositId|payoutId}:{statusCode}`: a `000006` timeout and a later `000000`
//! success for one deposit are two events.

use super::contract::{section, unusable, Ack, Authenticate, Context, Route, Setting, Signer, Spec};
use super::fields::{model, Reason, StatusTable, Unusable};
use crate::error::Rejection;
use crate::event::{event_id, Facts, NormalisedEvent, Status};
use crate::verify::canonical::Ambiguity;
use crate::verify::json::{Document, Value};
use crate::verify::signing::CanonicalHash;
use crate::verify::{Scheme, Verified};

pub(super) const SPEC: Spec = Spec {
    settings: &[Setting::CanonicalHash { variable: "NIOBI_SIGNATURE_HASH", parameter: "NiobiSignatureHash" }, Setting::CanonicalDialects],
    typical: ("payin_ussd_push", "A7KQ2M9XW001"),
    registration: "Set the URL in Niobi's portal. The secret parameter holds Niobi's client secret (the senderKey every callback is signed with); confirm NIOBI_SIGNATURE_HASH with `payhooks-admin verify` on the first real callback.",
    ack: Ack::JsonOk,
    route: Route::Plain,
    signer: Signer::CanonicalSeconds,
    authenticate: Authenticate::Body(authenticate),
    normalise,
};

fn authenticate(ctx: &Context<'_, '_>, doc: &Document<'_>) -> Result<Verified, Rejection> {
    let hash = ctx.config.canonical_hash;
    let scheme = match hash {
        CanonicalHash::Sha256 => Scheme::CanonicalSha256,
        CanonicalHash::HmacSha256 => Scheme::CanonicalHmacSha256,
    };
    ctx.verify_canonical(doc, hash, scheme)
}

fn normalise(doc: &Document<'_>, ambiguities: &[Ambiguity]) -> Vec<Result<NormalisedEvent, Unusable>> {
    if let Some(ambiguity) = ambiguities.first() {
        return unusable(Unusable::new(Reason::AmbiguousSignature, &ambiguity.why));
    }
    vec![section(doc, "params").and_then(read_params).and_then(|p| event(&p))]
}

/// `status_code` is another spelling of `statusCode`: either may be sent, not both.
fn read_params<'d>(params: Value<'d, '_>) -> Result<Params<'d>, Unusable> {
    let p = Params::read(params, "params", "params")?;
    if p.status_code.sent && p.status_code_alias.sent {
        return Err(Unusable::new(Reason::UnknownShape, "params"));
    }
    Ok(Params { status_code: p.status_code.or(p.status_code_alias), ..p })
}

model!(Params {
    deposit_id: "depositId",
    payout_id: "payoutId",
    status_code: "statusCode",
    status_code_alias: "status_code",
    status: "status",
    amount: "amount",
    currency: "currency",
    third_party_reference_1: "third_party_reference_1",
    payment_reference: "payment_reference",
} facts {
    fees: "fees",
    fee: "fee",
    reference: "reference",
    provider_ref: "ref",
    transaction_date: "transaction_date",
    payment_channel: "payment_channel",
});

fn event(p: &Params<'_>) -> Result<NormalisedEvent, Unusable> {
    let (kind, txn_id, merchant_reference) = if p.payout_id.optional().is_some() {
        ("payout", p.payout_id.id_part()?, p.payment_reference.optional_part()?)
    } else {
        ("payin", p.deposit_id.id_part()?, p.third_party_reference_1.optional_part()?)
    };
    let code = p.status_code.id_part()?;
    let id = event_id(&["niobi", kind, &txn_id, &code]);
    let status = status(&code, p.status.optional());
    Ok(NormalisedEvent::new(id, kind, txn_id, (status, Some(code)))
        .with_merchant_reference(merchant_reference)
        .with_amount(p.amount.amount()?, p.currency.optional_part()?)
        .with_facts(Facts {
            // Pay-ins: `fees`, `reference`; payouts: `fee`, `ref` (the M-Pesa code), `transaction_date`.
            fee: p.fees.or(p.fee).fact_amount(),
            provider_reference: p.reference.or(p.provider_ref).fact(),
            provider_time: p.transaction_date.fact(),
            counterparty: p.payment_channel.fact(),
        }))
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

    #[test]
    fn either_spelling_of_the_status_code_but_not_both() {
        let normalised = |params: &str| {
            let body = format!(r#"{{"params": {{"depositId": "D1", {params}}}}}"#);
            normalise(&crate::verify::json::read(&body).unwrap(), &[]).remove(0).map(|e| e.id)
        };
        assert_eq!(normalised(r#""statusCode": "000000""#), Ok("niobi:payin:D1:000000".to_owned()));
        assert_eq!(normalised(r#""status_code": "000006""#), Ok("niobi:payin:D1:000006".to_owned()));
        // Both sent, even with one of them null: which one the sender meant is not ours to guess.
        for both in [
            r#""statusCode": "000000", "status_code": "000006""#,
            r#""statusCode": "000000", "status_code": null"#,
            r#""statusCode": null, "status_code": "000000""#,
        ] {
            assert_eq!(normalised(both), Err(Unusable::new(Reason::UnknownShape, "params")), "{both}");
        }
    }
}
