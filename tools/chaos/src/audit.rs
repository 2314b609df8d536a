//! The audit after the final sweep: what reached the queues against what the providers sent and what
//! payhooks acknowledged.

use std::collections::{BTreeMap, HashMap, HashSet};

use payhooks::aws::attribute;
use payhooks::state::PaymentStatus;

use crate::traffic::Payment;

/// A message read from a queue.
#[derive(Debug, Clone)]
pub struct Message {
    pub queue: String,
    pub event_id: String,
    pub transaction_status: Option<String>,
    pub sent_ms: i64,
}

/// What the soak knows of what was sent: every record a callback stands for, and those acknowledged.
#[derive(Debug, Default)]
pub struct Sent {
    /// Every record id some callback carried (acknowledged or not).
    pub carried: HashSet<String>,
    /// Every record id of an acknowledged callback.
    pub acknowledged: HashSet<String>,
    /// Every record id of a send not acknowledged (the process crashed, or a 5xx): a delivery that may have
    /// sent its message and not marked its record, the one way to the documented exception.
    pub interrupted: HashSet<String>,
    /// Every payment event some callback carried.
    pub payments: HashMap<String, Payment>,
}

/// The audit's findings.
#[derive(Debug, Default)]
pub struct Findings {
    /// Acknowledged, and not on its queue.
    pub lost: Vec<String>,
    /// On a queue more than once, the copies further apart than SQS FIFO's deduplication window, and some
    /// send of the id interrupted: the one documented exception (a message accepted, its mark not made, and
    /// the retry came after the window).
    pub explained_extra: Vec<String>,
    /// On a queue more than once, within the window or with no send of the id interrupted: never expected.
    pub unexplained_extra: Vec<String>,
    /// When each copy of an id on a queue more than once was sent (ms), for both kinds of extra.
    pub extra_copies: BTreeMap<String, Vec<i64>>,
    /// On a queue, though no callback carried it.
    pub unknown: Vec<String>,
    /// Transactions whose last message's `transaction_status` is not what its events' ranks imply.
    pub wrong_state: Vec<String>,
    /// Records still `RECEIVED` after the final sweep.
    pub received: usize,
    pub messages: usize,
}

impl Findings {
    pub fn passed(&self) -> bool {
        self.lost.is_empty()
            && self.unexplained_extra.is_empty()
            && self.unknown.is_empty()
            && self.wrong_state.is_empty()
            && self.received == 0
    }
}

impl Findings {
    /// Each failure, its first few ids.
    pub fn print_failures(&self) {
        let show = |what: &str, ids: &[String]| {
            if !ids.is_empty() {
                println!("{what} ({}): {}", ids.len(), ids.iter().take(10).cloned().collect::<Vec<_>>().join(", "));
            }
        };
        show("lost", &self.lost);
        show("unexplained extra", &self.unexplained_extra);
        self.print_copies(&self.unexplained_extra);
        show("unknown", &self.unknown);
        show("wrong transaction state", &self.wrong_state);
        if self.received > 0 {
            println!("left RECEIVED: {}", self.received);
        }
    }

    /// When each copy of the first few `ids` was sent, from the first one's time: what to look up in the
    /// functions' logs (`<provider>.log`, `sweeper.log`) beside the history.
    pub fn print_copies(&self, ids: &[String]) {
        for id in ids.iter().take(10) {
            let times = self.extra_copies.get(id).map(Vec::as_slice).unwrap_or_default();
            let first = times.first().copied().unwrap_or_default();
            let after: Vec<String> = times.iter().map(|t| format!("+{} s", (t - first) / 1000)).collect();
            println!("  {id}: {} copies sent at {}", times.len(), after.join(", "));
        }
    }
}

/// SQS FIFO's deduplication window.
pub const DEDUPLICATION_WINDOW_MS: i64 = 5 * 60 * 1000;

/// Compare the messages (in each queue's order) and the records still `RECEIVED` with what was sent.
pub fn audit(sent: &Sent, messages: &[Message], received: usize) -> Findings {
    let mut findings = Findings { received, messages: messages.len(), ..Findings::default() };
    let mut copies: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for message in messages {
        copies.entry(&message.event_id).or_default().push(message.sent_ms);
    }
    findings.lost = sent.acknowledged.iter().filter(|id| !copies.contains_key(id.as_str())).cloned().collect();
    findings.lost.sort();
    for (id, times) in &copies {
        if !sent.carried.contains(*id) {
            findings.unknown.push((*id).to_owned());
        }
        if times.len() > 1 {
            findings.extra_copies.insert((*id).to_owned(), times.clone());
            let spread = times.iter().max().unwrap_or(&0) - times.iter().min().unwrap_or(&0);
            let extra = if spread >= DEDUPLICATION_WINDOW_MS && sent.interrupted.contains(*id) {
                &mut findings.explained_extra
            } else {
                &mut findings.unexplained_extra
            };
            extra.push((*id).to_owned());
        }
    }
    // Each transaction: the state its delivered events' ranks imply, against its last message's.
    let mut implied: BTreeMap<(&str, &str), PaymentStatus> = BTreeMap::new();
    let mut last: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for message in messages {
        let Some(payment) = sent.payments.get(&message.event_id) else { continue };
        let key = (message.queue.as_str(), payment.reference.as_str());
        let state = implied.entry(key).or_insert(payment.status);
        if payment.status.replaces(*state) {
            *state = payment.status;
        }
        if let Some(status) = &message.transaction_status {
            last.insert(key, status);
        }
    }
    for (key, state) in &implied {
        match last.get(key) {
            Some(status) if *status == state.as_str() => {}
            other => findings.wrong_state.push(format!(
                "{} {}: last message says {}, its events imply {}",
                key.0,
                key.1,
                other.unwrap_or(&"nothing"),
                state.as_str()
            )),
        }
    }
    findings
}

/// Read (and delete) every message on `queue_url`, in the queue's order.
pub async fn drain(sqs: &aws_sdk_sqs::Client, queue: &str, queue_url: &str) -> Result<Vec<Message>, String> {
    let mut out = Vec::new();
    loop {
        let batch = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(300)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|e| format!("receiving from {queue}: {}", payhooks::error::chain(&e)))?;
        let messages = batch.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(out);
        }
        let mut receipts = Vec::with_capacity(messages.len());
        for (n, m) in messages.iter().enumerate() {
            let body: serde_json::Value = serde_json::from_str(m.body().unwrap_or_default())
                .map_err(|e| format!("a message on {queue} is not JSON: {e}"))?;
            let sent_ms = m
                .attributes()
                .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp))
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let text = |path: &str| body.pointer(path).and_then(|v| v.as_str()).map(str::to_owned);
            out.push(Message {
                queue: queue.to_owned(),
                event_id: text("/id").unwrap_or_default(),
                transaction_status: text("/data/transaction_status"),
                sent_ms,
            });
            let receipt = aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                .id(n.to_string())
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .build()
                .map_err(|e| format!("a receipt from {queue}: {e}"))?;
            receipts.push(receipt);
        }
        sqs.delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(receipts))
            .send()
            .await
            .map_err(|e| format!("deleting from {queue}: {}", payhooks::error::chain(&e)))?;
    }
}

/// The records still `RECEIVED`: how many, and when the last of their leases (or back-offs) ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct Received {
    pub count: usize,
    pub latest_lease_ms: i64,
}

/// Which records of the table are still `RECEIVED`.
pub async fn still_received(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<Received, String> {
    let items = ddb
        .scan()
        .table_name(table)
        .filter_expression("#state = :received")
        .expression_attribute_names("#state", attribute::STATE)
        .expression_attribute_values(":received", aws_sdk_dynamodb::types::AttributeValue::S("RECEIVED".into()))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| format!("scanning {table}: {}", payhooks::error::chain(&e)))?;
    let lease = |item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>| {
        item.get(attribute::LEASE_UNTIL).and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<i64>().ok()).unwrap_or(0)
    };
    Ok(Received { count: items.len(), latest_lease_ms: items.iter().map(lease).max().unwrap_or(0) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, status: &str, sent_ms: i64) -> Message {
        Message { queue: "q".into(), event_id: id.into(), transaction_status: Some(status.into()), sent_ms }
    }

    fn sent(payments: &[(&str, &str, PaymentStatus)], acknowledged: &[&str]) -> Sent {
        Sent {
            interrupted: HashSet::new(),
            carried: payments.iter().map(|p| p.0.to_owned()).collect(),
            acknowledged: acknowledged.iter().map(|id| (*id).to_owned()).collect(),
            payments: payments
                .iter()
                .map(|(id, reference, status)| {
                    (
                        (*id).to_owned(),
                        Payment { event_id: (*id).into(), reference: (*reference).into(), status: *status },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_clean_run_passes_and_each_finding_is_named() {
        use PaymentStatus::*;
        let sent = sent(&[("a1", "A", Pending), ("a2", "A", Succeeded), ("b1", "B", Failed)], &["a1", "a2", "b1"]);
        // a2 (succeeded) went first; a1's message, last, still carries the transaction's state.
        let clean = [message("a2", "succeeded", 1), message("a1", "succeeded", 2), message("b1", "failed", 3)];
        assert!(audit(&sent, &clean, 0).passed());

        let findings = audit(&sent, &clean[..2], 1);
        assert_eq!(findings.lost, ["b1"]);
        assert_eq!(findings.received, 1);

        let stale = [message("a2", "succeeded", 1), message("a1", "pending", 2), message("b1", "failed", 3)];
        assert_eq!(audit(&sent, &stale, 0).wrong_state, ["q A: last message says pending, its events imply succeeded"]);

        let twice = [clean.to_vec(), vec![message("b1", "failed", 4), message("x", "failed", 5)]].concat();
        let findings = audit(&sent, &twice, 0);
        assert_eq!((findings.unexplained_extra, findings.unknown), (vec!["b1".to_owned()], vec!["x".to_owned()]));
        let late = [clean.to_vec(), vec![message("b1", "failed", 3 + DEDUPLICATION_WINDOW_MS)]].concat();
        let findings = audit(&sent, &late, 0);
        assert_eq!(findings.unexplained_extra, ["b1"], "late, but no delivery of b1 was interrupted");
        let sent = Sent { interrupted: HashSet::from(["b1".to_owned()]), ..sent };
        let findings = audit(&sent, &late, 0);
        assert_eq!(findings.explained_extra, ["b1"]);
        assert_eq!(findings.extra_copies["b1"], [3, 3 + DEDUPLICATION_WINDOW_MS]);
        assert!(findings.passed());
    }
}
