//! The exchanges, queues and bindings of a bus, declared alike by the router,
//! the services and the callers (declarations are idempotent).
//!
//! The shared queues are durable, of the bus's queue type
//! ([`BusNames::queue_type`]): classic on one node, quorum in a cluster. What
//! each hop publishes as persistent or transient is decided in
//! [`crate::envelope::DeliveryMode`]'s users and written down in README's
//! delivery contract: requests persistent, replies transient.

use crate::{
    names::BusNames,
    topology::{ExchangeKind, ExchangeSpec, Overflow, QueueSpec, Topology},
};

/// Returns after which the broker dead-letters a message instead of
/// redelivering it (quorum queues; classic queues cannot count returns).
pub const DELIVERY_LIMIT: u32 = 5;

/// Most messages the ingress queue holds; past it publishers get a nack
/// (back-pressure), never a silent drop.
pub const INGRESS_MAX_LENGTH: u32 = 1_000_000;

/// Ingress exchange and queue, the dead-letter exchange and queue, the
/// delivery exchange, the replies queue and the control exchange.
pub fn core(names: &BusNames) -> Topology {
    let (ingress_x, ingress_q) = (names.ingress_exchange(), names.ingress_queue());
    let (dlx, dead) = (names.dead_letter_exchange(), names.dead_queue());
    let kind = names.queue_type();
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
        .queue(QueueSpec::durable(dead, kind, DELIVERY_LIMIT))
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
        .bind(ingress_x, ingress_q, "#")
        .bind(dlx, dead, "")
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
