//! A lean AMQP 0-9-1 client for RabbitMQ whose socket is read and written by
//! tokio tasks, on amq-protocol's codec (the one lapin uses).
//!
//! Why not lapin: it runs each connection's socket on a thread of its own,
//! so every message crosses threads twice in each process it passes (see
//! README, "Where a call's time goes"), and it closes the connection on a
//! message whose `message_id` is not UTF-8. Why not amqprs: it reads long
//! strings in header tables (and every short string) as UTF-8 text, and a
//! message carrying a binary one (legal AMQP; RabbitMQ's AMQP 1.0 plugin
//! writes them) makes it close the whole connection — a message any
//! publisher could use to cut every router off the broker.
//!
//! What it covers is what Tollgate's transport needs: `amqp` and `amqps`
//! (rustls, the system's roots), PLAIN and EXTERNAL logins, heartbeats,
//! channels, declarations, publisher confirms with mandatory returns matched
//! to their publish, consumers with manual acks, `connection.blocked`. A
//! content header it cannot parse, or whose headers nest deeper than
//! [`MAX_HEADER_DEPTH`], is delivered as a [`Delivery`] with
//! [`Delivery::malformed`] set instead of breaking the connection.

mod channel;
mod confirms;
mod connection;
mod consumer;
mod error;
mod frames;
mod io;
mod reader;
mod tls;

pub use amq_protocol::{
    protocol::BasicProperties,
    types::{self, AMQPValue, FieldTable, LongString, ShortString},
    uri::{self, AMQPUri},
};
pub use channel::{Channel, Confirm, QueueOptions, QueueState};
pub use confirms::{Confirmation, Returned};
pub use connection::Connection;
pub use consumer::{Acker, Consumer, Delivery};
pub use error::WireError;
pub use frames::{MAX_HEADER_DEPTH, decode_properties, encode_properties, short};
