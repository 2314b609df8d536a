//! payhooks: receive payment-provider callbacks, verify them, normalise them to CloudEvents, record each
//! event once in DynamoDB and enqueue it to SQS.
//!
//! - [`providers`]: per-provider authentication, parsing and normalisation (no I/O);
//! - [`pipeline`]: the exactly-once delivery logic over two ports, [`store::IdempotencyStore`] and
//!   [`store::EventPublisher`];
//! - [`aws`]: the DynamoDB, SQS and SSM implementations and the cold-start wiring;
//! - [`handler`]: the Lambda HTTP glue and the one mapping from errors to HTTP statuses.

pub mod aws;
pub mod canonical;
pub mod config;
pub mod error;
pub mod event;
pub mod handler;
pub mod json;
pub mod pipeline;
pub mod providers;
pub mod secrets;
pub mod signing;
pub mod store;

pub use config::Config;
pub use pipeline::Pipeline;
pub use providers::Provider;
