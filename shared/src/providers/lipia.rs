//! Lipia Online (M-Pesa STK push). Lipia signs nothing: the callback URL ends in a secret token.
//!
//! Bodies come with or without the `response` wrapper. Event id: `lipia:stk:{CheckoutRequestID}:{Status}`.

use serde::Deserialize;

use super::{amount, member, optional, parse_as, required, Ack, Context, Ingested, Route, Signer, Spec, StatusTable};
use crate::error::Rejection;
use crate::event::{NormalisedEvent, Status};
use crate::verify::json::Text;

pub(super) const SPEC: Spec = Spec { ack: Ack::PlainOk, route: Route::Token, signer: Signer::PathToken, ingest };

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

fn ingest<'a>(ctx: &Context<'_, 'a>) -> Result<Ingested<'a>, Rejection> {
    let verified = ctx.verify_path_token()?;
    let (body, members) = ctx.members()?;
    let (stk, prefix): (StkResult, &str) = match member(&members, "response") {
        Some(inner) => (parse_as(inner.get(), "response")?, "response."),
        None => (parse_as(body, "body")?, ""),
    };
    let checkout = required(&stk.checkout_request_id, &format!("{prefix}CheckoutRequestID"))?;
    let status_text = required(&stk.status, &format!("{prefix}Status"))?;
    let id = format!("lipia:stk:{checkout}:{status_text}");
    let status = status(&status_text, optional(&stk.result_code).as_deref());
    let event = NormalisedEvent::new(id, "stk", checkout, (status, Some(status_text)))
        .with_merchant_reference(optional(&stk.external_reference))
        // Lipia documents amounts "in Kenyan Shillings".
        .with_amount(amount(&stk.amount, &format!("{prefix}Amount"))?, Some("KES".to_owned()));
    Ok(Ingested { verified, body, members, events: vec![event] })
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
