//! Test support and conformance suites for Tollgate's integration tests.
//!
//! Every test gets its own [`support::Namespace`]: a random prefix for each
//! exchange and queue, deleted at the end, so tests run in parallel on one
//! shared RabbitMQ.

// This crate is test code: a failed expectation should panic loudly.
#![allow(clippy::unwrap_used)]

pub mod conformance;
pub mod support;
