//! Lipia Online (M-Pesa STK push). Lipia signs nothing: the callback URL ends in a secret token.
//!
//! Bodies come with or without the `response` wrapper. Event id: `lipia:stk:{CheckoutRequestID}:{status}`
//! (the `Status` word trimmed and lower-cased, so `Success`, `SUCCESS` and `Success ` are one event).

use serde::Deserialize;

use super::fields::{amount, as_sent, id_part, optional, optional_part, parse_as, StatusTable, Unusable};
use super::{Ack, Context, Route, Signer, Spec};
use crate::error::Rejection;
use crate::event::{NormalisedEvent, Status};
use crate::verify::json::{Document, Text};
use crate::verify::Verified;

pub(super) const SPEC: Spec =
    Spec { ack: Ack::PlainOk, route: Route::Token, signer: Signer::PathToken, authenticate, normalise };

fn authenticate(ctx: &Context<'_, '_>, _: &Document<'_>) -> Result<Verified, Rejection> {
    ctx.verify_path_token()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StkResult {
    #[serde(rename = "CheckoutRequestID")]
    checkout_request_id: Option<Text>,
    status: Option<Text>,
    result_code: Option<Text>,
    amount: Option<Text>,
    external_reference: Option<Text>,
}

fn normalise(doc: &Document<'_>) -> Vec<Result<NormalisedEvent, Unusable>> {
    let (raw, section, prefix) = match doc.member("response") {
        Some(inner) => (inner, "response", "response."),
        None => (doc.text, "body", ""),
    };
    vec![parse_as(raw, section).and_then(|stk| event(&stk, prefix))]
}

fn event(stk: &StkResult, prefix: &str) -> Result<NormalisedEvent, Unusable> {
    let checkout = id_part(&stk.checkout_request_id, &format!("{prefix}CheckoutRequestID"))?;
    let sent = id_part(&stk.status, &format!("{prefix}Status"))?;
    let word = sent.to_ascii_lowercase();
    let id = format!("lipia:stk:{checkout}:{word}");
    let status = status(&word, optional(&stk.result_code));
    let provider_status = Some(as_sent(&stk.status, &sent));
    Ok(NormalisedEvent::new(id, "stk", checkout, (status, provider_status))
        .with_merchant_reference(optional_part(&stk.external_reference, &format!("{prefix}ExternalReference"))?)
        // Lipia documents amounts "in Kenyan Shillings".
        .with_amount(amount(&stk.amount, &format!("{prefix}Amount"))?, Some("KES".to_owned())))
}

const WORDS: StatusTable = StatusTable(&[
    (Status::Succeeded, &["success"]),
    (Status::Failed, &["failed", "failure", "cancelled"]),
    (Status::Pending, &["pending"]),
]);

/// `Success` is a success only if `ResultCode` (when sent) agrees that it is 0; a disagreement is `unknown`.
fn status(status: &str, result_code: Option<&str>) -> Status {
    match (WORDS.get(Some(status)), result_code) {
        (Status::Succeeded, None | Some("0")) => Status::Succeeded,
        (Status::Succeeded, Some(_)) => Status::Unknown,
        (other, _) => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_needs_a_zero_result_code() {
        assert_eq!(status("Success", Some("0")), Status::Succeeded);
        assert_eq!(status("Success", None), Status::Succeeded);
        assert_eq!(status("Success", Some("1032")), Status::Unknown);
        assert_eq!(status("Failed", Some("1")), Status::Failed);
        assert_eq!(status("Weird", Some("0")), Status::Unknown);
    }
}
