//! The hops of a call and what each is stored as: the bus's delivery contract
//! (README, "Delivery contract") in one place, read by the router, the SDK and
//! the benchmark's baseline relay alike.

use crate::envelope::DeliveryMode;

/// A hop a message of the bus is published on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Hop {
    /// A request into a service's queue: the router acks the ingress on this
    /// publish's confirm, so the copy must survive a broker restart.
    Request,
    /// A call's request into a service's queue while the router holds the
    /// call's ingress delivery unacked until the reply has passed it: the
    /// ingress copy is still on disk, so this one needs none (a broker
    /// restart drops it and redelivers the ingress).
    HeldRequest,
    /// A reply or an error reply, towards the caller: it dies with the
    /// caller's queue anyway, so it needs no disk.
    Reply,
    /// A refused message's copy in the dead-letter queue: the only record.
    DeadLetter,
}

impl Hop {
    /// How a message on this hop is published.
    pub const fn delivery_mode(self) -> DeliveryMode {
        match self {
            Self::Request | Self::DeadLetter => DeliveryMode::Persistent,
            Self::HeldRequest | Self::Reply => DeliveryMode::Transient,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_dead_letters_are_persistent_and_replies_and_held_requests_transient() {
        assert_eq!(Hop::Request.delivery_mode(), DeliveryMode::Persistent);
        assert_eq!(Hop::DeadLetter.delivery_mode(), DeliveryMode::Persistent);
        assert_eq!(Hop::Reply.delivery_mode(), DeliveryMode::Transient);
        assert_eq!(Hop::HeldRequest.delivery_mode(), DeliveryMode::Transient);
    }
}
