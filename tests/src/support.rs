//! Fixtures shared by the integration tests.

mod binary;
mod broker;
mod broker_ctl;
mod bus;
mod central;
pub mod clients;
mod fixture;
mod foreign_caller;
pub mod http_client;
mod namespace;
mod node_ctl;
mod proxy;
mod publisher;
mod redis_server;
mod registrar;
mod router_process;
mod tap;
mod wait;

pub use binary::{example_binary, tollgate_binary};
pub use broker::{DEFAULT_AMQP_URL, amqp_url, await_broker, broker_addr};
pub use broker_ctl::{MemoryAlarm, StoppedBroker, rabbitmqctl};
pub use bus::{CALLERS, REGISTRATION_AUDIENCE, SERVICE_ACCOUNTS, TestBus, now};
pub use central::{CentralBus, PASSWORD, central_toml};
pub use fixture::Fixture;
pub use foreign_caller::check_foreign_caller;
pub use namespace::Namespace;
pub use node_ctl::NodeCtl;
pub use proxy::ChaosProxy;
pub use publisher::{Published, Publisher};
pub use redis_server::{PrivateRedis, delete_prefix, redis_url};
pub use registrar::admit_every_registration;
pub use router_process::{RouterProcess, free_local_addr};
pub use tap::Tap;
pub use wait::{poll_until, wait_until};
