use async_trait::async_trait;
use aws_sdk_sqs::types::MessageAttributeValue;
use sha2::{Digest, Sha256};

use crate::error::PublishError;
use crate::ports::{EventPublisher, OutgoingMessage};

/// Sends each event's CloudEvents JSON to one SQS queue. On a FIFO queue (URL ending in `.fifo`) the
/// message group is the provider's transaction reference (per-transaction order) and the deduplication id
/// is the event id.
#[derive(Debug, Clone)]
pub struct SqsPublisher {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    fifo: bool,
}

impl SqsPublisher {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        let fifo = queue_url.ends_with(".fifo");
        Self { client, queue_url, fifo }
    }
}

fn attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().expect("data_type is set")
}

/// SQS group and deduplication ids allow at most 128 ASCII letters, digits and punctuation; anything else
/// is replaced by its SHA-256 (hex), which is stable for the same input.
pub fn sqs_id(value: &str) -> String {
    if !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic()) {
        value.to_owned()
    } else {
        hex::encode(Sha256::digest(value.as_bytes()))
    }
}

#[async_trait]
impl EventPublisher for SqsPublisher {
    async fn publish(&self, message: &OutgoingMessage) -> Result<(), PublishError> {
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&message.body)
            .message_attributes("provider", attribute(message.provider.name()))
            .message_attributes("type", attribute(&message.event_type))
            .message_attributes("id", attribute(&message.id));
        if self.fifo {
            send = send.message_group_id(sqs_id(&message.group)).message_deduplication_id(sqs_id(&message.id));
        }
        send.send().await.map_err(|e| PublishError { source: e.into() })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::sqs_id;

    #[test]
    fn ids_are_kept_when_sqs_accepts_them() {
        assert_eq!(sqs_id("niobi:payin:A1:000000"), "niobi:payin:A1:000000");
        assert_eq!(sqs_id("has space").len(), 64);
        assert_eq!(sqs_id(&"x".repeat(129)).len(), 64);
        assert_eq!(sqs_id("安徽"), sqs_id("安徽"));
    }
}
