//! `tollgate-bus`: the envelope, the transports, the interceptor chain, the
//! registry, translation, the router and its configuration.
//!
//! Everything above the transport layer is written against the [`Transport`]
//! trait alone, so the same router runs on RabbitMQ ([`AmqpTransport`]) and in
//! process ([`MemoryTransport`]).

mod address;
pub mod bus_topology;
pub mod central;
pub mod chain;
pub mod config;
pub mod dead_letter;
mod envelope;
mod error;
mod error_reply;
pub mod events;
pub mod header_map;
pub mod headers;
pub mod health;
mod hop;
pub mod jwks;
pub mod meters;
mod names;
pub mod redis_connection;
pub mod registry;
mod rejection;
pub mod reply_context;
mod reply_key;
pub mod router;
pub mod stack;
pub mod time;
mod topology;
pub mod translate;
pub mod transport;
pub mod trust;

pub use address::Address;
pub use envelope::{DeliveryMode, Envelope};
pub use error::{JwksError, TransportError};
pub use error_reply::{ERROR_CONTENT_TYPE, ErrorBody, ErrorDetail};
pub use header_map::{HeaderError, HeaderValue, Headers};
pub use hop::Hop;
pub use names::{BusNames, DEFAULT_NAMESPACE, DIRECT_REPLY_TO};
pub use rejection::{RejectCode, Rejection, Stage};
pub use reply_key::ReplyKey;
pub use topology::{
    Binding, DeadLetter, ExchangeKind, ExchangeSpec, Overflow, QueueKind, QueueSpec, Topology,
};
pub use transport::amqp::{
    AmqpConfig, AmqpTransport, BrokerNodes, NODE_SEPARATOR, NodeListError, redact_amqp_urls,
};
pub use transport::memory::{MemoryBroker, MemoryTransport};
pub use transport::{Delivery, DeliveryInfo, QueueInfo, SubscribeOptions, Subscription, Transport};
