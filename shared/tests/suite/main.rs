//! The library's test suites that need no process of their own, in one test binary (each linking the AWS
//! SDK would cost a link of its own). `logging.rs`, `ssm_trace.rs` and `tls_roots.rs` set process-wide state
//! (a tracing subscriber, environment variables) and stay binaries of their own.

mod fixtures;
mod forgery;
mod fuzz;
mod handler;
mod hostile;
mod interop;
mod layers;
mod metrics;
mod pipeline;
mod signatures;
mod state;
