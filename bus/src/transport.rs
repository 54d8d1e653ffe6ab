//! The transport contract every layer above is written against.
//!
//! Two implementations pass the same conformance suite
//! (`tests/src/conformance/transport.rs`): [`amqp::AmqpTransport`] on RabbitMQ
//! and [`memory::MemoryTransport`] in process.

use std::{
    fmt,
    pin::Pin,
    sync::Mutex,
    task::{Context, Poll},
};

use async_trait::async_trait;
use futures_util::Stream;
use tokio::sync::mpsc;

use crate::{address::Address, envelope::Envelope, error::TransportError, topology::Topology};

pub mod amqp;
pub mod memory;
mod topic;

pub use topic::topic_matches;

/// Moves envelopes between the bus and the broker.
///
/// Delivery is honest: [`Transport::publish`] returns only once the broker
/// took responsibility for the message, and a [`Delivery`] stays unacked
/// (and is redelivered if its consumer goes away) until it is settled.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Declares exchanges, queues and bindings (idempotent for equal specs).
    ///
    /// Errors with [`TransportError::PreconditionFailed`] when something of the
    /// same name exists with other settings, [`TransportError::NotFound`] when a
    /// binding names a missing exchange or queue, and
    /// [`TransportError::InvalidTopology`] for specs no broker accepts.
    async fn declare(&self, topology: &Topology) -> Result<(), TransportError>;

    /// Deletes the queues and exchanges of `topology` (missing ones are ignored).
    async fn delete(&self, topology: &Topology) -> Result<(), TransportError>;

    /// Publishes `envelope` (persistent, mandatory) and waits for the broker's confirm.
    ///
    /// Errors with [`TransportError::Unroutable`] when no queue took it,
    /// [`TransportError::Nacked`] when the broker refused it,
    /// [`TransportError::NotFound`] for a missing exchange,
    /// [`TransportError::InvalidHeaders`] for headers AMQP cannot carry, and
    /// [`TransportError::ConnectionLost`] when the outcome is unknown (retry).
    async fn publish(&self, to: &Address, envelope: &Envelope) -> Result<(), TransportError>;

    /// Starts consuming `queue` with at most `options.prefetch` unsettled deliveries.
    ///
    /// Dropping the [`Subscription`] cancels the consumer; its unsettled
    /// deliveries are redelivered to others with `redelivered` set.
    async fn subscribe(
        &self,
        queue: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription, TransportError>;

    /// Counts the ready messages and consumers of `queue`; [`TransportError::NotFound`] if missing.
    async fn inspect(&self, queue: &str) -> Result<QueueInfo, TransportError>;

    /// Closes the transport: consumers stop, exclusive queues go away, and
    /// every later call fails with [`TransportError::Closed`].
    async fn close(&self) -> Result<(), TransportError>;

    /// Whether the transport holds a working connection to its broker right
    /// now (false while it reconnects, and once closed). Never waits.
    fn is_connected(&self) -> bool;

    /// Whether the broker blocks this connection's publishes now (a memory
    /// or disk alarm: `connection.blocked`). Never waits; false by default.
    fn is_blocked(&self) -> bool {
        false
    }

    /// The broker user this connection logged in as, when it logged in by
    /// name (not by a TLS certificate: `auth_mechanism=external`): the only
    /// [`Envelope::user_id`] its publishes carry (none without one).
    fn user(&self) -> Option<&str>;
}

/// Settles one delivery; implemented by each transport.
#[async_trait]
pub trait Settle: Send + Sync + 'static {
    /// Acknowledges: the broker forgets the message.
    async fn ack(&self) -> Result<(), TransportError>;
    /// Rejects: requeued (and redelivered) or dead-lettered.
    async fn reject(&self, requeue: bool) -> Result<(), TransportError>;
}

/// Options of [`Transport::subscribe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// Most unsettled deliveries at once (AMQP `basic.qos`); at least 1.
    pub prefetch: u16,
}

/// Broker-side facts about a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryInfo {
    /// Exchange the message was published to (empty: default exchange).
    pub exchange: String,
    /// Routing key it was published with.
    pub routing_key: String,
    /// Whether it was delivered before and not acked.
    pub redelivered: bool,
    /// How often it was returned before (quorum queues' `x-delivery-count`); 0 if unknown.
    pub delivery_count: u32,
    /// Why the message's broker properties could not be read, when they
    /// could not (a short string that is not UTF-8: RabbitMQ passes such
    /// properties through). The envelope then carries the body only; the
    /// message must be refused, never served.
    pub unreadable: Option<String>,
}

/// Ready messages and consumers of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueInfo {
    /// Messages waiting for a consumer (unacked ones are not counted).
    pub messages: u32,
    /// Active consumers.
    pub consumers: u32,
}

/// One message handed to a consumer; settle it with [`Delivery::ack`] or [`Delivery::reject`].
pub struct Delivery {
    /// The message.
    pub envelope: Envelope,
    /// Where it came from.
    pub info: DeliveryInfo,
    acker: Acker,
}

/// The settle handle of a delivery, separable from its envelope.
pub struct Acker(Box<dyn Settle>);

/// A stream of deliveries from one queue. Dropping it cancels the consumer.
pub struct Subscription {
    // A `Mutex` only to make the subscription `Sync`; `next` takes `&mut self`
    // and so never locks.
    deliveries: Mutex<DeliveryStream>,
}

type DeliveryStream = Pin<Box<dyn Stream<Item = Delivery> + Send>>;

// === SubscribeOptions ===

impl SubscribeOptions {
    /// Options with the given prefetch (raised to 1 if 0).
    pub fn prefetch(prefetch: u16) -> Self {
        Self {
            prefetch: prefetch.max(1),
        }
    }
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        Self::prefetch(64)
    }
}

// === Delivery ===

impl Delivery {
    /// Builds a delivery; for transport implementations.
    pub fn new(envelope: Envelope, info: DeliveryInfo, settle: Box<dyn Settle>) -> Self {
        Self {
            envelope,
            info,
            acker: Acker(settle),
        }
    }

    /// Acknowledges the delivery.
    pub async fn ack(self) -> Result<(), TransportError> {
        self.acker.ack().await
    }

    /// Rejects the delivery: requeued for redelivery, or dead-lettered when `requeue` is false.
    pub async fn reject(self, requeue: bool) -> Result<(), TransportError> {
        self.acker.reject(requeue).await
    }

    /// Splits the delivery so the envelope can move on while the acker waits.
    pub fn into_parts(self) -> (Envelope, DeliveryInfo, Acker) {
        (self.envelope, self.info, self.acker)
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("envelope", &self.envelope)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

// === Acker ===

impl Acker {
    /// Acknowledges the delivery.
    pub async fn ack(self) -> Result<(), TransportError> {
        self.0.ack().await
    }

    /// Rejects the delivery; see [`Delivery::reject`].
    pub async fn reject(self, requeue: bool) -> Result<(), TransportError> {
        self.0.reject(requeue).await
    }
}

impl fmt::Debug for Acker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Acker")
    }
}

// === Subscription ===

impl Subscription {
    /// A subscription fed by `deliveries`; `cancel_on_drop` is dropped with it
    /// and must cancel the consumer then. For transport implementations.
    pub fn new(
        mut deliveries: mpsc::UnboundedReceiver<Delivery>,
        cancel_on_drop: Box<dyn Send + Sync>,
    ) -> Self {
        Self::from_stream(futures_util::stream::poll_fn(move |cx| {
            let _keep = &cancel_on_drop;
            deliveries.poll_recv(cx)
        }))
    }

    /// A subscription that polls `deliveries` in the subscriber's own task
    /// (no hand-over between tasks per message); dropping the stream must
    /// cancel the consumer. For transport implementations.
    pub fn from_stream(deliveries: impl Stream<Item = Delivery> + Send + 'static) -> Self {
        Self {
            deliveries: Mutex::new(Box::pin(deliveries)),
        }
    }

    /// The next delivery; `None` once the consumer is gone for good
    /// (transport closed or queue deleted).
    pub async fn next(&mut self) -> Option<Delivery> {
        futures_util::StreamExt::next(self).await
    }
}

impl Stream for Subscription {
    type Item = Delivery;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        match self.deliveries.get_mut() {
            Ok(stream) => stream.as_mut().poll_next(cx),
            Err(poisoned) => poisoned.into_inner().as_mut().poll_next(cx),
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Subscription")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<Delivery>();
        assert_send_sync::<Subscription>();
        assert_send_sync::<amqp::AmqpTransport>();
        assert_send_sync::<memory::MemoryTransport>();
        assert_send_sync::<std::sync::Arc<dyn Transport>>();
    }
}
