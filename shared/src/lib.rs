//! payhooks: receive payment-provider callbacks, verify them, normalise them to CloudEvents, record each
//! event once in DynamoDB and enqueue it to SQS.
//!
//! Layers point one way, from the edge inwards:
//! - [`handler`]: the Lambda HTTP glue and the one mapping from errors to HTTP statuses;
//! - [`pipeline`]: the exactly-once delivery logic over the [`ports`];
//! - [`aws`]: the DynamoDB, SQS and SSM adapters of those ports, and the cold-start wiring;
//! - [`providers`]: one module per provider (authentication, parsing, normalisation, ack, route), no I/O;
//! - [`verify`]: the JSON reader, the canonical string, signature primitives and secrets;
//! - [`state`]: transaction status ranks; [`sweeper`]: completes deliveries no provider retried;
//! - [`provider`], [`event`], [`error`], [`config`]: the types everything else shares; [`logging`]: log lines.
//!
//! `testing` (feature `test-util`) holds the in-memory ports, signers and fixtures for tests and tools.

pub mod aws;
pub mod config;
pub mod envelope;
pub mod error;
pub mod event;
pub mod handler;
pub mod logging;
pub mod metrics;
pub mod pipeline;
pub mod ports;
pub mod provider;
pub mod providers;
pub mod state;
pub mod sweeper;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod verify;
pub mod wiring;

#[cfg(feature = "signing")]
pub use providers::signing;

pub use config::Config;
pub use pipeline::Pipeline;
pub use provider::Provider;
