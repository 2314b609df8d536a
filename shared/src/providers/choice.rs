//! Choice Bank BaaS (Kenya): every notification type in the callback document.
//!
//! Envelope `{requestId, sender, locale, timestamp (ms), notificationType, params, salt, signature}`; body
//! `signature` = lowercase hex SHA-256 of the canonical string with the private key as `senderKey`.
//! Event id: `choice:{notificationType}:{requestId}`; batch notifications (0004, 0008, 0014) give one event
//! per `params.resultArray` item, `choice:{notificationType}:{requestId}:{index}`.
//! Types this module does not know are still accepted, as `notification_<type>` with status `unknown`.

use std::borrow::Cow;

use super::contract::{section, unusable, Ack, Authenticate, Context, Route, Setting, Signer, Spec};
use super::fields::{model, Field, Reason, StatusTable, Unusable};
use crate::error::Rejection;
use crate::event::{event_id, Facts, NormalisedEvent, Status};
use crate::verify::canonical::Ambiguity;
use crate::verify::json::{Document, Segment, Value};
use crate::verify::signing::CanonicalHash;
use crate::verify::{Scheme, Verified};

pub(super) const SPEC: Spec = Spec {
    settings: &[Setting::CanonicalDialects],
    typical: ("0002_transaction", "BAAS000220251122000001"),
    registration: "Give the URL to Choice (it takes 8-10 hours to activate a new one). The secret parameter holds the private key Choice issued (the senderKey every callback is signed with).",
    ack: Ack::PlainOk,
    route: Route::Plain,
    signer: Signer::CanonicalMillis,
    authenticate: Authenticate::Body(authenticate),
    normalise,
};

fn authenticate(ctx: &Context<'_, '_>, doc: &Document<'_>) -> Result<Verified, Rejection> {
    ctx.verify_canonical(doc, CanonicalHash::Sha256, Scheme::CanonicalSha256Millis)
}

/// Notification types whose `params.resultArray` holds one event per item.
const BATCH_TYPES: [&str; 3] = ["0004", "0008", "0014"];

model!(
    /// The `params` fields (and `resultArray` item fields) that identify and classify a notification.
    Params {
        tx_id: "txId",
        tx_status: "txStatus",
        status: "status",
        change_type: "type",
        profile_check_status: "profileCheckStatus",
        amount: "amount",
        transfer_amount: "transferAmount",
        currency: "currency",
        debit_account_ccy: "debitAccountCcy",
        merchant_tx_id: "merchantTxId",
        payment_id: "paymentId",
        application_id: "applicationId",
        onboarding_request_id: "onboardingRequestId",
        user_id: "userId",
        account_id: "accountId",
        deposit_account_id: "depositAccountId",
        job_id: "jobId",
        business_id: "businessId",
        request_id: "requestId",
    }
    facts {
        fee_amount: "feeAmount",
        external_tx_id: "externalTxId",
        update_time: "updateTime",
        oppo_channel_id: "oppoChannelId",
    }
);

fn normalise(doc: &Document<'_>, ambiguities: &[Ambiguity]) -> Vec<Result<NormalisedEvent, Unusable>> {
    // An ambiguity that reaches only batch items withholds those items; any other, the whole callback.
    let ambiguous_items = ambiguous_items(ambiguities);
    if let (None, Some(ambiguity)) = (&ambiguous_items, ambiguities.first()) {
        return unusable(Unusable::new(Reason::AmbiguousSignature, &ambiguity.why));
    }
    let head = Field::top(doc, "requestId")
        .id_part()
        .and_then(|r| Ok((r, Field::top(doc, "notificationType").id_part()?, section(doc, "params")?)));
    let (request_id, ntype, params) = match head {
        Ok(head) => head,
        Err(why) => return unusable(why),
    };
    if BATCH_TYPES.contains(&ntype.as_str()) {
        return batch_events(&ntype, &request_id, params, &ambiguous_items.unwrap_or_default());
    }
    if let Some(ambiguity) = ambiguities.first() {
        return unusable(Unusable::new(Reason::AmbiguousSignature, &ambiguity.why));
    }
    let id = event_id(&["choice", &ntype, &request_id]);
    vec![Params::read(params, "params", "params").and_then(|p| event(&ntype, &request_id, &p, id))]
}

/// The batch items every ambiguity reaches (each with why), if every path each may write is inside one item
/// (`params.resultArray[i]...`); `None` if one reaches anything else.
fn ambiguous_items(ambiguities: &[Ambiguity]) -> Option<Vec<(usize, &str)>> {
    let item_of = |path: &str| -> Option<usize> {
        let rest = path.strip_prefix("params.resultArray[")?;
        let (index, after) = rest.split_once(']')?;
        (after.is_empty() || after.starts_with('.')).then_some(())?;
        index.parse().ok()
    };
    let mut items = Vec::new();
    for ambiguity in ambiguities {
        for path in &ambiguity.reach {
            items.push((item_of(path)?, ambiguity.why.as_str()));
        }
    }
    Some(items)
}

/// One event per `params.resultArray` item; a bad item (or one an ambiguity reaches) is unusable on its own,
/// an empty batch as a whole.
fn batch_events(
    ntype: &str,
    request_id: &str,
    params: Value<'_, '_>,
    ambiguous: &[(usize, &str)],
) -> Vec<Result<NormalisedEvent, Unusable>> {
    let Some(params) = params.object() else { return unusable(Unusable::new(Reason::UnknownShape, "params")) };
    let [result_array] = params.fields(["resultArray"]);
    let items = match result_array {
        Value::Absent | Value::Null => return unusable(Unusable::new(Reason::MissingField, "params.resultArray")),
        Value::Array(items) => items,
        _ => return unusable(Unusable::new(Reason::UnknownShape, "params")),
    };
    // Each item by its index as sent: an item a dialect did not sign (a `null` or `{}`) is absent, and the
    // others keep their ids.
    let item_event = |(step, item): (Segment<'_>, Value<'_, '_>)| {
        let Segment::Index(i) = step else { return Err(Unusable::new(Reason::UnknownShape, "params.resultArray")) };
        if let Some(&(_, why)) = ambiguous.iter().find(|(item, _)| *item == i) {
            return Err(Unusable::new(Reason::AmbiguousSignature, why));
        }
        let at = format!("params.resultArray[{i}]");
        let item = Params::read(item, &at, &at)?;
        Ok(event(ntype, request_id, &item, format!("choice:{ntype}:{request_id}:{i}"))?.with_batch_index(i))
    };
    let events: Vec<_> = items.children().map(item_event).collect();
    if events.is_empty() {
        return unusable(Unusable::new(Reason::EmptyBatch, "params.resultArray"));
    }
    events
}

/// The complete event for one notification (or batch item).
fn event(ntype: &str, request_id: &str, p: &Params<'_>, id: String) -> Result<NormalisedEvent, Unusable> {
    let reference = reference(ntype, p)?.unwrap_or_else(|| request_id.to_owned());
    let (amount, currency) =
        if ntype == "0023" { (p.transfer_amount, p.debit_account_ccy) } else { (p.amount, p.currency) };
    let currency = currency.optional_part()?;
    Ok(NormalisedEvent::new(id, kind(ntype), reference, status(ntype, p)?)
        .with_merchant_reference(p.merchant_tx_id.optional_part()?)
        .with_amount(amount.amount()?, currency)
        .with_facts(Facts {
            fee: p.fee_amount.fact_amount(),
            // The rail's own id (the M-Pesa receipt of an M-Pesa leg).
            provider_reference: p.external_tx_id.fact(),
            provider_time: p.update_time.fact(),
            counterparty: p.oppo_channel_id.fact(),
        }))
}

/// What a notification type is about; an unknown type is kept as `notification_<type>`.
fn kind(ntype: &str) -> Cow<'static, str> {
    Cow::Borrowed(match ntype {
        "0001" => "onboarding",
        "0002" => "transaction",
        "0003" => "balance_change",
        "0004" | "0008" => "bulk_transfer",
        "0005" => "wallet_upgrade",
        "0006" => "sme_account_opening",
        "0007" => "utility_payment",
        "0012" => "account_opening",
        "0013" => "fx",
        "0014" => "airtime_purchase",
        "0015" => "file_job",
        "0016" => "interest_disbursement",
        "0019" => "account_closure",
        "0020" => "otp",
        "0021" => "account_status_change",
        "0022" => "merchant_balance_change",
        "0023" => "interbank_transfer",
        "0024" => "profile_check",
        "0025" => "fixed_deposit",
        "0028" => "cny_transfer",
        _ => return Cow::Owned(format!("notification_{ntype}")),
    })
}

/// The normalised status and the provider's status text it was read from.
fn status(ntype: &str, p: &Params<'_>) -> Result<(Status, Option<String>), Unusable> {
    let read = |table: &StatusTable, field: &Field<'_>| {
        let text = field.optional_part()?;
        Ok((table.get(text.as_deref()), text))
    };
    let unknown = |field: &Field<'_>| Ok((Status::Unknown, field.optional_part()?));
    match ntype {
        "0001" | "0005" | "0006" => read(&ONBOARDING, &p.status),
        "0002" | "0004" | "0008" => read(&TRANSACTION, &p.tx_status),
        "0003" | "0016" | "0022" => Ok((Status::Succeeded, None)),
        "0007" | "0014" | "0023" => read(&WORDS, &p.status),
        "0012" => read(&ACCOUNT_OPENING, &p.status),
        // 0013 and 0028 statuses are integers Choice has not documented: kept as provider_status, `unknown`.
        "0013" | "0028" => unknown(&p.status),
        "0015" => Ok((Status::State("ready"), None)),
        "0019" => read(&ACCOUNT_CLOSURE, &p.status),
        "0020" => Ok((Status::State("received"), None)),
        "0021" => Ok((account_state(p), p.status.optional_part()?)),
        "0024" => read(&PROFILE_CHECK, &p.profile_check_status),
        "0025" => read(&FIXED_DEPOSIT, &p.status),
        _ if p.status.optional().is_some() => unknown(&p.status),
        _ => unknown(&p.tx_status),
    }
}

/// The transaction or subject reference, where the type carries one (else the request id is used).
fn reference(ntype: &str, p: &Params<'_>) -> Result<Option<String>, Unusable> {
    let first = |fields: &[Field<'_>]| {
        for field in fields {
            if let Some(found) = field.optional_part()? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    };
    match ntype {
        "0001" | "0005" | "0006" => first(&[p.onboarding_request_id, p.user_id]),
        "0004" | "0008" => first(&[p.tx_id, p.merchant_tx_id]),
        "0007" | "0014" => first(&[p.tx_id, p.payment_id]),
        "0012" | "0013" | "0028" => first(&[p.application_id]),
        "0015" => first(&[p.job_id]),
        "0016" => Ok(None),
        "0019" => first(&[p.request_id, p.account_id]),
        "0020" => first(&[p.business_id]),
        "0021" => first(&[p.account_id]),
        "0023" => first(&[p.tx_id, p.application_id]),
        "0024" => first(&[p.onboarding_request_id]),
        "0025" => first(&[p.application_id, p.deposit_account_id]),
        _ => first(&[p.tx_id]),
    }
}

/// Transaction status (0002, 0004, 0008): 1 pending (awaiting OTP), 2 processing, 4 failed, 8 success,
/// -1 timeout. Choice's -1 is terminal (the transaction will not complete: no money moved), unlike a payhooks
/// `timeout`, which means "not final yet, wait" (Niobi's 000006). So -1 is the final outcome `failed`, with
/// `provider_status` "-1" telling it apart from 4, and a later success for it is a contradiction.
const TRANSACTION: StatusTable =
    StatusTable(&[(Status::Pending, &["1", "2"]), (Status::Failed, &["4", "-1"]), (Status::Succeeded, &["8"])]);

/// Onboarding status (0001, 0005, 0006), as documented.
const ONBOARDING: StatusTable = StatusTable(&[
    (Status::State("not_submitted"), &["0"]),
    (Status::State("submitted"), &["1"]),
    (Status::State("processing"), &["2"]),
    (Status::State("passed"), &["3"]),
    (Status::State("rejected"), &["4"]),
    (Status::State("account_closed"), &["5"]),
    (Status::State("waiting_for_account_opening"), &["6"]),
    (Status::State("account_opened"), &["7"]),
    (Status::State("account_opening_failed"), &["8"]),
    (Status::State("manual_reviewing"), &["9"]),
]);

/// String statuses Choice has not enumerated (0007, 0014, 0023): the usual words, else `unknown`.
const WORDS: StatusTable = StatusTable(&[
    (Status::Succeeded, &["success", "successful", "succeeded", "completed"]),
    (Status::Failed, &["failed", "failure", "fail"]),
    (Status::Pending, &["pending", "processing", "submitted"]),
    (Status::Reversed, &["refunded", "reversed"]),
]);

const ACCOUNT_OPENING: StatusTable = StatusTable(&[(Status::Succeeded, &["3"]), (Status::Failed, &["4"])]);
const ACCOUNT_CLOSURE: StatusTable =
    StatusTable(&[(Status::State("closed"), &["1"]), (Status::State("rejected"), &["2"])]);
const PROFILE_CHECK: StatusTable =
    StatusTable(&[(Status::State("validated"), &["validated"]), (Status::State("declined"), &["declined"])]);
const FIXED_DEPOSIT: StatusTable =
    StatusTable(&[(Status::Pending, &["1", "2"]), (Status::Succeeded, &["3"]), (Status::Failed, &["4"])]);

/// 0021: `type` 1 = freeze status (1 unfrozen, 2 frozen), 2 = dormant status (1 active, 2 dormant).
fn account_state(p: &Params<'_>) -> Status {
    match (p.change_type.optional(), p.status.optional()) {
        (Some("1"), Some("1")) => Status::State("unfrozen"),
        (Some("1"), Some("2")) => Status::State("frozen"),
        (Some("2"), Some("1")) => Status::State("active"),
        (Some("2"), Some("2")) => Status::State("dormant"),
        _ => Status::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_status_table() {
        assert_eq!(TRANSACTION.get(Some("8")), Status::Succeeded);
        assert_eq!(TRANSACTION.get(Some("4")), Status::Failed);
        assert_eq!(TRANSACTION.get(Some("-1")), Status::Failed, "terminal: no money moved");
        assert_eq!(TRANSACTION.get(Some("1")), Status::Pending);
        assert_eq!(TRANSACTION.get(Some("3")), Status::Unknown);
        assert_eq!(TRANSACTION.get(None), Status::Unknown);
    }

    #[test]
    fn onboarding_and_account_states() {
        assert_eq!(ONBOARDING.get(Some("7")).as_str(), "account_opened");
        assert_eq!(ONBOARDING.get(Some("10")), Status::Unknown);
        let doc = crate::verify::json::read(r#"{"type": 1, "status": "2"}"#).unwrap();
        let p = Params::read(doc.root(), "params", "params").unwrap();
        assert_eq!(account_state(&p).as_str(), "frozen");
    }

    #[test]
    fn an_ambiguity_withholds_every_item_its_other_reading_reaches_or_the_whole_callback() {
        let doc = crate::verify::json::read_signed(
            r#"{"params":{"resultArray":[{"a":"1"},{"x":"v&params.resultArray[3].a&params.resultArray[1].b=1"}]}}"#,
        )
        .unwrap();
        let ambiguity = |reach: &[&str]| Ambiguity {
            path: "params.resultArray[1].x".into(),
            reach: reach.iter().map(|p| p.to_string()).collect(),
            why: "w".into(),
        };
        // The keys a piece of that value could have reach item 3 (across the `&`) and item 1.
        let found = crate::verify::canonical::second_readings(&doc, crate::verify::Dialect::Postman);
        let reach: Vec<&str> = found.iter().flat_map(|a| a.reach.iter().map(String::as_str)).collect();
        assert!(reach.contains(&"params.resultArray[3].a&params.resultArray[1].b"), "{reach:?}");
        let items = |reach: &[&str]| {
            ambiguous_items(&[ambiguity(reach)]).map(|v| v.into_iter().map(|(i, _)| i).collect::<Vec<_>>())
        };
        assert_eq!(items(&["params.resultArray[1].x", "params.resultArray[3].a&z"]), Some(vec![1, 3]));
        assert_eq!(items(&["params.resultArray[1].x", "zz"]), None, "a key outside the items: the whole callback");
        assert_eq!(items(&["params.resultArray[10x].a"]), None);
    }

    #[test]
    fn unknown_types_keep_their_number() {
        assert_eq!(kind("0027"), "notification_0027");
        assert_eq!(kind("0002"), "transaction");
    }
}
