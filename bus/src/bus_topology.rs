//! The exchanges, queues and bindings of a bus, declared alike by the router,
//! the services and the callers (declarations are idempotent).
//!
//! The shared queues are durable, of the bus's queue type
//! ([`BusNames::queue_type`]): classic on one node, quorum in a cluster. What
//! each hop publishes as persistent or transient is decided in
//! [`crate::envelope::DeliveryMode`]'s users and written down in README's
//! delivery contract: requests persistent, replies transient.

use serde::{Deserialize, Serialize};

use crate::{
    names::BusNames,
    topology::{ExchangeKind, ExchangeSpec, Overflow, QueueSpec, Topology},
};

/// Returns after which the broker dead-letters a message instead of
/// redelivering it (quorum queues; classic queues cannot count returns).
pub const DELIVERY_LIMIT: u32 = 5;

/// Returns of a poison message before a quorum queue drops it: it has no
/// dead-letter exchange of its own (it would loop), and a router requeues it
/// only while `<ns>.dead` cannot take its copy, so the limit only ends a
/// message the routers cannot record for hours.
pub const POISON_DELIVERY_LIMIT: u32 = 10_000;

/// Most messages the ingress queue holds; past it publishers get a nack
/// (back-pressure), never a silent drop.
pub const INGRESS_MAX_LENGTH: u32 = 1_000_000;

/// How much the dead-letter queue `<ns>.dead` holds (`[dead_letters]` in the
/// config). Past either bound the **oldest** dead letters are dropped
/// (`drop-head`), never the new one: with `reject-publish` a refusal whose
/// copy the broker refuses would be requeued, refused again and requeued for
/// ever, and the broker's own dead-lettering would lose the newest records
/// silently. Every router and service of a bus must declare the same bounds:
/// the broker refuses a redeclaration with other arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadQueueBounds {
    /// Most dead letters held (`x-max-length`; default 100,000).
    pub max_length: u32,
    /// Most bytes of dead-letter bodies held (`x-max-length-bytes`; default 1 GiB).
    pub max_length_bytes: u64,
}

impl Default for DeadQueueBounds {
    fn default() -> Self {
        Self {
            max_length: 100_000,
            max_length_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// Ingress exchange and queue, the dead-letter exchange and queue, the
/// delivery exchange, the replies queue and the control exchange.
pub fn core(names: &BusNames) -> Topology {
    let (ingress_x, ingress_q) = (names.ingress_exchange(), names.ingress_queue());
    let (dlx, dead) = (names.dead_letter_exchange(), names.dead_queue());
    let kind = names.queue_type();
    let bounds = names.dead_queue_bounds();
    Topology::new()
        .exchange(ExchangeSpec::topic(ingress_x))
        .exchange(ExchangeSpec::new(dlx, ExchangeKind::Fanout))
        // Topic, not direct: RabbitMQ's topic permissions can then restrict which
        // routing key (service) each service's broker user may bind to.
        .exchange(ExchangeSpec::topic(names.deliver_exchange()))
        .exchange(ExchangeSpec::new(
            names.control_exchange(),
            ExchangeKind::Fanout,
        ))
        .queue(
            QueueSpec::durable(dead, kind, DELIVERY_LIMIT)
                .max_length(bounds.max_length, Overflow::DropHead)
                .max_length_bytes(bounds.max_length_bytes, Overflow::DropHead),
        )
        .queue(
            QueueSpec::durable(ingress_q, kind, DELIVERY_LIMIT)
                .max_length(INGRESS_MAX_LENGTH, Overflow::RejectPublish)
                .dead_letter_to(dlx, None),
        )
        // Durable so it outlives a broker restart as a name services can
        // reply to; its messages are transient (a reply dies with its caller).
        .queue(
            QueueSpec::durable(names.replies_queue(), kind, DELIVERY_LIMIT)
                .dead_letter_to(dlx, None),
        )
        // What the broker dead-letters holds what the sender sent (credentials
        // included): it goes to the poison queue, which the routers turn into
        // clean copies in `<ns>.dead`, never straight to `<ns>.dead`.
        .queue(
            QueueSpec::durable(names.poison_queue(), kind, POISON_DELIVERY_LIMIT)
                .max_length(bounds.max_length, Overflow::DropHead)
                .max_length_bytes(bounds.max_length_bytes, Overflow::DropHead),
        )
        .bind(ingress_x, ingress_q, "#")
        .bind(dlx, names.poison_queue(), "")
}

/// The queue of service `service` and its binding from the delivery exchange.
pub fn service(names: &BusNames, service: &str) -> Topology {
    let queue = names.service_queue(service);
    Topology::new()
        .queue(
            QueueSpec::durable(&queue, names.queue_type(), DELIVERY_LIMIT)
                .dead_letter_to(names.dead_letter_exchange(), None),
        )
        .bind(names.deliver_exchange(), &queue, service)
}

/// A private queue bound to the control exchange (a router's or a service instance's).
pub fn control_listener(names: &BusNames, queue: &str) -> Topology {
    Topology::new()
        .queue(QueueSpec::exclusive(queue))
        .bind(names.control_exchange(), queue, "")
}

/// Router instance `instance`'s private replies queue (for the calls it holds).
pub fn router_replies(names: &BusNames, instance: &str) -> Topology {
    Topology::new().queue(QueueSpec::exclusive(names.router_replies_queue(instance)))
}

/// A caller's private reply queue `id`.
pub fn caller(names: &BusNames, id: &str) -> Topology {
    Topology::new().queue(QueueSpec::exclusive(names.caller_queue(id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topology_is_valid() {
        for n in [
            BusNames::new("tg"),
            BusNames::new("tg").with_queue_type(crate::QueueKind::Quorum),
        ] {
            every_topology_of(&n);
        }
    }

    #[test]
    fn the_dead_letter_queue_is_bounded_and_drops_its_oldest() {
        let bounds = DeadQueueBounds {
            max_length: 7,
            max_length_bytes: 4096,
        };
        let names = BusNames::new("tg").with_dead_queue_bounds(bounds);
        let topology = core(&names);
        let dead = topology
            .queues
            .iter()
            .find(|q| q.name == names.dead_queue())
            .unwrap();
        assert_eq!(dead.max_length, Some(7));
        assert_eq!(dead.max_length_bytes, Some(4096));
        assert_eq!(dead.overflow, Overflow::DropHead);
        let default = core(&BusNames::new("tg"));
        let dead = default.queues.iter().find(|q| q.name == "tg.dead").unwrap();
        assert_eq!(dead.max_length, Some(100_000));
        assert_eq!(dead.max_length_bytes, Some(1 << 30));
    }

    fn every_topology_of(n: &BusNames) {
        for t in [
            core(n),
            service(n, "orders"),
            control_listener(n, "tg.router.1"),
            caller(n, "c1"),
        ] {
            t.validate().unwrap();
        }
    }
}
