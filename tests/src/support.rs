//! Fixtures shared by the integration tests.

mod binary;
mod broker;
mod bus;
mod fixture;
mod namespace;
mod proxy;
mod router_process;

pub use binary::tollgate_binary;
pub use broker::{DEFAULT_AMQP_URL, amqp_url, await_broker};
pub use bus::{CALLERS, SERVICE_ACCOUNTS, TestBus, now};
pub use fixture::Fixture;
pub use namespace::Namespace;
pub use proxy::ChaosProxy;
pub use router_process::RouterProcess;
