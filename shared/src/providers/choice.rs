//! Choice Bank BaaS (Kenya): every notification type in the callback document.
//!
//! Envelope `{requestId, sender, locale, timestamp (ms), notificationType, params, salt, signature}`; body
//! `signature` = lowercase hex SHA-256 of the canonical string with the private key as `senderKey`.
//! Event id: `choice:{notificationType}:{requestId}`; batch notifications (0004, 0008, 0014) give one event
//! per `params.resultArray` item, `choice:{notificationType}:{requestId}:{index}`.
//! Types this module does not know are still accepted, as `notification_<type>` with status `unknown`.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{amount, optional, parse_as, required, Context, Ingested};
use crate::error::Rejection;
use crate::event::{NormalisedEvent, Status};
use crate::json::{self, Text};
use crate::signing::CanonicalHash;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    request_id: Option<Text>,
    notification_type: Option<Text>,
}

/// The `params` fields (and `resultArray` item fields) that identify and classify a notification.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Params {
    tx_id: Option<Text>,
    tx_status: Option<Text>,
    status: Option<Text>,
    #[serde(rename = "type")]
    change_type: Option<Text>,
    profile_check_status: Option<Text>,
    amount: Option<Text>,
    transfer_amount: Option<Text>,
    currency: Option<Text>,
    debit_account_ccy: Option<Text>,
    merchant_tx_id: Option<Text>,
    payment_id: Option<Text>,
    application_id: Option<Text>,
    onboarding_request_id: Option<Text>,
    user_id: Option<Text>,
    account_id: Option<Text>,
    deposit_account_id: Option<Text>,
    job_id: Option<Text>,
    business_id: Option<Text>,
    request_id: Option<Text>,
}

pub(crate) fn ingest<'a>(ctx: &Context<'_, 'a>) -> Result<Ingested<'a>, Rejection> {
    let (body, members) = ctx.members()?;
    let verified = ctx.verify_canonical(&members, CanonicalHash::Sha256, "choice-sha256")?;
    let head: Notification = parse_as(body, "body")?;
    let request_id = required(&head.request_id, "requestId")?;
    let ntype = required(&head.notification_type, "notificationType")?;
    let params_raw =
        members.iter().find(|(k, _)| k == "params").map(|(_, v)| v.get()).ok_or(Rejection::missing("params"))?;

    let events = if matches!(ntype.as_str(), "0004" | "0008" | "0014") {
        let items_raw = json::object_members(params_raw)?
            .into_iter()
            .find(|(k, _)| k == "resultArray")
            .map(|(_, v)| v)
            .ok_or(Rejection::missing("params.resultArray"))?;
        let items: Vec<&RawValue> = parse_as(items_raw.get(), "params.resultArray")?;
        items
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                let field = format!("params.resultArray[{i}]");
                let item: Params = parse_as(raw.get(), &field)?;
                let mut event = classify(&ntype, &request_id, &item, &field)?;
                event.id = format!("choice:{ntype}:{request_id}:{i}");
                event.batch_index = Some(i);
                Ok(event)
            })
            .collect::<Result<Vec<_>, Rejection>>()?
    } else {
        let params: Params = parse_as(params_raw, "params")?;
        let mut event = classify(&ntype, &request_id, &params, "params")?;
        event.id = format!("choice:{ntype}:{request_id}");
        vec![event]
    };
    Ok((verified, body, members, events))
}

/// Kind, status, reference and amount of one notification (or batch item). `id` is set by the caller.
fn classify(ntype: &str, request_id: &str, p: &Params, at: &str) -> Result<NormalisedEvent, Rejection> {
    let txn_status = |v: &Option<Text>| (tx_status(optional(v).as_deref()), optional(v));
    let onboarding = || (onboarding_status(optional(&p.status).as_deref()), optional(&p.status));
    let (kind, (status, provider_status), reference): (&str, (Status, Option<String>), Option<String>) = match ntype {
        "0001" => ("onboarding", onboarding(), optional(&p.onboarding_request_id).or(optional(&p.user_id))),
        "0002" => ("transaction", txn_status(&p.tx_status), optional(&p.tx_id)),
        "0003" => ("balance_change", (Status::Succeeded, None), optional(&p.tx_id)),
        "0004" | "0008" => {
            ("bulk_transfer", txn_status(&p.tx_status), optional(&p.tx_id).or(optional(&p.merchant_tx_id)))
        }
        "0005" => ("wallet_upgrade", onboarding(), optional(&p.onboarding_request_id).or(optional(&p.user_id))),
        "0006" => ("sme_account_opening", onboarding(), optional(&p.onboarding_request_id).or(optional(&p.user_id))),
        "0007" => (
            "utility_payment",
            (word_status(&p.status), optional(&p.status)),
            optional(&p.tx_id).or(optional(&p.payment_id)),
        ),
        "0012" => (
            "account_opening",
            (numbered(&p.status, &[("3", Status::Succeeded), ("4", Status::Failed)]), optional(&p.status)),
            optional(&p.application_id),
        ),
        // 0013 and 0028 statuses are integers Choice has not documented: kept as provider_status, `unknown`.
        "0013" => ("fx", (Status::Unknown, optional(&p.status)), optional(&p.application_id)),
        "0014" => (
            "airtime_purchase",
            (word_status(&p.status), optional(&p.status)),
            optional(&p.tx_id).or(optional(&p.payment_id)),
        ),
        "0015" => ("file_job", (Status::State("ready"), None), optional(&p.job_id)),
        "0016" => ("interest_disbursement", (Status::Succeeded, None), None),
        "0019" => (
            "account_closure",
            (
                numbered(&p.status, &[("1", Status::State("closed")), ("2", Status::State("rejected"))]),
                optional(&p.status),
            ),
            optional(&p.request_id).or(optional(&p.account_id)),
        ),
        "0020" => ("otp", (Status::State("received"), None), optional(&p.business_id)),
        "0021" => ("account_status_change", (account_state(p), optional(&p.status)), optional(&p.account_id)),
        "0022" => ("merchant_balance_change", (Status::Succeeded, None), optional(&p.tx_id)),
        "0023" => (
            "interbank_transfer",
            (word_status(&p.status), optional(&p.status)),
            optional(&p.tx_id).or(optional(&p.application_id)),
        ),
        "0024" => (
            "profile_check",
            (
                match optional(&p.profile_check_status).map(|s| s.to_ascii_lowercase()).as_deref() {
                    Some("validated") => Status::State("validated"),
                    Some("declined") => Status::State("declined"),
                    _ => Status::Unknown,
                },
                optional(&p.profile_check_status),
            ),
            optional(&p.onboarding_request_id),
        ),
        "0025" => (
            "fixed_deposit",
            (
                numbered(
                    &p.status,
                    &[("1", Status::Pending), ("2", Status::Pending), ("3", Status::Succeeded), ("4", Status::Failed)],
                ),
                optional(&p.status),
            ),
            optional(&p.application_id).or(optional(&p.deposit_account_id)),
        ),
        "0028" => ("cny_transfer", (Status::Unknown, optional(&p.status)), optional(&p.application_id)),
        _ => ("", (Status::Unknown, optional(&p.status).or(optional(&p.tx_status))), optional(&p.tx_id)),
    };
    let kind = if kind.is_empty() { format!("notification_{ntype}") } else { kind.to_owned() };
    let (amount_field, amount_value, currency) = if ntype == "0023" {
        ("transferAmount", &p.transfer_amount, optional(&p.debit_account_ccy))
    } else {
        ("amount", &p.amount, optional(&p.currency))
    };
    let reference = reference.unwrap_or_else(|| request_id.to_owned());
    Ok(NormalisedEvent {
        id: String::new(),
        kind,
        subject: reference.clone(),
        reference,
        merchant_reference: optional(&p.merchant_tx_id),
        status,
        provider_status,
        amount: amount(amount_value, &format!("{at}.{amount_field}"))?,
        currency,
        batch_index: None,
    })
}

/// Transaction status (0002, 0004, 0008): 1 pending (awaiting OTP), 2 processing, 4 failed, 8 success,
/// -1 timeout (terminal, distinct from failed).
fn tx_status(code: Option<&str>) -> Status {
    match code {
        Some("1" | "2") => Status::Pending,
        Some("4") => Status::Failed,
        Some("8") => Status::Succeeded,
        Some("-1") => Status::Timeout,
        _ => Status::Unknown,
    }
}

/// Onboarding status (0001, 0005, 0006), as documented.
fn onboarding_status(code: Option<&str>) -> Status {
    Status::State(match code {
        Some("0") => "not_submitted",
        Some("1") => "submitted",
        Some("2") => "processing",
        Some("3") => "passed",
        Some("4") => "rejected",
        Some("5") => "account_closed",
        Some("6") => "waiting_for_account_opening",
        Some("7") => "account_opened",
        Some("8") => "account_opening_failed",
        Some("9") => "manual_reviewing",
        _ => return Status::Unknown,
    })
}

/// 0021: `type` 1 = freeze status (1 unfrozen, 2 frozen), 2 = dormant status (1 active, 2 dormant).
fn account_state(p: &Params) -> Status {
    match (optional(&p.change_type).as_deref(), optional(&p.status).as_deref()) {
        (Some("1"), Some("1")) => Status::State("unfrozen"),
        (Some("1"), Some("2")) => Status::State("frozen"),
        (Some("2"), Some("1")) => Status::State("active"),
        (Some("2"), Some("2")) => Status::State("dormant"),
        _ => Status::Unknown,
    }
}

fn numbered(value: &Option<Text>, table: &[(&str, Status)]) -> Status {
    let code = optional(value);
    table.iter().find(|(c, _)| Some(*c) == code.as_deref()).map(|(_, s)| *s).unwrap_or(Status::Unknown)
}

/// String statuses Choice has not enumerated (0007, 0014, 0023): the usual words, else `unknown`.
fn word_status(value: &Option<Text>) -> Status {
    match optional(value).map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("success" | "successful" | "succeeded" | "completed") => Status::Succeeded,
        Some("failed" | "failure" | "fail") => Status::Failed,
        Some("pending" | "processing" | "submitted") => Status::Pending,
        Some("refunded" | "reversed") => Status::Reversed,
        _ => Status::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_status_table() {
        assert_eq!(tx_status(Some("8")), Status::Succeeded);
        assert_eq!(tx_status(Some("4")), Status::Failed);
        assert_eq!(tx_status(Some("-1")), Status::Timeout);
        assert_eq!(tx_status(Some("1")), Status::Pending);
        assert_eq!(tx_status(Some("3")), Status::Unknown);
        assert_eq!(tx_status(None), Status::Unknown);
    }

    #[test]
    fn onboarding_and_account_states() {
        assert_eq!(onboarding_status(Some("7")).as_str(), "account_opened");
        assert_eq!(onboarding_status(Some("10")), Status::Unknown);
        let p = Params { change_type: Some(Text("1".into())), status: Some(Text("2".into())), ..Default::default() };
        assert_eq!(account_state(&p).as_str(), "frozen");
    }
}
