//! The AMQP delivery mode of each hop the router publishes on: the one place
//! the baseline relay learns it, so that both sides of a bench pay the same
//! price per hop (a persistent message into a durable queue costs the
//! broker an fsync before it confirms; a transient one does not).

use lapin::BasicProperties;

/// AMQP delivery mode of a message that survives a broker restart.
const PERSISTENT: u8 = 2;

/// A hop the router, and so the baseline relay, publishes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hop {
    /// A request, from the ingress queue to the service's queue.
    Request,
    /// A reply, from the replies queue to the caller's queue.
    Reply,
}

/// The delivery mode to republish a message on `hop` with, given the
/// properties it arrived with.
///
/// The bus crate decides the mode of every message: the SDK caller publishes
/// requests, and the SDK service its replies, through its `AmqpTransport`,
/// which sets the mode of the envelope it sends; the router hands each hop on
/// with that envelope's mode. So the relay keeps the mode the message arrived
/// with, and takes no copy of the bus's choice (today: persistent on every
/// publish, `bus/src/transport/amqp/convert.rs`). A message without a mode
/// is sent persistent, as the bus sends a request.
pub(crate) fn delivery_mode(hop: Hop, received: &BasicProperties) -> u8 {
    let arrived = *received.delivery_mode();
    match hop {
        // Published by the SDK caller (bench rpc) or the bench's publisher (bench
        // router), both through the bus's transport.
        Hop::Request => arrived.unwrap_or(PERSISTENT),
        // Published by the SDK service through the bus's transport.
        Hop::Reply => arrived.unwrap_or(PERSISTENT),
    }
}

#[cfg(test)]
mod tests {
    use lapin::BasicProperties;

    use super::{Hop, delivery_mode};

    #[test]
    fn each_hop_keeps_the_mode_the_bus_gave_the_message() {
        let transient = BasicProperties::default().with_delivery_mode(1);
        assert_eq!(delivery_mode(Hop::Reply, &transient), 1);
        assert_eq!(delivery_mode(Hop::Request, &transient), 1);
        assert_eq!(delivery_mode(Hop::Request, &BasicProperties::default()), 2);
    }
}
