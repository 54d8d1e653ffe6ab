//! What a transport declares: exchanges, queues and the bindings between them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{address::Address, error::TransportError};

/// A set of exchanges, queues and bindings, declared together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Topology {
    /// Exchanges, declared first.
    pub exchanges: Vec<ExchangeSpec>,
    /// Queues, declared second.
    pub queues: Vec<QueueSpec>,
    /// Bindings, declared last.
    pub bindings: Vec<Binding>,
}

/// How an exchange routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExchangeKind {
    /// Routing key equals binding key.
    Direct,
    /// Dotted words; `*` matches one word, `#` zero or more.
    Topic,
    /// Every bound queue, whatever the key.
    Fanout,
}

/// An exchange to declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeSpec {
    /// Name (not empty; the default exchange always exists).
    pub name: String,
    /// Routing kind.
    pub kind: ExchangeKind,
    /// Survives a broker restart.
    pub durable: bool,
}

/// The queue implementation.
///
/// On one node a classic durable queue with persistent messages and publisher
/// confirms survives a broker restart like a quorum queue does, and hands a
/// message to its consumer at once while the disk write runs in parallel; a
/// quorum queue holds it back until the write is committed (about 1 ms here),
/// and earns that cost in a cluster, where it replicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueKind {
    /// Classic queue.
    #[default]
    Classic,
    /// Replicated quorum queue; must be durable; supports a delivery limit.
    Quorum,
}

/// What happens when a queue with a max length is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Overflow {
    /// Drop (or dead-letter, reason `maxlen`) the oldest message.
    #[default]
    DropHead,
    /// Refuse the new message: the publisher gets a nack.
    RejectPublish,
}

/// A queue to declare.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    /// Name (not empty).
    pub name: String,
    /// Implementation.
    pub kind: QueueKind,
    /// Survives a broker restart (messages must also be persistent; Tollgate's are).
    pub durable: bool,
    /// Only the declaring connection may use it; deleted when it closes.
    pub exclusive: bool,
    /// Deleted once its last consumer goes away.
    pub auto_delete: bool,
    /// Where rejected, expired or overflowing messages go.
    pub dead_letter: Option<DeadLetter>,
    /// Most ready messages it holds.
    pub max_length: Option<u32>,
    /// Most bytes of ready message bodies it holds (RabbitMQ counts bodies only).
    pub max_length_bytes: Option<u64>,
    /// What happens past `max_length` or `max_length_bytes`.
    pub overflow: Overflow,
    /// Quorum only: returns after which a message is dead-lettered instead of redelivered.
    pub delivery_limit: Option<u32>,
    /// Messages older than this are dead-lettered with reason `expired`.
    pub message_ttl: Option<Duration>,
    /// Only one consumer at a time receives messages (the first that
    /// subscribed; the next takes over when it leaves): RabbitMQ's
    /// `x-single-active-consumer`.
    pub single_active_consumer: bool,
}

/// Dead-letter target of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Exchange dead-lettered messages are published to.
    pub exchange: String,
    /// Routing key to use; the message's own when `None`.
    pub routing_key: Option<String>,
}

/// Routes messages from an exchange into a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Source exchange.
    pub exchange: String,
    /// Destination queue.
    pub queue: String,
    /// Binding key (a pattern on topic exchanges).
    pub pattern: String,
}

// === Topology ===

impl Topology {
    /// An empty topology.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an exchange.
    pub fn exchange(mut self, spec: ExchangeSpec) -> Self {
        self.exchanges.push(spec);
        self
    }

    /// Adds a queue.
    pub fn queue(mut self, spec: QueueSpec) -> Self {
        self.queues.push(spec);
        self
    }

    /// Adds a binding.
    pub fn bind(mut self, exchange: &str, queue: &str, pattern: &str) -> Self {
        self.bindings.push(Binding {
            exchange: exchange.into(),
            queue: queue.into(),
            pattern: pattern.into(),
        });
        self
    }

    /// Adds everything of `other`.
    pub fn merge(&mut self, other: &Topology) {
        self.exchanges.extend(other.exchanges.iter().cloned());
        self.queues.extend(other.queues.iter().cloned());
        self.bindings.extend(other.bindings.iter().cloned());
    }

    /// Checks what both transports refuse: empty names, non-durable or
    /// exclusive quorum queues, a delivery limit on a classic queue.
    pub fn validate(&self) -> Result<(), TransportError> {
        let invalid = |m: String| Err(TransportError::InvalidTopology(m));
        for e in &self.exchanges {
            if e.name.is_empty() || e.name.starts_with("amq.") {
                return invalid(format!("exchange name `{}` is reserved", e.name));
            }
        }
        for q in &self.queues {
            if q.name.is_empty() || q.name.starts_with("amq.") {
                return invalid(format!("queue name `{}` is reserved", q.name));
            }
            if q.kind == QueueKind::Quorum && (!q.durable || q.exclusive || q.auto_delete) {
                return invalid(format!(
                    "quorum queue `{}` must be durable and shared",
                    q.name
                ));
            }
            if q.kind == QueueKind::Classic && q.delivery_limit.is_some() {
                return invalid(format!(
                    "delivery limit on `{}` needs a quorum queue",
                    q.name
                ));
            }
        }
        Ok(())
    }
}

// === QueueKind ===

impl std::str::FromStr for QueueKind {
    type Err = String;

    /// `classic` or `quorum`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "classic" => Ok(Self::Classic),
            "quorum" => Ok(Self::Quorum),
            _ => Err(format!("`{s}` is not classic or quorum")),
        }
    }
}

// === ExchangeSpec ===

impl ExchangeSpec {
    /// A durable exchange.
    pub fn new(name: impl Into<String>, kind: ExchangeKind) -> Self {
        Self {
            name: name.into(),
            kind,
            durable: true,
        }
    }

    /// A durable topic exchange.
    pub fn topic(name: impl Into<String>) -> Self {
        Self::new(name, ExchangeKind::Topic)
    }
}

// === QueueSpec ===

impl QueueSpec {
    /// A durable classic queue with no limits.
    pub fn classic(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: QueueKind::Classic,
            durable: true,
            exclusive: false,
            auto_delete: false,
            dead_letter: None,
            max_length: None,
            max_length_bytes: None,
            overflow: Overflow::DropHead,
            delivery_limit: None,
            message_ttl: None,
            single_active_consumer: false,
        }
    }

    /// A quorum queue (always durable).
    pub fn quorum(name: impl Into<String>) -> Self {
        Self {
            kind: QueueKind::Quorum,
            ..Self::classic(name)
        }
    }

    /// A durable queue of `kind`; a quorum queue also gets `delivery_limit`
    /// (classic queues cannot count returns).
    pub fn durable(name: impl Into<String>, kind: QueueKind, delivery_limit: u32) -> Self {
        match kind {
            QueueKind::Classic => Self::classic(name),
            QueueKind::Quorum => Self::quorum(name).delivery_limit(delivery_limit),
        }
    }

    /// A private, non-durable queue of this connection (e.g. for replies).
    pub fn exclusive(name: impl Into<String>) -> Self {
        Self {
            durable: false,
            exclusive: true,
            auto_delete: true,
            ..Self::classic(name)
        }
    }

    /// Dead-letters to `exchange`, keeping the message's routing key unless `routing_key` is set.
    pub fn dead_letter_to(
        mut self,
        exchange: impl Into<String>,
        routing_key: Option<&str>,
    ) -> Self {
        self.dead_letter = Some(DeadLetter {
            exchange: exchange.into(),
            routing_key: routing_key.map(str::to_owned),
        });
        self
    }

    /// Limits the number of ready messages.
    pub fn max_length(mut self, max: u32, overflow: Overflow) -> Self {
        self.max_length = Some(max);
        self.overflow = overflow;
        self
    }

    /// Limits the bytes of ready message bodies.
    pub fn max_length_bytes(mut self, max: u64, overflow: Overflow) -> Self {
        self.max_length_bytes = Some(max);
        self.overflow = overflow;
        self
    }

    /// Sets the delivery limit (quorum queues).
    pub fn delivery_limit(mut self, limit: u32) -> Self {
        self.delivery_limit = Some(limit);
        self
    }

    /// Sets the message TTL.
    pub fn message_ttl(mut self, ttl: Duration) -> Self {
        self.message_ttl = Some(ttl);
        self
    }

    /// Lets one consumer at a time receive messages.
    pub fn single_active_consumer(mut self) -> Self {
        self.single_active_consumer = true;
        self
    }
}

// === DeadLetter ===

impl DeadLetter {
    /// Where a message published to `original` is dead-lettered.
    pub fn address_for(&self, original: &Address) -> Address {
        let key = self
            .routing_key
            .clone()
            .unwrap_or_else(|| original.routing_key.clone());
        Address::new(self.exchange.clone(), key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_non_durable_quorum_queue() {
        let mut q = QueueSpec::quorum("q");
        q.durable = false;
        let err = Topology::new().queue(q).validate().unwrap_err();
        assert_eq!(err.code(), "invalid_topology");
    }

    #[test]
    fn refuses_a_delivery_limit_on_a_classic_queue() {
        let t = Topology::new().queue(QueueSpec::classic("q").delivery_limit(3));
        assert!(t.validate().is_err());
    }

    #[test]
    fn refuses_reserved_names() {
        assert!(
            Topology::new()
                .queue(QueueSpec::classic("amq.x"))
                .validate()
                .is_err()
        );
        assert!(
            Topology::new()
                .exchange(ExchangeSpec::topic(""))
                .validate()
                .is_err()
        );
    }

    #[test]
    fn dead_letter_keeps_the_routing_key_unless_overridden() {
        let from = Address::new("in", "orders.create");
        let keep = DeadLetter {
            exchange: "dlx".into(),
            routing_key: None,
        };
        let set = DeadLetter {
            exchange: "dlx".into(),
            routing_key: Some("dead".into()),
        };
        assert_eq!(
            keep.address_for(&from),
            Address::new("dlx", "orders.create")
        );
        assert_eq!(set.address_for(&from), Address::new("dlx", "dead"));
    }
}
