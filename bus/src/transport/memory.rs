//! In-process transport with RabbitMQ's semantics, for the demo and fast tests.
//!
//! A [`MemoryBroker`] holds exchanges and queues; each [`MemoryTransport`] is a
//! connection to it. Routing by exchange kind, returned (unroutable) messages,
//! prefetch, redelivery of unacked messages when a consumer goes away,
//! dead-lettering on reject, expiry, overflow and delivery limit, exclusive
//! and auto-delete queues all behave as on RabbitMQ, and the conformance suite
//! holds both to the same cases.

use std::{
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::{
    address::Address,
    envelope::Envelope,
    error::TransportError,
    topology::Topology,
    transport::{QueueInfo, Settle, SubscribeOptions, Subscription, Transport},
};

mod queue;
mod state;

use queue::{DeathReason, Message};
use state::State;

/// The user of [`MemoryBroker::connect`]'s connections (RabbitMQ's default one).
pub const DEFAULT_USER: &str = "guest";

/// An in-process broker; cheap to clone (all clones share one broker).
#[derive(Clone, Default)]
pub struct MemoryBroker {
    shared: Arc<Shared>,
}

/// A connection to a [`MemoryBroker`].
pub struct MemoryTransport {
    broker: MemoryBroker,
    conn: u64,
    /// The user it logged in as ([`Transport::user`]).
    user: String,
    closed: AtomicBool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    ids: AtomicU64,
}

struct MemorySettle {
    shared: Arc<Shared>,
    queue: String,
    tag: u64,
    consumer: u64,
}

struct CancelOnDrop {
    shared: Arc<Shared>,
    queue: String,
    consumer: u64,
}

// === MemoryBroker ===

impl MemoryBroker {
    /// A new, empty broker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens a new connection to this broker, as user [`DEFAULT_USER`].
    pub fn connect(&self) -> MemoryTransport {
        self.connect_as(DEFAULT_USER)
    }

    /// Opens a new connection to this broker as broker user `user`: like
    /// RabbitMQ, the broker lets its publishes name no other user
    /// ([`Envelope::user_id`]).
    pub fn connect_as(&self, user: &str) -> MemoryTransport {
        MemoryTransport {
            broker: self.clone(),
            conn: self.shared.next_id(),
            user: user.to_owned(),
            closed: AtomicBool::new(false),
        }
    }
}

impl std::fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryBroker")
    }
}

// === MemoryTransport ===

impl MemoryTransport {
    /// A connection to a new broker of its own.
    pub fn new() -> Self {
        MemoryBroker::new().connect()
    }

    /// The broker this connection talks to; [`MemoryBroker::connect`] opens more.
    pub fn broker(&self) -> &MemoryBroker {
        &self.broker
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.broker.shared
    }

    fn check_open(&self) -> Result<(), TransportError> {
        if self.closed.load(Ordering::Acquire) {
            Err(TransportError::Closed)
        } else {
            Ok(())
        }
    }

    fn disconnect(&self) {
        let shared = self.shared();
        let mut state = shared.state.lock();
        let names: Vec<String> = state.queues.keys().cloned().collect();
        for name in names {
            let owned = state
                .queues
                .get(&name)
                .is_some_and(|q| q.owner == Some(self.conn));
            if owned {
                state.delete_queue(&name);
                continue;
            }
            let consumers = state
                .queues
                .get(&name)
                .map(|q| q.consumers_of(self.conn))
                .unwrap_or_default();
            for id in consumers {
                shared.remove_consumer(&mut state, &name, id);
            }
        }
        shared.pump(&mut state);
    }
}

impl Default for MemoryTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for MemoryTransport {
    fn drop(&mut self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.disconnect();
        }
    }
}

#[async_trait]
impl Transport for MemoryTransport {
    async fn declare(&self, topology: &Topology) -> Result<(), TransportError> {
        self.check_open()?;
        topology.validate()?;
        let mut state = self.shared().state.lock();
        for exchange in &topology.exchanges {
            state.declare_exchange(exchange)?;
        }
        for spec in &topology.queues {
            let created = state.declare_queue(spec, self.conn)?;
            if let (true, Some(ttl)) = (created, spec.message_ttl) {
                spawn_expiry(Arc::downgrade(self.shared()), spec.name.clone(), ttl);
            }
        }
        for binding in &topology.bindings {
            state.bind(binding)?;
        }
        Ok(())
    }

    async fn delete(&self, topology: &Topology) -> Result<(), TransportError> {
        self.check_open()?;
        let mut state = self.shared().state.lock();
        for queue in &topology.queues {
            state
                .check_access(&queue.name, self.conn)
                .or_else(ignore_missing)?;
            state.delete_queue(&queue.name);
        }
        for exchange in &topology.exchanges {
            state.delete_exchange(&exchange.name);
        }
        Ok(())
    }

    async fn publish(&self, to: &Address, envelope: &Envelope) -> Result<(), TransportError> {
        // Publishing never waits on I/O here; take part in tokio's cooperative
        // budget so a publishing loop cannot starve the consumers it feeds.
        tokio::task::consume_budget().await;
        self.check_open()?;
        envelope.check_wire()?;
        let mut envelope = envelope.clone();
        if envelope.user_id.as_deref() != Some(self.user.as_str()) {
            envelope.user_id = None;
        }
        let envelope_ttl = envelope.expiration;
        let message = Message {
            envelope,
            exchange: to.exchange.clone(),
            routing_key: to.routing_key.clone(),
            redelivered: false,
            returns: 0,
            enqueued: Instant::now(),
        };
        let shared = self.shared();
        let mut state = shared.state.lock();
        let routed = state.route(to, message)?;
        shared.pump(&mut state);
        if let Some(ttl) = envelope_ttl {
            spawn_expiry_once(Arc::downgrade(shared), ttl);
        }
        let (exchange, routing_key) = (to.exchange.clone(), to.routing_key.clone());
        if routed.refused {
            Err(TransportError::Nacked {
                exchange,
                routing_key,
            })
        } else if routed.queues == 0 {
            Err(TransportError::Unroutable {
                exchange,
                routing_key,
            })
        } else {
            Ok(())
        }
    }

    fn user(&self) -> Option<&str> {
        Some(&self.user)
    }

    async fn subscribe(
        &self,
        queue: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription, TransportError> {
        self.check_open()?;
        let shared = self.shared();
        let (tx, rx) = mpsc::unbounded_channel();
        let consumer = shared.next_id();
        let mut state = shared.state.lock();
        state.check_access(queue, self.conn)?;
        state
            .queue_mut(queue)?
            .add_consumer(consumer, self.conn, options.prefetch, tx);
        shared.pump(&mut state);
        let guard = CancelOnDrop {
            shared: Arc::clone(shared),
            queue: queue.to_owned(),
            consumer,
        };
        Ok(Subscription::new(rx, Box::new(guard)))
    }

    async fn inspect(&self, queue: &str) -> Result<QueueInfo, TransportError> {
        self.check_open()?;
        let shared = self.shared();
        let mut state = shared.state.lock();
        state.check_access(queue, self.conn)?;
        shared.pump(&mut state);
        Ok(state.queue_mut(queue)?.info())
    }

    fn is_connected(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }

    async fn close(&self) -> Result<(), TransportError> {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.disconnect();
        }
        Ok(())
    }
}

fn ignore_missing(e: TransportError) -> Result<(), TransportError> {
    match e {
        TransportError::NotFound { .. } => Ok(()),
        other => Err(other),
    }
}

/// Expires messages of a TTL queue even when nobody touches it, like RabbitMQ.
fn spawn_expiry(shared: Weak<Shared>, queue: String, ttl: Duration) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let period = (ttl / 4).clamp(Duration::from_millis(5), Duration::from_secs(1));
    handle.spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let mut state = shared.state.lock();
            if !state.queues.contains_key(&queue) {
                return;
            }
            shared.pump(&mut state);
        }
    });
}

/// Expires a message with its own expiration on time, even when nobody
/// touches its queue, like RabbitMQ does at the queue's head.
fn spawn_expiry_once(shared: Weak<Shared>, ttl: Duration) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    handle.spawn(async move {
        tokio::time::sleep(ttl).await;
        if let Some(shared) = shared.upgrade() {
            let mut state = shared.state.lock();
            shared.pump(&mut state);
        }
    });
}

// === Shared ===

impl Shared {
    fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Expires and dispatches until no queue can make progress.
    fn pump(self: &Arc<Self>, state: &mut State) {
        loop {
            let now = Instant::now();
            let mut deaths = Vec::new();
            let mut gone = Vec::new();
            for (name, queue) in state.queues.iter_mut() {
                deaths.extend(queue.expire(now).into_iter().map(|d| (name.clone(), d)));
                let settle = |tag, consumer| -> Box<dyn Settle> {
                    Box::new(MemorySettle {
                        shared: Arc::clone(self),
                        queue: name.clone(),
                        tag,
                        consumer,
                    })
                };
                let ids = queue.dispatch(&mut || self.next_id(), &settle);
                gone.extend(ids.into_iter().map(|id| (name.clone(), id)));
            }
            if deaths.is_empty() && gone.is_empty() {
                return;
            }
            for (queue, (message, reason)) in deaths {
                state.dead_letter(&queue, message, reason);
            }
            for (queue, id) in gone {
                self.remove_consumer(state, &queue, id);
            }
        }
    }

    /// Removes a consumer, returning its unacked messages, and auto-deletes the queue if due.
    fn remove_consumer(&self, state: &mut State, queue: &str, consumer: u64) {
        let Some(q) = state.queues.get_mut(queue) else {
            return;
        };
        let dead = q.remove_consumer(consumer);
        let auto_delete = q.should_auto_delete();
        for (message, reason) in dead {
            state.dead_letter(queue, message, reason);
        }
        if auto_delete {
            state.delete_queue(queue);
        }
    }
}

// === MemorySettle ===

impl MemorySettle {
    fn settle(&self, outcome: Option<bool>) -> Result<(), TransportError> {
        let mut state = self.shared.state.lock();
        let message = state
            .queues
            .get_mut(&self.queue)
            .and_then(|q| q.settle(self.tag, self.consumer))
            .ok_or(TransportError::DeliveryStale)?;
        match outcome {
            None => {}
            Some(true) => {
                let dead = state
                    .queues
                    .get_mut(&self.queue)
                    .and_then(|q| q.return_to_head(message));
                if let Some((message, reason)) = dead {
                    state.dead_letter(&self.queue, message, reason);
                }
            }
            Some(false) => state.dead_letter(&self.queue, message, DeathReason::Rejected),
        }
        self.shared.pump(&mut state);
        Ok(())
    }
}

#[async_trait]
impl Settle for MemorySettle {
    async fn ack(&self) -> Result<(), TransportError> {
        self.settle(None)
    }

    async fn reject(&self, requeue: bool) -> Result<(), TransportError> {
        self.settle(Some(requeue))
    }
}

// === CancelOnDrop ===

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        self.shared
            .remove_consumer(&mut state, &self.queue, self.consumer);
        self.shared.pump(&mut state);
    }
}
