//! The parts of `make chaos`, the crash-and-fault soak: so far the fault proxy that stands between the
//! functions and AWS.

pub mod proxy;
