//! payhooks: receive payment-provider callbacks, verify them, normalise them to CloudEvents, record each
//! event once in DynamoDB and enqueue it to SQS.
//!
//! Layers point one way; each uses only those below it (`tests/suite/layers.rs` holds them to it):
//! - [`wiring`]: the composition root the functions' `main`s call (clients built once, wired, warmed up);
//! - [`aws`]: the DynamoDB, SQS and SSM adapters of the ports, beside the core;
//! - [`handler`]: the Lambda HTTP glue and the one mapping from errors to HTTP statuses; [`sweeper`]:
//!   completes deliveries no provider retried;
//! - [`pipeline`]: ingest, delivery and the secret cache, exactly once, over the [`ports`];
//! - [`envelope`]: the message; [`config`]: the environment; [`ports`]: the store (bodies, signatures,
//!   events, transactions), the publisher, the secret loader; [`metrics`]: EMF;
//! - [`providers`]: the seam (`providers::Spec` and what it is given), the one dispatch, one module per
//!   provider, and behind `signing` their senders; no I/O;
//! - [`state`]: transaction status ranks;
//! - [`verify`]: the JSON reader, the canonical string and its ambiguity check, signature primitives and
//!   secrets; it knows no provider;
//! - [`event`], [`provider`], [`error`], [`logging`]: the vocabulary everything shares.
//!
//! `testing` (feature `test-util`) holds the in-memory ports, fixtures and test requests.

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
