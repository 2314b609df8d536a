//! `payhooks-admin`: what an operator needs on the bad day, over the same table, queues, configuration and
//! code the functions use. Every command returns a value that prints as a table or, with `--json`, as JSON.
//! Records hold no secret, so nothing here can show one; `verify` masks the secret in canonical strings.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use chrono::{DateTime, TimeZone, Utc};
use lambda_http::http::{HeaderMap, HeaderName, HeaderValue, Method};
use payhooks::aws::{attribute, pending_shards, DynamoDbStore, SqsPublisher, PENDING_INDEX};
use payhooks::config::{Retention, VerifyConfig};
use payhooks::envelope::CloudEvent;
use payhooks::pipeline;
use payhooks::ports::{
    BodyStore, EventPublisher, EventStore, OutgoingMessage, RecordState, SecretLoader, TransactionStore,
};
use payhooks::providers::{self, Incoming};
use payhooks::verify::Secrets;
use payhooks::verify::{CanonicalHash, Dialect};
use payhooks::Provider;
use serde::Serialize;
use serde_json::{json, Value};

pub mod cli;
pub mod deploy;
pub mod deployment;
pub mod doctor;
pub mod urls;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// An error saying what was being done, over its cause (the AWS error, with its own causes).
#[derive(Debug)]
pub struct Failed {
    what: String,
    source: Error,
}

impl Failed {
    pub fn new(what: impl Into<String>, source: impl Into<Error>) -> Self {
        Self { what: what.into(), source: source.into() }
    }
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for Failed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.source.as_ref())
    }
}

/// An error and every cause under it, on one line: an AWS error says which service error it was and why
/// (`service error: ResourceNotFoundException: Requested resource not found`), not only `service error`.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    payhooks::error::chain(err)
}

/// The table and queues the functions write to.
#[derive(Clone)]
pub struct Admin {
    ddb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    table: String,
    queues: HashMap<Provider, String>,
}

/// A record as an operator reads it: its attributes, without the raw body and the stored message.
pub type Fields = BTreeMap<String, Value>;

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub record: Fields,
    /// The transaction state the event moved (`txn#<provider>#<reference>`).
    pub transaction: Option<Fields>,
    /// Later deliveries of the id with other content.
    pub conflicts: Vec<Fields>,
    /// With `--body`: the stored body, as received (it is gone once `EVENT_TTL_DAYS` have passed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// One message a replay sends (or, with `--dry-run`, would send).
#[derive(Debug, Serialize)]
pub struct Replay {
    pub id: String,
    pub queue: String,
    pub deduplication_id: String,
    pub body: Value,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Redrive {
    pub provider: Provider,
    pub moved: usize,
    /// `StartMessageMoveTask`, or `receive/send/delete` where SQS's own move is not available.
    pub method: &'static str,
}

/// What payhooks would do with a captured callback.
#[derive(Debug, Serialize)]
pub struct Verification {
    /// The HTTP status payhooks would answer.
    pub status: u16,
    /// The error code, for a refusal.
    pub error: Option<String>,
    pub scheme: Option<String>,
    pub secret_index: Option<usize>,
    pub dialect: Option<String>,
    pub events: Vec<Value>,
    pub quarantined: Vec<Value>,
    /// Choice and Niobi, on a refusal: the string each dialect signs, the secret masked.
    pub canonical: Vec<(String, Option<String>)>,
    /// Choice and Niobi, on a refused signature: the configuration that would have verified it, if one does
    /// (another `NIOBI_SIGNATURE_HASH`, a dialect left out of `CANONICAL_DIALECTS`).
    pub would_pass_with: Option<String>,
}

impl Verification {
    /// Whether payhooks would acknowledge the callback.
    pub fn accepted(&self) -> bool {
        self.status < 300
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn fields(item: &HashMap<String, AttributeValue>) -> Fields {
    let ms = |n: &str| n.parse::<i64>().ok().and_then(|ms| Utc.timestamp_millis_opt(ms).single());
    item.iter()
        .filter(|(k, _)| !matches!(k.as_str(), attribute::RAW_BODY | attribute::RAW_BYTES | attribute::ENVELOPE))
        .map(|(k, v)| {
            let value = match v {
                AttributeValue::S(text) => json!(text),
                AttributeValue::N(n)
                    if matches!(
                        k.as_str(),
                        attribute::RECEIVED_AT | attribute::SENT_AT | attribute::LEASE_UNTIL | attribute::UPDATED_AT
                    ) =>
                {
                    ms(n).map_or_else(|| json!(n), |t| json!(t.to_rfc3339()))
                }
                AttributeValue::N(n) => n.parse::<i64>().map_or_else(|_| json!(n), |n| json!(n)),
                AttributeValue::Ss(set) => json!(set),
                AttributeValue::L(list) => json!(list.iter().filter_map(|x| x.as_s().ok()).collect::<Vec<_>>()),
                AttributeValue::M(map) => json!(map.keys().collect::<Vec<_>>()),
                other => json!(format!("{other:?}")),
            };
            (k.clone(), value)
        })
        .collect()
}

impl Admin {
    pub fn new(
        ddb: aws_sdk_dynamodb::Client,
        sqs: aws_sdk_sqs::Client,
        table: String,
        queues: HashMap<Provider, String>,
    ) -> Self {
        Self { ddb, sqs, table, queues }
    }

    fn store(&self) -> DynamoDbStore {
        DynamoDbStore::new(self.ddb.clone(), self.table.clone())
    }

    fn queue(&self, provider: Provider) -> Result<&String, Error> {
        self.queues.get(&provider).ok_or_else(|| {
            format!(
                "no queue for {provider}: give --stack NAME, or set {}",
                deployment::Part::Queue(provider).variable().unwrap_or_default()
            )
            .into()
        })
    }

    /// A pipeline of `provider` over this table and its queue, for `reprocess`: it authenticates nothing (the
    /// stored body was authenticated when it came), so it holds no secret.
    fn pipeline(&self, provider: Provider, retention: Retention) -> Result<pipeline::Pipeline, Error> {
        struct NoSecrets;
        #[async_trait::async_trait]
        impl SecretLoader for NoSecrets {
            async fn load(&self) -> Result<Secrets, payhooks::error::SecretsError> {
                Err(payhooks::error::SecretsError {
                    source_name: "payhooks-admin".into(),
                    source: "reprocess reads stored bodies and holds no secret".into(),
                })
            }
        }
        let publisher = SqsPublisher::new(self.sqs.clone(), self.queue(provider)?.clone());
        Ok(pipeline::Pipeline::new(
            provider,
            VerifyConfig::default(),
            std::sync::Arc::new(NoSecrets),
            std::sync::Arc::new(self.store()),
            std::sync::Arc::new(publisher),
            retention,
        ))
    }

    /// `reprocess`: what each quarantine record's stored body yields under this version's code; with
    /// `deliver`, those events recorded and sent with a first delivery's idempotency.
    pub async fn reprocess(
        &self,
        ids: &[String],
        deliver: bool,
        retention: Retention,
        now: DateTime<Utc>,
    ) -> Result<Vec<pipeline::Reprocessed>, Error> {
        let mut out = Vec::new();
        for id in ids {
            let provider: Provider =
                id.split(':').next().unwrap_or_default().parse().map_err(|e| format!("{id}: not an event id ({e})"))?;
            let lease = std::time::Duration::from_secs(10);
            out.push(self.pipeline(provider, retention)?.reprocess(id, deliver, now, lease).await?);
        }
        Ok(out)
    }

    async fn item(&self, pk: &str) -> Result<Option<HashMap<String, AttributeValue>>, Error> {
        let out =
            self.ddb.get_item().table_name(&self.table).key(attribute::PK, s(pk)).consistent_read(true).send().await?;
        Ok(out.item)
    }

    /// `inspect <event-id> [--body]`: the record, its transaction, its conflict records and, asked for, the
    /// stored body.
    pub async fn inspect(&self, id: &str, with_body: bool) -> Result<Inspection, Error> {
        let item = self
            .item(id)
            .await
            .map_err(|e| Failed::new(format!("cannot read {id} from table {}", self.table), e))?
            .ok_or_else(|| format!("no record {id} in table {}", self.table))?;
        let transaction = match item.get("txn_key").and_then(|v| v.as_s().ok()) {
            Some(key) => self.item(key).await?.as_ref().map(fields),
            None => None,
        };
        let mut conflicts = Vec::new();
        if let Some(AttributeValue::Ss(ids)) = item.get("conflicts") {
            for conflict in ids {
                if let Some(found) = self.item(conflict).await? {
                    conflicts.push(fields(&found));
                }
            }
        }
        let body = match (with_body, item.get(attribute::BODY_REF).and_then(|v| v.as_s().ok())) {
            (true, Some(key)) => Some(
                self.store()
                    .get_body(key)
                    .await?
                    .unwrap_or_else(|| format!("(the body {key} has expired: EVENT_TTL_DAYS)")),
            ),
            _ => None,
        };
        Ok(Inspection { record: fields(&item), transaction, conflicts, body })
    }

    /// `list --provider P --state S [--since T]`: records by state. `RECEIVED` comes from the sparse
    /// `pending` index (a query per shard); the other states cost a scan of the table.
    pub async fn list(
        &self,
        provider: Provider,
        state: RecordState,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Fields>, Error> {
        let since_ms = since.map_or(0, |t| t.timestamp_millis());
        let mut out = Vec::new();
        if state == RecordState::Received {
            for shard in pending_shards() {
                let mut keys = self
                    .ddb
                    .query()
                    .table_name(&self.table)
                    .index_name(PENDING_INDEX)
                    .key_condition_expression("pending = :p")
                    .expression_attribute_values(":p", s(&shard))
                    .into_paginator()
                    .items()
                    .send();
                while let Some(key) = keys.next().await {
                    let key = key?;
                    let Some(id) = key.get(attribute::PK).and_then(|v| v.as_s().ok()) else { continue };
                    if !id.starts_with(&format!("{provider}:")) {
                        continue;
                    }
                    if let Some(item) = self.item(id).await? {
                        out.push(item);
                    }
                }
            }
        } else {
            let mut items = self
                .ddb
                .scan()
                .table_name(&self.table)
                .filter_expression("#state = :state AND provider = :provider AND received_at >= :since")
                .expression_attribute_names("#state", attribute::STATE)
                .expression_attribute_values(":state", s(state.as_str()))
                .expression_attribute_values(":provider", s(provider.name()))
                .expression_attribute_values(":since", AttributeValue::N(since_ms.to_string()))
                .into_paginator()
                .items()
                .send();
            while let Some(item) = items.next().await {
                out.push(item?);
            }
        }
        let received = |i: &HashMap<String, AttributeValue>| {
            i.get(attribute::RECEIVED_AT).and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<i64>().ok()).unwrap_or(0)
        };
        out.retain(|i| received(i) >= since_ms);
        out.sort_by_key(received);
        Ok(out.iter().map(fields).collect())
    }

    /// The message `replay` sends for `id`: the stored event with its stored payload, where its transaction
    /// now stands, a `replayed` extension attribute, and a deduplication id of its own so SQS does not drop
    /// it inside its 5-minute window.
    pub async fn replay_plan(&self, id: &str, now: DateTime<Utc>) -> Result<Replay, Error> {
        let store = self.store();
        let (record, payload) =
            pipeline::stored(&store, id).await?.ok_or_else(|| format!("{id}: no record, or its body has expired"))?;
        if record.state == RecordState::Conflict {
            return Err(format!("{id} is a conflict record: replay the event it conflicts with").into());
        }
        let queue = self.queue(record.provider)?;
        let view = match &record.transaction {
            Some(t) => {
                let current =
                    payhooks::ports::TransactionRef { key: t.key.clone(), step: payhooks::state::Step::Unknown };
                let now_view = store.advance(&current, id, now.timestamp_millis()).await?;
                Some(match (&t.step, now_view.status.as_deref().and_then(payhooks::state::PaymentStatus::parse)) {
                    (payhooks::state::Step::Payment(incoming), recorded) => {
                        payhooks::state::payment_view(recorded, *incoming)
                    }
                    _ => now_view,
                })
            }
            None => None,
        };
        let replayed = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut envelope = CloudEvent::stored(&record.envelope)?;
        envelope.replayed = Some(replayed.into());
        let body = envelope.message(view.as_ref(), &payload);
        Ok(Replay {
            id: record.id.clone(),
            queue: queue.clone(),
            deduplication_id: format!("{}#replay#{}", record.id, now.timestamp_millis()),
            body: serde_json::from_str(&body)?,
        })
    }

    /// Send a planned replay.
    pub async fn replay(&self, plan: &Replay) -> Result<(), Error> {
        let record = self.store().load(&plan.id).await?.ok_or("the record is gone")?;
        let publisher = SqsPublisher::new(self.sqs.clone(), plan.queue.clone());
        let message = OutgoingMessage {
            id: plan.id.clone(),
            provider: record.provider,
            event_type: record.event_type,
            group: record.group,
            body: plan.body.to_string(),
            deduplication_id: Some(plan.deduplication_id.clone()),
        };
        publisher.publish(&message).await?;
        Ok(())
    }

    /// The ids of `provider`'s records in `states` received since `since` (a scan): what `replay` (sent
    /// events) and `reprocess` (quarantines) take with `--provider P --since T`.
    pub async fn ids_since(
        &self,
        provider: Provider,
        states: &[RecordState],
        since: DateTime<Utc>,
    ) -> Result<Vec<String>, Error> {
        let mut ids = Vec::new();
        for &state in states {
            for record in self.list(provider, state, Some(since)).await? {
                if let Some(id) = record.get(attribute::PK).and_then(Value::as_str) {
                    ids.push(id.to_owned());
                }
            }
        }
        Ok(ids)
    }

    /// `redrive --provider P`: move every message from the provider's dead-letter queue back to its queue.
    pub async fn redrive(&self, provider: Provider) -> Result<Redrive, Error> {
        let queue = self.queue(provider)?;
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await?;
        let attrs = attributes.attributes().cloned().unwrap_or_default();
        let policy: Value =
            serde_json::from_str(attrs.get(&QueueAttributeName::RedrivePolicy).ok_or("the queue has no DLQ")?)?;
        let dlq_arn = policy["deadLetterTargetArn"].as_str().ok_or("the redrive policy names no DLQ")?.to_owned();
        let queue_arn = attrs.get(&QueueAttributeName::QueueArn).cloned().unwrap_or_default();
        let dlq_name = dlq_arn.rsplit(':').next().unwrap_or_default();
        let dlq = self.sqs.get_queue_url().queue_name(dlq_name).send().await?.queue_url.ok_or("no DLQ URL")?;
        let before = self.depth(&dlq).await?;
        if self.sqs.start_message_move_task().source_arn(&dlq_arn).destination_arn(&queue_arn).send().await.is_ok() {
            return Ok(Redrive { provider, moved: before, method: "StartMessageMoveTask" });
        }
        let fifo = queue.ends_with(".fifo");
        let mut moved = 0;
        loop {
            let batch = self
                .sqs
                .receive_message()
                .queue_url(&dlq)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .visibility_timeout(60)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await?;
            let messages = batch.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let mut send = self.sqs.send_message().queue_url(queue).set_message_body(m.body.clone());
                send = send.set_message_attributes(m.message_attributes.clone());
                if fifo {
                    let system = m.attributes.clone().unwrap_or_default();
                    let group = system.get(&MessageSystemAttributeName::MessageGroupId).cloned().unwrap_or_default();
                    let dedup = system.get(&MessageSystemAttributeName::MessageDeduplicationId).cloned();
                    let dedup = dedup.unwrap_or_else(|| m.message_id.clone().unwrap_or_default());
                    // A new id (SQS would drop the same one within its five minutes), kept within SQS's 128 characters.
                    let dedup = payhooks::aws::sqs_id(&format!("{dedup}#redrive"));
                    send = send.message_group_id(group).message_deduplication_id(dedup);
                }
                send.send().await?;
                self.sqs.delete_message().queue_url(&dlq).set_receipt_handle(m.receipt_handle).send().await?;
                moved += 1;
            }
        }
        Ok(Redrive { provider, moved, method: "receive/send/delete" })
    }

    async fn depth(&self, queue: &str) -> Result<usize, Error> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await?;
        let attrs = out.attributes().cloned().unwrap_or_default();
        Ok(attrs.get(&QueueAttributeName::ApproximateNumberOfMessages).and_then(|n| n.parse().ok()).unwrap_or(0))
    }
}

/// `verify`: run `provider`'s whole authenticate-and-normalise step on a captured callback with the
/// configured secrets, and say what payhooks would answer and record.
pub fn verify(
    provider: Provider,
    config: &VerifyConfig,
    secrets: &Secrets,
    body: &[u8],
    headers: &[(String, String)],
    path: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Verification, Error> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(
            HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes())?,
            HeaderValue::from_str(value.trim())?,
        );
    }
    let path = path.map_or_else(|| format!("/webhooks/{provider}"), str::to_owned);
    let req = Incoming { method: &Method::POST, path: &path, headers: &map, body, source_ip: None };
    Ok(match providers::authenticate_and_normalise(provider, config, secrets, &req, now) {
        Ok(callback) => Verification {
            status: 200,
            error: None,
            scheme: Some(callback.verified.scheme.as_str().to_owned()),
            secret_index: Some(callback.verified.secret_index),
            dialect: callback.verified.dialect.map(|d| d.as_str().to_owned()),
            events: callback
                .events
                .iter()
                .map(|e| json!({"id": e.id, "type": e.event_type(provider), "reference": e.reference, "amount": e.amount}))
                .collect(),
            quarantined: callback
                .quarantined
                .iter()
                .map(|q| json!({"id": q.id, "reason": q.reason.as_str(), "field": q.field}))
                .collect(),
            canonical: Vec::new(),
            would_pass_with: None,
        },
        Err(rejection) => {
            let canonical = match (providers::signs_canonical_string(provider), rejection.status().as_u16()) {
                (true, 401) => std::str::from_utf8(body)
                    .ok()
                    .and_then(|text| providers::canonical_strings(text, "<secret>").ok())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(d, s)| (d.as_str().to_owned(), s))
                    .collect(),
                _ => Vec::new(),
            };
            let would_pass_with = match rejection.code() {
                "invalid_signature" => other_configuration(provider, config, secrets, &req, now),
                _ => None,
            };
            Verification {
                status: rejection.status().as_u16(),
                error: Some(rejection.code().to_owned()),
                scheme: None,
                secret_index: None,
                dialect: None,
                events: Vec::new(),
                quarantined: Vec::new(),
                canonical,
                would_pass_with,
            }
        }
    })
}

/// Choice and Niobi: the settings under which a callback refused for its signature would verify (every
/// Niobi hash, each dialect on its own), as the variables to set; `None` if none would.
fn other_configuration(
    provider: Provider,
    config: &VerifyConfig,
    secrets: &Secrets,
    req: &Incoming<'_>,
    now: DateTime<Utc>,
) -> Option<String> {
    let hash_variable = providers::canonical_hash_variable(provider);
    let hashes: &[CanonicalHash] = match (hash_variable, providers::signs_canonical_string(provider)) {
        (Some(_), _) => &CanonicalHash::ALL,
        (None, true) => &[CanonicalHash::Sha256],
        (None, false) => return None,
    };
    for &hash in hashes {
        for dialect in Dialect::ALL {
            let trial = VerifyConfig { canonical_hash: hash, dialects: vec![dialect], ..config.clone() };
            if providers::authenticate_and_normalise(provider, &trial, secrets, req, now).is_ok() {
                let mut settings = Vec::new();
                if let Some(variable) = hash_variable.filter(|_| hash != config.canonical_hash) {
                    settings.push(format!("{variable}={}", hash.as_str()));
                }
                if !config.dialects.contains(&dialect) {
                    settings.push(format!("CANONICAL_DIALECTS with {}", dialect.as_str()));
                }
                return Some(settings.join(" and ")).filter(|s| !s.is_empty());
            }
        }
    }
    None
}

/// A record as a two-column table (field, value), times in UTC with their age.
pub fn table(fields: &Fields, now: DateTime<Utc>) -> String {
    let mut out = new_table(&["field", "value"]);
    for (k, v) in fields {
        out.add_row(vec![k.clone(), human(v, now)]);
    }
    out.to_string()
}

/// A table with `header`, sized to its content.
pub fn new_table(header: &[&str]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    // Long cells (a URL's registration notes, a check's finding) wrap within 140 columns.
    table
        .load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_width(140)
        .set_header(header.to_vec());
    table
}

/// A field's value as an operator reads it: an RFC 3339 time as `2026-12-06 23:40:12 UTC (5 min ago)`.
pub fn human(value: &Value, now: DateTime<Utc>) -> String {
    let Some(text) = value.as_str() else { return value.to_string() };
    match DateTime::parse_from_rfc3339(text) {
        Ok(at) => {
            let at = at.with_timezone(&Utc);
            format!("{} ({})", at.format("%Y-%m-%d %H:%M:%S UTC"), age(now - at))
        }
        Err(_) => text.to_owned(),
    }
}

/// How long ago (or, negative, how far ahead) a duration is, in its largest unit.
fn age(d: chrono::Duration) -> String {
    let (secs, suffix) = if d.num_seconds() < 0 { (-d.num_seconds(), "from now") } else { (d.num_seconds(), "ago") };
    let text = match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86_400),
    };
    format!("{text} {suffix}")
}

/// `1h`, `30m`, `2d`, `90s` (or an RFC 3339 time) as the moment that long before `now`.
pub fn since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, Error> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 =
        number.parse().map_err(|_| format!("--since {text}: expected e.g. 90s, 30m, 1h, 2d or an RFC 3339 time"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("--since {text}: the unit is s, m, h or d").into()),
    };
    Ok(now - chrono::Duration::seconds(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_durations_and_times() {
        let now = Utc.timestamp_opt(1_000_000, 0).unwrap();
        assert_eq!(since("1h", now).unwrap(), now - chrono::Duration::hours(1));
        assert_eq!(since("90s", now).unwrap().timestamp(), 1_000_000 - 90);
        assert_eq!(since("2026-11-22T00:00:00Z", now).unwrap().to_rfc3339(), "2026-11-22T00:00:00+00:00");
        assert!(since("1w", now).is_err());
        assert!(since("h", now).is_err());
    }

    #[test]
    fn tables_have_a_header_and_human_times() {
        let now = Utc.timestamp_opt(1_000_000, 0).unwrap();
        let f: Fields = [
            ("state".to_owned(), json!("ENQUEUED")),
            ("received_at".to_owned(), json!((now - chrono::Duration::minutes(5)).to_rfc3339())),
        ]
        .into();
        let text = table(&f, now);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains("field") && lines[1].contains("value"), "{text}");
        assert!(text.contains("1970-01-12 13:41:40 UTC (5 min ago)"), "{text}");
        assert!(text.contains("ENQUEUED"), "{text}");
        assert_eq!(
            human(&json!((now + chrono::Duration::hours(2)).to_rfc3339()), now),
            "1970-01-12 15:46:40 UTC (2 h from now)"
        );
    }
}
