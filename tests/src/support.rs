//! Fixtures shared by the integration tests.

mod broker;
mod fixture;
mod namespace;
mod proxy;

pub use broker::{DEFAULT_AMQP_URL, amqp_url, await_broker};
pub use fixture::Fixture;
pub use namespace::Namespace;
pub use proxy::ChaosProxy;
