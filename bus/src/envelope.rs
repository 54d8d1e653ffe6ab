//! The one type for a message in flight.

use std::time::Duration;

use bytes::Bytes;

use crate::header_map::{HeaderError, Headers, MAX_NAME_BYTES};

/// A message in flight: payload, AMQP properties and headers. Who sent it is
/// not part of it: the gate's [`crate::chain::Permitted`] carries that.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Message id; [`Envelope::new`] assigns a fresh UUID.
    pub id: String,
    /// Correlates a reply with its request.
    pub correlation_id: Option<String>,
    /// Queue the sender wants replies on.
    pub reply_to: Option<String>,
    /// MIME type of the payload (`application/json`, `application/msgpack`, …).
    pub content_type: Option<String>,
    /// Seconds since the Unix epoch when the message was created.
    pub timestamp: Option<u64>,
    /// Application headers.
    pub headers: Headers,
    /// The body.
    pub payload: Bytes,
    /// Whether the broker keeps it on disk (AMQP `delivery_mode`); see
    /// README's delivery contract for which hop uses which.
    pub delivery_mode: DeliveryMode,
    /// How long a queue keeps it before dropping it, or dead-lettering it
    /// `expired` where the queue has a dead-letter exchange (AMQP
    /// `expiration`); `None`: as long as the queue keeps its messages.
    pub expiration: Option<Duration>,
    /// The broker user that published it (AMQP `user_id`). The broker checks
    /// it against the publisher's login, so on a received message it names
    /// who published it, or is `None`. On publish a transport sends it only
    /// when it names the transport's own user ([`crate::Transport::user`]);
    /// a message relayed from another publisher never claims to be theirs.
    /// The router names itself on the requests it delivers: the broker then
    /// vouches that such a request came from a router (see README, "Backlogs
    /// older than an assertion").
    pub user_id: Option<String>,
}

/// Whether the broker writes a message to disk (AMQP `delivery_mode` 2 or 1).
///
/// A persistent message in a durable queue survives a broker restart, and its
/// publisher confirm waits for the disk; a transient one lives in memory only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeliveryMode {
    /// Written to disk (requests: never lost once confirmed).
    #[default]
    Persistent,
    /// Kept in memory (replies: a reply dies with its caller's queue anyway).
    Transient,
}

impl DeliveryMode {
    /// AMQP's `delivery_mode` property: 2 persistent, 1 transient.
    pub const fn amqp(self) -> u8 {
        match self {
            Self::Persistent => 2,
            Self::Transient => 1,
        }
    }
}

impl Envelope {
    /// A new message with a fresh id and the current time.
    pub fn new(payload: impl Into<Bytes>) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            correlation_id: None,
            reply_to: None,
            content_type: None,
            timestamp: Some(crate::time::unix_now()),
            headers: Headers::new(),
            payload: payload.into(),
            delivery_mode: DeliveryMode::Persistent,
            expiration: None,
            user_id: None,
        }
    }

    /// Publishes it transient: kept in memory, not on the broker's disk.
    pub fn transient(mut self) -> Self {
        self.delivery_mode = DeliveryMode::Transient;
        self
    }

    /// Publishes it as the delivery contract has messages on `hop` published.
    pub fn for_hop(mut self, hop: crate::Hop) -> Self {
        self.delivery_mode = hop.delivery_mode();
        self
    }

    /// Sets the content type.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Sets the correlation id.
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Sets the reply queue.
    pub fn with_reply_to(mut self, queue: impl Into<String>) -> Self {
        self.reply_to = Some(queue.into());
        self
    }

    /// Sets the message id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Replaces the headers.
    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }

    /// Checks that AMQP can carry this message: short-string properties and headers.
    ///
    /// Both transports call this before publishing.
    pub fn check_wire(&self) -> Result<(), HeaderError> {
        let properties = [
            Some(&self.id),
            self.correlation_id.as_ref(),
            self.reply_to.as_ref(),
            self.content_type.as_ref(),
        ];
        if let Some(p) = properties
            .into_iter()
            .flatten()
            .find(|p| p.len() > MAX_NAME_BYTES)
        {
            return Err(HeaderError::PropertyTooLong { len: p.len() });
        }
        self.headers.check_wire()
    }

    /// Size of the message in bytes as the limits count it: payload plus encoded headers.
    pub fn size(&self) -> usize {
        self.payload.len() + self.headers.encoded_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_envelopes_get_distinct_ids() {
        let a = Envelope::new("a");
        let b = Envelope::new("b");
        assert_ne!(a.id, b.id);
        assert!(a.timestamp.is_some());
    }
}
