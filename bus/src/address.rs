//! Where a message is published: an exchange and a routing key.

use std::fmt;

/// The target of a publish: an exchange and a routing key.
///
/// The default exchange (`""`) routes straight to the queue named by the
/// routing key, which is how replies reach a caller's `reply_to` queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// Exchange name; empty for the default exchange.
    pub exchange: String,
    /// Routing key, matched against the exchange's bindings.
    pub routing_key: String,
}

impl Address {
    /// An address on `exchange` with `routing_key`.
    pub fn new(exchange: impl Into<String>, routing_key: impl Into<String>) -> Self {
        Self {
            exchange: exchange.into(),
            routing_key: routing_key.into(),
        }
    }

    /// The address of a queue through the default exchange.
    pub fn queue(name: impl Into<String>) -> Self {
        Self {
            exchange: String::new(),
            routing_key: name.into(),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exchange = if self.exchange.is_empty() {
            "(default)"
        } else {
            &self.exchange
        };
        write!(f, "{exchange}/{}", self.routing_key)
    }
}
