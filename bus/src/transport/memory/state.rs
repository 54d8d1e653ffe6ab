//! The in-memory broker's state: exchanges, bindings, queues, routing and dead-lettering.

use std::{
    collections::{BTreeSet, HashMap},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use crate::{
    address::Address,
    error::TransportError,
    header_map::{HeaderValue, Headers},
    headers,
    topology::{Binding, ExchangeKind, ExchangeSpec, QueueSpec},
    transport::topic_matches,
};

use super::queue::{DeathReason, Message, Queue};

struct Exchange {
    spec: ExchangeSpec,
    bindings: Vec<(String, String)>,
}

/// Outcome of routing one publish.
pub(super) struct Routed {
    /// Queues that took the message.
    pub(super) queues: usize,
    /// Whether a full `reject-publish` queue refused it.
    pub(super) refused: bool,
}

/// Everything the broker holds; guarded by one lock.
#[derive(Default)]
pub(super) struct State {
    exchanges: HashMap<String, Exchange>,
    pub(super) queues: HashMap<String, Queue>,
}

impl State {
    pub(super) fn declare_exchange(&mut self, spec: &ExchangeSpec) -> Result<(), TransportError> {
        match self.exchanges.get(&spec.name) {
            Some(e) if e.spec != *spec => Err(TransportError::PreconditionFailed(format!(
                "exchange `{}` exists with other settings",
                spec.name
            ))),
            Some(_) => Ok(()),
            None => {
                let exchange = Exchange {
                    spec: spec.clone(),
                    bindings: Vec::new(),
                };
                self.exchanges.insert(spec.name.clone(), exchange);
                Ok(())
            }
        }
    }

    /// Declares a queue; returns whether it is new.
    pub(super) fn declare_queue(
        &mut self,
        spec: &QueueSpec,
        conn: u64,
    ) -> Result<bool, TransportError> {
        match self.queues.get(&spec.name) {
            Some(q) if q.owner.is_some_and(|o| o != conn) => Err(locked(&spec.name)),
            Some(q) if q.spec != *spec => Err(TransportError::PreconditionFailed(format!(
                "queue `{}` exists with other settings",
                spec.name
            ))),
            Some(_) => Ok(false),
            None => {
                let owner = spec.exclusive.then_some(conn);
                self.queues
                    .insert(spec.name.clone(), Queue::new(spec.clone(), owner));
                Ok(true)
            }
        }
    }

    pub(super) fn bind(&mut self, binding: &Binding) -> Result<(), TransportError> {
        if !self.queues.contains_key(&binding.queue) {
            return Err(not_found("queue", &binding.queue));
        }
        let exchange = self
            .exchanges
            .get_mut(&binding.exchange)
            .ok_or_else(|| not_found("exchange", &binding.exchange))?;
        let entry = (binding.queue.clone(), binding.pattern.clone());
        if !exchange.bindings.contains(&entry) {
            exchange.bindings.push(entry);
        }
        Ok(())
    }

    /// Removes a queue and every binding to it; returns it for its consumers to be closed.
    pub(super) fn delete_queue(&mut self, name: &str) -> Option<Queue> {
        let queue = self.queues.remove(name)?;
        for exchange in self.exchanges.values_mut() {
            exchange.bindings.retain(|(q, _)| q != name);
        }
        Some(queue)
    }

    pub(super) fn delete_exchange(&mut self, name: &str) {
        self.exchanges.remove(name);
    }

    pub(super) fn queue_mut(&mut self, name: &str) -> Result<&mut Queue, TransportError> {
        self.queues
            .get_mut(name)
            .ok_or_else(|| not_found("queue", name))
    }

    /// Checks `conn` may consume from or inspect `name`.
    pub(super) fn check_access(&self, name: &str, conn: u64) -> Result<(), TransportError> {
        match self.queues.get(name) {
            None => Err(not_found("queue", name)),
            Some(q) if q.owner.is_some_and(|o| o != conn) => Err(locked(name)),
            Some(_) => Ok(()),
        }
    }

    /// Queues a publish to `to` reaches, in a stable order.
    fn targets(&self, to: &Address) -> Result<BTreeSet<String>, TransportError> {
        if to.exchange.is_empty() {
            let hit = self.queues.contains_key(&to.routing_key);
            return Ok(hit.then(|| to.routing_key.clone()).into_iter().collect());
        }
        let exchange = self
            .exchanges
            .get(&to.exchange)
            .ok_or_else(|| not_found("exchange", &to.exchange))?;
        let key = to.routing_key.as_str();
        Ok(exchange
            .bindings
            .iter()
            .filter(|(_, pattern)| match exchange.spec.kind {
                ExchangeKind::Direct => pattern == key,
                ExchangeKind::Topic => topic_matches(pattern, key),
                ExchangeKind::Fanout => true,
            })
            .map(|(queue, _)| queue.clone())
            .collect())
    }

    /// Routes a message into every matching queue, dead-lettering what overflow pushes out.
    pub(super) fn route(
        &mut self,
        to: &Address,
        message: Message,
    ) -> Result<Routed, TransportError> {
        let targets = self.targets(to)?;
        let mut routed = Routed {
            queues: 0,
            refused: false,
        };
        let mut dropped = Vec::new();
        for name in &targets {
            let Some(queue) = self.queues.get_mut(name) else {
                continue;
            };
            if queue.refuses_publish() {
                routed.refused = true;
                continue;
            }
            routed.queues += 1;
            dropped.extend(
                queue
                    .enqueue(message.clone())
                    .into_iter()
                    .map(|d| (name.clone(), d)),
            );
        }
        for (queue, (m, reason)) in dropped {
            self.dead_letter(&queue, m, reason);
        }
        Ok(routed)
    }

    /// Sends `message`, which left `queue` for `reason`, to the queue's
    /// dead-letter exchange (or drops it when there is none), stamping `x-death`.
    pub(super) fn dead_letter(&mut self, queue: &str, mut message: Message, reason: DeathReason) {
        let Some(target) = self
            .queues
            .get(queue)
            .and_then(|q| q.spec.dead_letter.clone())
        else {
            return;
        };
        let original = Address::new(message.exchange.clone(), message.routing_key.clone());
        stamp_death(&mut message, queue, reason);
        let to = target.address_for(&original);
        message.exchange = to.exchange.clone();
        message.routing_key = to.routing_key.clone();
        message.redelivered = false;
        message.returns = 0;
        message.enqueued = Instant::now();
        // Like RabbitMQ, a dead-letter target that routes nowhere drops the message.
        if let Err(e) = self.route(&to, message) {
            tracing::debug!(queue, error = %e, "Dead-letter target missing; message dropped.");
        }
    }
}

/// Adds RabbitMQ's dead-letter headers: `x-first-death-*` once, and an `x-death` entry.
fn stamp_death(message: &mut Message, queue: &str, reason: DeathReason) {
    let h = &mut message.envelope.headers;
    if !h.contains(headers::X_FIRST_DEATH_REASON) {
        h.insert(headers::X_FIRST_DEATH_REASON, reason.as_str());
        h.insert(headers::X_FIRST_DEATH_QUEUE, queue);
        h.insert(headers::X_FIRST_DEATH_EXCHANGE, message.exchange.as_str());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut deaths: Vec<HeaderValue> = h
        .get(headers::X_DEATH)
        .and_then(HeaderValue::as_array)
        .map(<[_]>::to_vec)
        .unwrap_or_default();
    let same = |t: &Headers| {
        t.get_str("queue") == Some(queue) && t.get_str("reason") == Some(reason.as_str())
    };
    let existing = deaths.iter().position(|d| d.as_table().is_some_and(same));
    let count = existing
        .map(|i| deaths.remove(i))
        .and_then(|d| {
            d.as_table()
                .and_then(|t| t.get("count"))
                .and_then(HeaderValue::as_i64)
        })
        .unwrap_or(0)
        + 1;
    let entry = Headers::new()
        .with("count", count)
        .with("reason", reason.as_str())
        .with("queue", queue)
        .with("time", HeaderValue::Timestamp(now))
        .with("exchange", message.exchange.as_str())
        .with(
            "routing-keys",
            vec![HeaderValue::from(message.routing_key.as_str())],
        );
    deaths.insert(0, HeaderValue::Table(entry));
    h.insert(headers::X_DEATH, deaths);
}

fn not_found(kind: &'static str, name: &str) -> TransportError {
    TransportError::NotFound {
        kind,
        name: name.to_owned(),
    }
}

fn locked(name: &str) -> TransportError {
    TransportError::PreconditionFailed(format!("queue `{name}` is exclusive to another connection"))
}
