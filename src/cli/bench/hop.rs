//! The AMQP delivery mode of each hop the router publishes on: the one place
//! the baseline relay learns it, so that both sides of a bench pay the same
//! price per hop (a persistent message into a durable queue costs the
//! broker a disk write before it confirms; a transient one does not).

use tollgate_bus::DeliveryMode;

/// A hop the router, and so the baseline relay, publishes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hop {
    /// A request, from the ingress queue to the service's queue.
    Request,
    /// A reply, from the replies queue to the caller's queue.
    Reply,
}

/// The bus's delivery mode on `hop`, as its delivery contract has the router
/// publish: a request persistent (the router acks the ingress on this
/// confirm, so the copy must survive a restart: `router/pipeline.rs`), a
/// reply transient (it dies with its caller's queue anyway: `router/reply.rs`).
pub(crate) fn delivery_mode(hop: Hop) -> DeliveryMode {
    match hop {
        Hop::Request => DeliveryMode::Persistent,
        Hop::Reply => DeliveryMode::Transient,
    }
}

/// `mode` as AMQP's `delivery_mode` property (AMQP 0-9-1: 1 transient, 2 persistent).
pub(crate) fn amqp(mode: DeliveryMode) -> u8 {
    match mode {
        DeliveryMode::Transient => 1,
        DeliveryMode::Persistent => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_persistent_and_replies_transient() {
        assert_eq!(amqp(delivery_mode(Hop::Request)), 2);
        assert_eq!(amqp(delivery_mode(Hop::Reply)), 1);
    }
}
