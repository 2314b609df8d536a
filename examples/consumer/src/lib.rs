//! A reference consumer of payhooks' FIFO queues, correct under SQS's real semantics:
//!
//! - **At least once, in order per group.** Each message is applied once: its event `id` is recorded with a
//!   conditional write in the same DynamoDB transaction as its ledger change, so a redelivery, a
//!   `payhooks-admin replay` (same `id`) or a crash between two writes never applies it twice.
//! - **Partial batch failures, FIFO style.** Once a message of a group fails, every later message of that
//!   group in the batch is reported failed too, unprocessed, so the group's order holds; other groups go on.
//! - **A toy ledger driven by `transaction_status`.** A payment is credited once, when its transaction first
//!   stands `succeeded` (two events saying so credit once), and a reversal takes the credit back once.
//!   Regressions change no balance. Contradictions and `<provider>.quarantined` events go to a human.

use std::collections::HashSet;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use payhooks_events::{Data, Event, Status};

/// What applying one event does to the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing but remembering the event (a pending status, a regression, a notification).
    Record,
    /// Credit `amount` for the payment `reference` of `provider`, unless it was credited already.
    Credit { provider: String, reference: String, amount: String },
    /// Take back the credit of `reference`, unless it was taken back already.
    Reverse { provider: String, reference: String },
}

/// What the ledger did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event was new and its change is made.
    Applied,
    /// The event was seen before: nothing done.
    Duplicate,
    /// The event was new, and its payment was credited (or reversed) already by another event.
    AlreadyDone,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("not a payhooks message: {0}")]
    NotAnEvent(String),
    #[error("the ledger failed: {0}")]
    Ledger(String),
    #[error("the human queue failed: {0}")]
    Humans(String),
}

/// The consumer's own table: each event id once, and the balances.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Record `event_id` and make `change`, together or not at all.
    async fn apply(&self, event_id: &str, change: &Change) -> Result<Applied, ConsumerError>;
}

/// Where events a person must look at go.
#[async_trait]
pub trait Humans: Send + Sync {
    async fn notify(&self, event: &Event, why: &str) -> Result<(), ConsumerError>;
}

/// What an event asks of the ledger, and whether a person must see it.
pub fn decide(event: &Event) -> (Change, Option<&'static str>) {
    let data = match &event.data {
        Data::Quarantine(_) => return (Change::Record, Some("quarantined: payhooks could not read this callback")),
        Data::Event(data) => data,
    };
    if data.contradiction == Some(true) {
        return (Change::Record, Some("contradiction: this event contradicts the payment's final outcome"));
    }
    if data.regression == Some(true) {
        return (Change::Record, None);
    }
    let provider = data.provider.as_str().to_owned();
    let reference = data.reference.clone();
    match (&data.status, data.transaction_status.as_ref().and_then(Option::as_ref), &data.amount) {
        (Status::Succeeded, Some(Status::Succeeded), Some(amount)) => {
            (Change::Credit { provider, reference, amount: amount.clone() }, None)
        }
        (Status::Reversed, Some(Status::Reversed), _) => (Change::Reverse { provider, reference }, None),
        _ => (Change::Record, None),
    }
}

pub struct Consumer<L, H> {
    pub ledger: L,
    pub humans: H,
}

impl<L: Ledger, H: Humans> Consumer<L, H> {
    /// One message.
    pub async fn process(&self, message: &SqsMessage) -> Result<Applied, ConsumerError> {
        let body = message.body.as_deref().unwrap_or_default();
        let event = Event::from_json(body).map_err(|e| ConsumerError::NotAnEvent(e.to_string()))?;
        let (change, human) = decide(&event);
        // A person hears of it before it is recorded: a failure in between tells them twice (the human queue
        // deduplicates by event id), never not at all.
        if let Some(why) = human {
            self.humans.notify(&event, why).await?;
        }
        self.ledger.apply(&event.id, &change).await
    }

    /// A batch from a FIFO queue's event source mapping: the messages that failed, and after a failure every
    /// later message of the same group (unprocessed), for SQS to deliver again in order.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        let mut blocked: HashSet<String> = HashSet::new();
        for message in &event.records {
            let id = message.message_id.clone().unwrap_or_default();
            let group = message.attributes.get("MessageGroupId").cloned().unwrap_or_default();
            if blocked.contains(&group) {
                response.add_failure(id);
                continue;
            }
            match self.process(message).await {
                Ok(applied) => tracing::info!(message_id = %id, ?applied, "applied"),
                Err(e) => {
                    tracing::error!(message_id = %id, group = %group, error = %e, "failed: the rest of its group waits");
                    blocked.insert(group);
                    response.add_failure(id);
                }
            }
        }
        response
    }
}

/// The ledger in the consumer's own DynamoDB table (partition key `pk`): `seen#<event id>`, `credit#<provider>#<reference>`,
/// `reversal#<provider>#<reference>`, and `balance#<provider>` whose `amount` is a DynamoDB number (exact
/// decimal arithmetic, never a float).
pub struct DynamoDbLedger {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl DynamoDbLedger {
    fn put_new(
        &self,
        pk: String,
        extra: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
    ) -> aws_sdk_dynamodb::types::TransactWriteItem {
        use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
        let mut put = Put::builder()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(pk))
            .condition_expression("attribute_not_exists(pk)");
        for (k, v) in extra {
            put = put.item(*k, v.clone());
        }
        TransactWriteItem::builder().put(put.build().expect("table, item and condition are set")).build()
    }

    fn add_to_balance(&self, provider: &str, amount: &str) -> aws_sdk_dynamodb::types::TransactWriteItem {
        use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("balance#{provider}")))
            .update_expression("ADD amount :a")
            .expression_attribute_values(":a", AttributeValue::N(amount.to_owned()))
            .build()
            .expect("table, key and expression are set");
        TransactWriteItem::builder().update(update).build()
    }

    /// Which of the transaction's conditions failed (by position), if it was cancelled for conditions.
    async fn write(&self, items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>) -> Result<Vec<bool>, ConsumerError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        let count = items.len();
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(vec![false; count]),
            Err(e) => match e.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    let reasons = cancelled.cancellation_reasons();
                    let failed: Vec<bool> =
                        reasons.iter().map(|r| r.code() == Some("ConditionalCheckFailed")).collect();
                    if failed.iter().any(|f| *f) {
                        Ok(failed)
                    } else {
                        Err(ConsumerError::Ledger(format!("transaction cancelled: {reasons:?}")))
                    }
                }
                other => Err(ConsumerError::Ledger(error_chain(&other))),
            },
        }
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(source) = cause {
        text.push_str(&format!(": {source}"));
        cause = source.source();
    }
    text
}

#[async_trait]
impl Ledger for DynamoDbLedger {
    async fn apply(&self, event_id: &str, change: &Change) -> Result<Applied, ConsumerError> {
        use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};
        let seen = || self.put_new(format!("seen#{event_id}"), &[]);
        let items = match change {
            Change::Record => vec![seen()],
            Change::Credit { provider, reference, amount } => vec![
                seen(),
                self.put_new(
                    format!("credit#{provider}#{reference}"),
                    &[
                        ("amount", AttributeValue::N(amount.clone())),
                        ("event_id", AttributeValue::S(event_id.to_owned())),
                    ],
                ),
                self.add_to_balance(provider, amount),
            ],
            Change::Reverse { provider, reference } => {
                // The credit's amount, read in the same transaction's condition: a reversal of a payment never
                // credited changes nothing.
                let credit = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", AttributeValue::S(format!("credit#{provider}#{reference}")))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| ConsumerError::Ledger(error_chain(&e)))?;
                let Some(amount) = credit.item.and_then(|i| i.get("amount").and_then(|a| a.as_n().ok()).cloned())
                else {
                    return match self.write(vec![seen()]).await?.first() {
                        Some(true) => Ok(Applied::Duplicate),
                        _ => Ok(Applied::AlreadyDone),
                    };
                };
                let negated = amount.strip_prefix('-').map_or_else(|| format!("-{amount}"), str::to_owned);
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .key("pk", AttributeValue::S(format!("credit#{provider}#{reference}")))
                    .condition_expression("attribute_exists(pk)")
                    .build()
                    .expect("table, key and condition are set");
                vec![
                    seen(),
                    self.put_new(
                        format!("reversal#{provider}#{reference}"),
                        &[("event_id", AttributeValue::S(event_id.to_owned()))],
                    ),
                    self.add_to_balance(provider, &negated),
                    TransactWriteItem::builder().condition_check(check).build(),
                ]
            }
        };
        let failed = self.write(items).await?;
        if failed.first() == Some(&true) {
            return Ok(Applied::Duplicate);
        }
        if failed.iter().any(|f| *f) {
            // Credited (or reversed) already by another event of the payment: remember this event alone.
            return match self.write(vec![seen()]).await?.first() {
                Some(true) => Ok(Applied::Duplicate),
                _ => Ok(Applied::AlreadyDone),
            };
        }
        Ok(Applied::Applied)
    }
}

/// The human queue: an SQS FIFO queue, deduplicated by event id, carrying the event and why.
pub struct SqsHumans {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
}

#[async_trait]
impl Humans for SqsHumans {
    async fn notify(&self, event: &Event, why: &str) -> Result<(), ConsumerError> {
        let body = serde_json::json!({ "why": why, "event": event }).to_string();
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_group_id("humans")
            .message_deduplication_id(dedup_id(&event.id))
            .send()
            .await
            .map_err(|e| ConsumerError::Humans(error_chain(&e)))?;
        Ok(())
    }
}

/// An SQS deduplication id for `id`: SQS takes at most 128 characters of `[!-~]`; a longer or other id is
/// cut and told apart by a hash (FNV-1a) of the whole.
fn dedup_id(id: &str) -> String {
    if id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic()) {
        return id.to_owned();
    }
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let head: String = id.chars().filter(char::is_ascii_graphic).take(100).collect();
    format!("{head}#{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_ids_fit_sqs_and_stay_apart() {
        assert_eq!(dedup_id("niobi:payin:A:000000"), "niobi:payin:A:000000");
        let (a, b) = (format!("{}a", "x".repeat(200)), format!("{}b", "x".repeat(200)));
        assert!(dedup_id(&a).len() <= 128 && dedup_id(&a) != dedup_id(&b));
        assert!(dedup_id("a b").chars().all(|c| c.is_ascii_graphic()));
    }
}
