use std::borrow::Cow;

use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};

use crate::error::PublishError;
use crate::metrics;
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

/// A string attribute whose value SQS accepts (see [`sqs_text`]).
fn attribute(value: Cow<'_, str>) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().expect("data_type is set")
}

/// `text` with every character SQS refuses in a body or attribute (anything outside `#x9 #xA #xD
/// #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF`) written as a JSON `\uXXXX` escape. In a message body such
/// characters can only stand inside JSON strings (the reader refuses them elsewhere), where the escape
/// means the same character; so a body stays the same JSON and SQS never refuses it for its content.
pub fn sqs_text(text: &str) -> Cow<'_, str> {
    let allowed =
        |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
    if text.chars().all(allowed) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if allowed(c) {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{:04x}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// SQS group and deduplication ids allow at most 128 ASCII letters, digits and punctuation; anything else
/// is replaced by its SHA-256 (hex), which is stable for the same input.
pub fn sqs_id(value: &str) -> String {
    if !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic()) {
        value.to_owned()
    } else {
        crate::verify::hex_digest(value.as_bytes())
    }
}

/// The largest message sent, counted as SQS counts it (body, and the attributes' names, types and values):
/// 256 KiB, the template's queues' `MaximumMessageSize` (the drift test holds them to it; a queue may be set
/// up to 1 MiB, and moto's take that), so a message never meets a refusal every retry would meet again.
pub const MAX_MESSAGE_BYTES: usize = 262_144;

#[async_trait]
impl EventPublisher for SqsPublisher {
    async fn publish(&self, message: &OutgoingMessage) -> Result<(), PublishError> {
        let body = sqs_text(&message.body);
        let attributes = [
            ("provider", sqs_text(message.provider.name())),
            ("type", sqs_text(&message.event_type)),
            ("id", sqs_text(&message.id)),
        ];
        let bytes = body.len()
            + attributes.iter().map(|(name, value)| name.len() + "String".len() + value.len()).sum::<usize>();
        if bytes > MAX_MESSAGE_BYTES {
            return Err(PublishError::TooLarge { bytes });
        }
        let mut send = self.client.send_message().queue_url(&self.queue_url).message_body(body);
        for (name, value) in attributes {
            send = send.message_attributes(name, attribute(value));
        }
        if self.fifo {
            let deduplication_id = message.deduplication_id.as_deref().unwrap_or(&message.id);
            send = send.message_group_id(sqs_id(&message.group)).message_deduplication_id(sqs_id(deduplication_id));
        }
        metrics::queue_call(send.send()).await.map_err(|e| PublishError::Failed(e.into()))?;
        Ok(())
    }

    async fn warm(&self) -> Result<(), PublishError> {
        let get =
            self.client.get_queue_attributes().queue_url(&self.queue_url).attribute_names(QueueAttributeName::QueueArn);
        get.send().await.map(|_| ()).map_err(|e| PublishError::Failed(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::sqs_id;

    #[test]
    fn characters_sqs_refuses_are_escaped() {
        use super::sqs_text;
        assert_eq!(sqs_text(r#"{"a":"ok é 😀"}"#), r#"{"a":"ok é 😀"}"#);
        let escaped = sqs_text("{\"a\":\"x\u{FFFF}y\u{FFFE}\"}");
        assert_eq!(escaped, r#"{"a":"x\uffffy\ufffe"}"#);
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back["a"], "x\u{FFFF}y\u{FFFE}");
    }

    #[test]
    fn ids_are_kept_when_sqs_accepts_them() {
        assert_eq!(sqs_id("niobi:payin:A1:000000"), "niobi:payin:A1:000000");
        assert_eq!(sqs_id("has space").len(), 64);
        assert_eq!(sqs_id(&"x".repeat(129)).len(), 64);
        assert_eq!(sqs_id("安徽"), sqs_id("安徽"));
    }
}
