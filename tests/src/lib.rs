//! Test support and conformance suites for Tollgate's integration tests.
//!
//! Every test gets its own [`support::Namespace`]: a random prefix for each
//! exchange and queue, deleted at the end, so tests run in parallel on one
//! shared RabbitMQ.

pub mod conformance;
pub mod support;
