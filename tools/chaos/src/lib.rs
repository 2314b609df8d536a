//! The parts of `make chaos`, the crash-and-fault soak: the fault proxy between the functions and AWS, the
//! functions run as Lambda runs them, the providers' traffic, the audit, and the soak that ties them.

pub mod audit;
pub mod lambda;
pub mod proxy;
pub mod soak;
pub mod traffic;
