//! Deliveries of a consumer, and settling them.

use amq_protocol::protocol::BasicProperties;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::{channel::Channel, error::WireError};

/// One message delivered to a consumer.
#[derive(Debug)]
pub struct Delivery {
    /// The exchange it was published to (empty: the default exchange).
    pub exchange: String,
    /// Its routing key.
    pub routing_key: String,
    /// Whether it was delivered before.
    pub redelivered: bool,
    /// Its properties (empty when [`Delivery::malformed`] is set).
    pub properties: BasicProperties,
    /// Its body (as read off the socket, without a copy when it came in one frame).
    pub body: Bytes,
    /// Why its properties could not be read (a short string that is not
    /// UTF-8, say), when they could not: the message is still delivered, to
    /// be refused, never silently lost.
    pub malformed: Option<String>,
    /// Settles it.
    pub acker: Acker,
}

/// Settles one delivery on the channel it came on.
#[derive(Debug, Clone)]
pub struct Acker {
    channel: Channel,
    tag: u64,
}

/// The deliveries of one consumer; ends when the broker cancels it (its queue
/// was deleted) or its channel or connection closes.
#[derive(Debug)]
pub struct Consumer {
    tag: String,
    deliveries: mpsc::UnboundedReceiver<Delivery>,
}

impl Acker {
    pub(crate) fn new(channel: Channel, tag: u64) -> Self {
        Self { channel, tag }
    }

    /// Acknowledges the delivery. Fails when its channel is gone (the broker
    /// then redelivers it).
    pub fn ack(&self) -> Result<(), WireError> {
        self.channel.ack(self.tag)
    }

    /// Rejects the delivery: requeued, or dead-lettered when `requeue` is false.
    pub fn reject(&self, requeue: bool) -> Result<(), WireError> {
        self.channel.reject(self.tag, requeue)
    }
}

impl Consumer {
    pub(crate) fn new(tag: String, deliveries: mpsc::UnboundedReceiver<Delivery>) -> Self {
        Self { tag, deliveries }
    }

    /// The consumer tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The next delivery; `None` once the consumer ended.
    pub async fn next(&mut self) -> Option<Delivery> {
        self.deliveries.recv().await
    }
}
