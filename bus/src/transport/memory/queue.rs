//! One in-memory queue: ready messages, unacked deliveries, consumers, and dispatch.

use std::{
    collections::{HashMap, VecDeque},
    time::Instant,
};

use tokio::sync::mpsc;

use crate::{
    envelope::Envelope,
    headers,
    topology::{QueueKind, QueueSpec},
    transport::{Delivery, DeliveryInfo, QueueInfo},
};

/// A message held by a queue.
#[derive(Debug, Clone)]
pub(super) struct Message {
    pub(super) envelope: Envelope,
    pub(super) exchange: String,
    pub(super) routing_key: String,
    pub(super) redelivered: bool,
    /// Times it was returned to the queue (quorum queues' delivery count).
    pub(super) returns: u32,
    pub(super) enqueued: Instant,
}

/// Why a message leaves a queue without being acked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DeathReason {
    Rejected,
    Expired,
    MaxLen,
    DeliveryLimit,
}

struct Consumer {
    id: u64,
    conn: u64,
    prefetch: u16,
    in_flight: u16,
    tx: mpsc::UnboundedSender<Delivery>,
}

struct Unacked {
    consumer: u64,
    message: Message,
}

/// Queue state; every method runs under the broker lock.
pub(super) struct Queue {
    pub(super) spec: QueueSpec,
    /// Connection owning an exclusive queue.
    pub(super) owner: Option<u64>,
    ready: VecDeque<Message>,
    unacked: HashMap<u64, Unacked>,
    consumers: Vec<Consumer>,
    next_consumer: usize,
    had_consumer: bool,
}

/// Builds the settle handle of a delivery; given by the broker to [`Queue::dispatch`].
pub(super) type SettleFactory<'a> = &'a dyn Fn(u64, u64) -> Box<dyn crate::transport::Settle>;

// === DeathReason ===

impl DeathReason {
    pub(super) const fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::MaxLen => "maxlen",
            Self::DeliveryLimit => "delivery_limit",
        }
    }
}

// === Queue ===

impl Queue {
    pub(super) fn new(spec: QueueSpec, owner: Option<u64>) -> Self {
        Self {
            spec,
            owner,
            ready: VecDeque::new(),
            unacked: HashMap::new(),
            consumers: Vec::new(),
            next_consumer: 0,
            had_consumer: false,
        }
    }

    pub(super) fn info(&self) -> QueueInfo {
        QueueInfo {
            messages: u32::try_from(self.ready.len()).unwrap_or(u32::MAX),
            consumers: u32::try_from(self.consumers.len()).unwrap_or(u32::MAX),
        }
    }

    /// Whether the queue is full for a `reject-publish` overflow.
    pub(super) fn refuses_publish(&self) -> bool {
        use crate::topology::Overflow;
        let full = self
            .spec
            .max_length
            .is_some_and(|max| self.ready.len() >= max as usize)
            || self
                .spec
                .max_length_bytes
                .is_some_and(|max| self.ready_bytes() >= max);
        full && self.spec.overflow == Overflow::RejectPublish
    }

    /// Appends a message; returns what `drop-head` overflow pushed out.
    pub(super) fn enqueue(&mut self, message: Message) -> Vec<(Message, DeathReason)> {
        self.ready.push_back(message);
        let mut dropped = Vec::new();
        if let Some(max) = self.spec.max_length {
            while self.ready.len() > max as usize {
                if let Some(head) = self.ready.pop_front() {
                    dropped.push((head, DeathReason::MaxLen));
                }
            }
        }
        if let Some(max) = self.spec.max_length_bytes {
            // Summed per enqueue: only the bus's dead-letter queue has a byte
            // bound, and the memory transport serves tests and the demo.
            let mut bytes = self.ready_bytes();
            while bytes > max {
                let Some(head) = self.ready.pop_front() else {
                    break;
                };
                bytes -= head.envelope.payload.len() as u64;
                dropped.push((head, DeathReason::MaxLen));
            }
        }
        dropped
    }

    /// Bytes of the ready messages' bodies (what RabbitMQ's byte bound counts).
    fn ready_bytes(&self) -> u64 {
        self.ready
            .iter()
            .map(|m| m.envelope.payload.len() as u64)
            .sum()
    }

    /// Removes expired messages from the head (RabbitMQ's semantics): a
    /// message lives the shorter of the queue's TTL and its own expiration.
    pub(super) fn expire(&mut self, now: Instant) -> Vec<(Message, DeathReason)> {
        let queue_ttl = self.spec.message_ttl;
        let ttl_of = |m: &Message| match (queue_ttl, m.envelope.expiration) {
            (Some(q), Some(own)) => Some(q.min(own)),
            (q, own) => q.or(own),
        };
        let mut expired = Vec::new();
        while self
            .ready
            .front()
            .is_some_and(|m| ttl_of(m).is_some_and(|ttl| now.duration_since(m.enqueued) >= ttl))
        {
            if let Some(m) = self.ready.pop_front() {
                expired.push((m, DeathReason::Expired));
            }
        }
        expired
    }

    pub(super) fn add_consumer(
        &mut self,
        id: u64,
        conn: u64,
        prefetch: u16,
        tx: mpsc::UnboundedSender<Delivery>,
    ) {
        self.consumers.push(Consumer {
            id,
            conn,
            prefetch: prefetch.max(1),
            in_flight: 0,
            tx,
        });
        self.had_consumer = true;
    }

    /// Removes a consumer and returns its unacked messages to the head of the
    /// queue, marked redelivered. Returns what exceeded the delivery limit.
    pub(super) fn remove_consumer(&mut self, id: u64) -> Vec<(Message, DeathReason)> {
        self.consumers.retain(|c| c.id != id);
        let mut tags: Vec<u64> = self
            .unacked
            .iter()
            .filter(|(_, u)| u.consumer == id)
            .map(|(t, _)| *t)
            .collect();
        tags.sort_unstable();
        let mut dead = Vec::new();
        for tag in tags.into_iter().rev() {
            if let Some(u) = self.unacked.remove(&tag) {
                dead.extend(self.return_to_head(u.message));
            }
        }
        dead
    }

    /// Consumer ids owned by connection `conn`.
    pub(super) fn consumers_of(&self, conn: u64) -> Vec<u64> {
        self.consumers
            .iter()
            .filter(|c| c.conn == conn)
            .map(|c| c.id)
            .collect()
    }

    /// Whether an auto-delete queue has lost its last consumer.
    pub(super) fn should_auto_delete(&self) -> bool {
        self.spec.auto_delete && self.had_consumer && self.consumers.is_empty()
    }

    /// Settles delivery `tag` of `consumer`; `None` when it is not (or no longer) unacked.
    pub(super) fn settle(&mut self, tag: u64, consumer: u64) -> Option<Message> {
        match self.unacked.get(&tag) {
            Some(u) if u.consumer == consumer => {}
            _ => return None,
        }
        let u = self.unacked.remove(&tag)?;
        if let Some(c) = self.consumers.iter_mut().find(|c| c.id == consumer) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
        Some(u.message)
    }

    /// Puts a returned message back at the head, unless it is past the delivery limit.
    pub(super) fn return_to_head(
        &mut self,
        mut message: Message,
    ) -> Option<(Message, DeathReason)> {
        message.redelivered = true;
        message.returns += 1;
        match self.spec.delivery_limit {
            Some(limit) if self.spec.kind == QueueKind::Quorum && message.returns > limit => {
                Some((message, DeathReason::DeliveryLimit))
            }
            _ => {
                self.ready.push_front(message);
                None
            }
        }
    }

    /// Hands ready messages to consumers with free prefetch, round robin.
    /// Returns consumers whose stream is gone (to be removed by the caller).
    pub(super) fn dispatch(
        &mut self,
        next_tag: &mut dyn FnMut() -> u64,
        settle: SettleFactory<'_>,
    ) -> Vec<u64> {
        let mut gone = Vec::new();
        while !self.ready.is_empty() {
            let Some(idx) = self.next_free_consumer() else {
                break;
            };
            let Some(message) = self.ready.pop_front() else {
                break;
            };
            let tag = next_tag();
            let consumer = &mut self.consumers[idx];
            let delivery = Delivery::new(
                deliverable(&message, self.spec.kind),
                DeliveryInfo {
                    exchange: message.exchange.clone(),
                    routing_key: message.routing_key.clone(),
                    redelivered: message.redelivered,
                    delivery_count: message.returns,
                    // The memory broker holds envelopes, never unparsed bytes.
                    unreadable: None,
                },
                settle(tag, consumer.id),
            );
            if consumer.tx.send(delivery).is_err() {
                gone.push(consumer.id);
                self.ready.push_front(message);
                let id = consumer.id;
                self.consumers.retain(|c| c.id != id);
                continue;
            }
            consumer.in_flight += 1;
            self.unacked.insert(
                tag,
                Unacked {
                    consumer: consumer.id,
                    message,
                },
            );
        }
        gone
    }

    fn next_free_consumer(&mut self) -> Option<usize> {
        if self.spec.single_active_consumer {
            // The first consumer still subscribed is the active one.
            return self
                .consumers
                .first()
                .is_some_and(|c| c.in_flight < c.prefetch)
                .then_some(0);
        }
        let n = self.consumers.len();
        (0..n)
            .map(|i| (self.next_consumer + i) % n)
            .find(|&i| {
                let c = &self.consumers[i];
                c.in_flight < c.prefetch
            })
            .inspect(|&i| self.next_consumer = (i + 1) % n.max(1))
    }
}

/// The envelope as a consumer sees it: quorum queues stamp the delivery count.
fn deliverable(message: &Message, kind: QueueKind) -> Envelope {
    let mut envelope = message.envelope.clone();
    if kind == QueueKind::Quorum && message.returns > 0 {
        envelope
            .headers
            .insert(headers::X_DELIVERY_COUNT, i64::from(message.returns));
    }
    envelope
}
