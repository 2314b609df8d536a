//! Lipia Online (M-Pesa STK push). Lipia signs nothing: the callback URL ends in a secret token.
//!
//! Bodies come with or without the `response` wrapper. Event id: `lipia:stk:{CheckoutRequestID}:{Status}`.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{amount, optional, parse_as, required, Context, Ingested};
use crate::error::Rejection;
use crate::event::{NormalisedEvent, Status};
use crate::json::Text;

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

pub(crate) fn ingest<'a>(ctx: &Context<'_, 'a>) -> Result<Ingested<'a>, Rejection> {
    let verified = ctx.verify_path_token()?;
    let (body, members) = ctx.members()?;
    let wrapped: Option<&RawValue> = members.iter().find(|(k, _)| k == "response").map(|(_, v)| *v);
    let (stk, prefix): (StkResult, &str) = match wrapped {
        Some(inner) => (parse_as(inner.get(), "response")?, "response."),
        None => (parse_as(body, "body")?, ""),
    };
    let checkout = required(&stk.checkout_request_id, &format!("{prefix}CheckoutRequestID"))?;
    let status_text = required(&stk.status, &format!("{prefix}Status"))?;
    let event = NormalisedEvent {
        id: format!("lipia:stk:{checkout}:{status_text}"),
        kind: "stk".to_owned(),
        subject: checkout.clone(),
        reference: checkout,
        merchant_reference: optional(&stk.external_reference),
        status: status(&status_text, optional(&stk.result_code).as_deref()),
        provider_status: Some(status_text),
        amount: amount(&stk.amount, &format!("{prefix}Amount"))?,
        // Lipia documents amounts "in Kenyan Shillings".
        currency: Some("KES".to_owned()),
        batch_index: None,
    };
    Ok((verified, body, members, vec![event]))
}

/// `Success` is a success only if `ResultCode` (when sent) agrees that it is 0; a disagreement is `unknown`.
fn status(status: &str, result_code: Option<&str>) -> Status {
    match (status.to_ascii_lowercase().as_str(), result_code) {
        ("success", None | Some("0")) => Status::Succeeded,
        ("success", Some(_)) => Status::Unknown,
        ("failed" | "failure" | "cancelled", _) => Status::Failed,
        ("pending", _) => Status::Pending,
        _ => Status::Unknown,
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
