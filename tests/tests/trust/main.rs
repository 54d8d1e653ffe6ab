//! Trust state at runtime (issue 10, item 1) against RabbitMQ and Redis,
//! through two real routers: a revocation, a disabled consumer and a removed
//! key are refused by both routers within a second, and nothing else is
//! disturbed; a router started later loads them; only the policy's admin may
//! change trust state; a forged broadcast on the control exchange is ignored.

// Test code: a failed expectation should panic loudly.
#![allow(clippy::unwrap_used)]

mod admin;
mod commands;
mod flow;
mod harness;
mod routers;
