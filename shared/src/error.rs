//! Every error payhooks has, and the one place that maps each to an HTTP status.

use lambda_http::http::StatusCode;

/// The cause of an AWS-side failure, kept typed behind the box for logs.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An error with every cause, joined with `: `. The SDK's own text says only "dispatch failure" or "service
/// error"; what went wrong (a refused certificate, a missing queue) is a few causes down. A cause whose text
/// the chain already holds (an SDK service error repeats its source's) is said once.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(source) = cause {
        let said = source.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = source.source();
    }
    text
}

/// The event store (DynamoDB) failed: transient, answered 503.
#[derive(Debug, thiserror::Error)]
#[error("event store {operation} failed")]
pub struct StoreError {
    pub operation: &'static str,
    #[source]
    pub source: BoxError,
}

/// The event queue (SQS) did not take a message.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The queue failed: transient, answered 503.
    #[error("event queue send failed")]
    Failed(#[source] BoxError),
    /// The message is larger than the queue takes, counted as the queue counts it: nothing was sent, and
    /// the same message would never fit, so the pipeline sends it without its payload.
    #[error("a message of {bytes} bytes is larger than the queue takes")]
    TooLarge { bytes: usize },
}

/// Why the secrets could not be loaded (a transient fault: the request is answered 503 and retried).
#[derive(Debug, thiserror::Error)]
#[error("loading provider secrets from {source_name} failed")]
pub struct SecretsError {
    pub source_name: String,
    #[source]
    pub source: BoxError,
}

/// A secret list with no value in it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0} holds no secret: give at least one value (comma-separated; the first is current)")]
pub struct EmptySecretSet(pub &'static str);

/// A function's environment cannot be used: the function refuses to start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(std::borrow::Cow<'static, str>),
    #[error("no provider secret configured: set WEBHOOK_SECRETS (comma-separated) or WEBHOOK_SECRETS_PARAM (an SSM SecureString parameter name)")]
    NoSecret,
    #[error(transparent)]
    EmptySecrets(#[from] EmptySecretSet),
    #[error("{name} = {value:?} is invalid: {reason}")]
    Invalid { name: &'static str, value: String, reason: String },
}

/// Why a callback was refused before it was authenticated, or why it could not be: answered 4xx, never
/// retried into success. An authenticated callback is never refused for its content (it is quarantined).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("only POST is accepted")]
    MethodNotAllowed,
    #[error("body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("source IP {0} is not in ALLOWED_SOURCE_IPS")]
    SourceIpNotAllowed(String),
    #[error("signature is missing: {0}")]
    MissingSignature(&'static str),
    #[error("signature does not match")]
    InvalidSignature,
    #[error("callback URL token is missing")]
    MissingToken,
    #[error("callback URL token does not match")]
    InvalidToken,
    #[error("timestamp is missing or not a Unix time")]
    InvalidTimestamp,
    #[error("timestamp is older than MAX_EVENT_AGE_SECS")]
    StaleTimestamp,
    #[error("timestamp is more than 300 s in the future")]
    FutureTimestamp,
    #[error("body is not a valid JSON object: {0}")]
    InvalidJson(String),
    #[error("body nests deeper than 32 levels")]
    TooDeep,
    #[error("body flattens to too many fields (more than 4096, or 4 times its size)")]
    TooComplex,
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::SourceIpNotAllowed(_) => StatusCode::FORBIDDEN,
            Rejection::MissingSignature(_)
            | Rejection::InvalidSignature
            | Rejection::MissingToken
            | Rejection::InvalidToken
            | Rejection::InvalidTimestamp
            | Rejection::StaleTimestamp
            | Rejection::FutureTimestamp => StatusCode::UNAUTHORIZED,
            Rejection::InvalidJson(_) | Rejection::TooDeep | Rejection::TooComplex => StatusCode::BAD_REQUEST,
        }
    }

    /// A stable machine-readable code, used in the JSON body and in logs (`rejected:<code>`).
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::MethodNotAllowed => "method_not_allowed",
            Rejection::PayloadTooLarge { .. } => "payload_too_large",
            Rejection::SourceIpNotAllowed(_) => "source_ip_not_allowed",
            Rejection::MissingSignature(_) => "missing_signature",
            Rejection::InvalidSignature => "invalid_signature",
            Rejection::MissingToken => "missing_token",
            Rejection::InvalidToken => "invalid_token",
            Rejection::InvalidTimestamp => "invalid_timestamp",
            Rejection::StaleTimestamp => "stale_timestamp",
            Rejection::FutureTimestamp => "future_timestamp",
            Rejection::InvalidJson(_) => "invalid_json",
            Rejection::TooDeep => "too_deep",
            Rejection::TooComplex => "too_complex",
        }
    }
}

/// Anything that stops a callback from being acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("event store unavailable")]
    Store(#[from] StoreError),
    #[error("event queue unavailable")]
    Publish(#[from] PublishError),
    #[error("another delivery of event {0} is still in progress")]
    InProgress(String),
    #[error("another event of transaction {0} is still being sent")]
    TransactionBusy(String),
    #[error("provider secrets unavailable")]
    Secrets(#[from] SecretsError),
}

impl IngestError {
    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::Rejected(r) => r.status(),
            IngestError::Store(_)
            | IngestError::Publish(_)
            | IngestError::InProgress(_)
            | IngestError::TransactionBusy(_)
            | IngestError::Secrets(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            IngestError::Rejected(r) => r.code(),
            IngestError::Store(_) => "store_unavailable",
            IngestError::Publish(_) => "queue_unavailable",
            IngestError::InProgress(_) => "in_progress",
            IngestError::TransactionBusy(_) => "transaction_busy",
            IngestError::Secrets(_) => "secrets_unavailable",
        }
    }

    /// The message shown to the caller: rejections say what is wrong; transient faults say only that
    /// the caller should retry (internals go to the log, not to the provider).
    pub fn public_message(&self) -> String {
        match self {
            IngestError::Rejected(r) => r.to_string(),
            IngestError::Store(_) | IngestError::Publish(_) | IngestError::Secrets(_) => {
                "temporarily unavailable, retry later".to_owned()
            }
            IngestError::InProgress(_) => "another delivery of this event is in progress, retry later".to_owned(),
            IngestError::TransactionBusy(_) => {
                "another event of this transaction is being sent, retry later".to_owned()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_chain_names_every_cause_once() {
        let tls = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        let connect = StoreError { operation: "GetItem", source: Box::new(tls) };
        assert_eq!(chain(&connect), "event store GetItem failed: invalid peer certificate: UnknownIssuer");
        let repeated = StoreError { operation: "GetItem", source: "ThrottlingException".into() };
        let outer = PublishError::Failed(Box::new(repeated));
        assert_eq!(chain(&outer), "event queue send failed: event store GetItem failed: ThrottlingException");
        let echo = PublishError::Failed("event queue send failed".into());
        assert_eq!(chain(&echo), "event queue send failed", "a cause already said is not said again");
    }

    use super::*;

    #[test]
    fn statuses_follow_the_contract() {
        let cases = [
            (Rejection::MethodNotAllowed, 405),
            (Rejection::PayloadTooLarge { limit: 1 }, 413),
            (Rejection::SourceIpNotAllowed("1.2.3.4".into()), 403),
            (Rejection::MissingSignature("Signature header"), 401),
            (Rejection::InvalidSignature, 401),
            (Rejection::MissingToken, 401),
            (Rejection::InvalidToken, 401),
            (Rejection::InvalidTimestamp, 401),
            (Rejection::StaleTimestamp, 401),
            (Rejection::FutureTimestamp, 401),
            (Rejection::InvalidJson("x".into()), 400),
            (Rejection::TooDeep, 400),
            (Rejection::TooComplex, 400),
        ];
        for (rejection, status) in cases {
            assert_eq!(rejection.status().as_u16(), status, "{rejection:?}");
        }
        assert_eq!(IngestError::InProgress("x".into()).status().as_u16(), 503);
        assert_eq!(IngestError::TransactionBusy("x".into()).status().as_u16(), 503);
    }
}
