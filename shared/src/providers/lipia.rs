//! Lipia Online (M-Pesa STK push). Lipia signs nothing: the callback URL ends in a secret token.
//!
//! Bodies come with or without the `response` wrapper. Event id: `lipia:stk:{CheckoutRequestID}:{status}`
//! (the `Status` word trimmed and lower-cased, so `Success`, `SUCCESS` and `Success ` are one event).

use super::contract::{Ack, Authenticate, Context, Route, Signer, Spec};
use super::fields::{model, StatusTable, Unusable};
use crate::error::Rejection;
use crate::event::{event_id, Facts, NormalisedEvent, Status};
use crate::verify::canonical::Ambiguity;
use crate::verify::json::{Document, Value};
use crate::verify::Verified;

pub(super) const SPEC: Spec = Spec {
    settings: &[],
    typical: ("stk_success", "ws_CO_22112025101500123456"),
    registration: "Lipia signs nothing: the token at the end of the URL is the secret, the first value of the secret parameter. Rotating it changes the URL: put `new,old` in the parameter, give Lipia the new URL, drop `old` once its callbacks stop.",
    ack: Ack::PlainOk,
    route: Route::Token,
    signer: Signer::PathToken,
    authenticate: Authenticate::Request(authenticate),
    normalise,
};

fn authenticate(ctx: &Context<'_, '_>) -> Result<Verified, Rejection> {
    ctx.verify_path_token()
}

model!(StkResult {
    checkout_request_id: "CheckoutRequestID",
    status: "Status",
    result_code: "ResultCode",
    amount: "Amount",
    external_reference: "ExternalReference",
} facts {
    mpesa_receipt_number: "MpesaReceiptNumber",
});

fn normalise(doc: &Document<'_>, _: &[Ambiguity]) -> Vec<Result<NormalisedEvent, Unusable>> {
    let read = match doc.field("response") {
        Value::Absent => StkResult::read(doc.root(), "body", ""),
        wrapped => StkResult::read(wrapped, "response", "response"),
    };
    vec![read.and_then(|stk| event(&stk))]
}

fn event(stk: &StkResult<'_>) -> Result<NormalisedEvent, Unusable> {
    let checkout = stk.checkout_request_id.id_part()?;
    let sent = stk.status.id_part()?;
    let word = sent.to_ascii_lowercase();
    let id = event_id(&["lipia", "stk", &checkout, &word]);
    let status = status(&word, stk.result_code.optional());
    let provider_status = Some(stk.status.as_sent(&sent));
    Ok(NormalisedEvent::new(id, "stk", checkout, (status, provider_status))
        .with_merchant_reference(stk.external_reference.optional_part()?)
        // Lipia documents amounts "in Kenyan Shillings".
        .with_amount(stk.amount.amount()?, Some("KES".to_owned()))
        // The M-Pesa receipt (successes only); the payer is a phone number, personal data left in the payload.
        .with_facts(Facts { provider_reference: stk.mpesa_receipt_number.fact(), ..Facts::default() }))
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
