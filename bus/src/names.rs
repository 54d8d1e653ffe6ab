//! Names of every exchange and queue of one bus, derived from its namespace,
//! and the queue type its shared queues are declared with.
//!
//! Everything the bus owns lives under `<ns>.`; callers' reply queues live
//! under `<ns>.caller.` and are the only names a `reply_to` may point at.
//! The fixed names are built once, not per message.

use crate::{bus_topology::DeadQueueBounds, topology::QueueKind};

/// What every participant of one bus must agree on to declare the same
/// topology: the namespace `ns` (default `tollgate`), the type of the
/// shared durable queues (classic on one node, quorum in a cluster) and the
/// bounds of the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusNames {
    ns: String,
    queue_type: QueueKind,
    dead_bounds: DeadQueueBounds,
    ingress: String,
    deliver: String,
    dlx: String,
    dead: String,
    poison: String,
    replies: String,
    control: String,
    caller_prefix: String,
}

/// The default namespace.
pub const DEFAULT_NAMESPACE: &str = "tollgate";

impl BusNames {
    /// Names under namespace `ns`, with classic durable queues.
    pub fn new(ns: impl Into<String>) -> Self {
        let ns = ns.into();
        Self {
            queue_type: QueueKind::Classic,
            dead_bounds: DeadQueueBounds::default(),
            ingress: format!("{ns}.ingress"),
            deliver: format!("{ns}.deliver"),
            dlx: format!("{ns}.dlx"),
            dead: format!("{ns}.dead"),
            poison: format!("{ns}.poison"),
            replies: format!("{ns}.replies"),
            control: format!("{ns}.control"),
            caller_prefix: format!("{ns}.caller."),
            ns,
        }
    }

    /// Declares the bus's shared queues (ingress, service queues, replies,
    /// dead letters) as `queue_type`: [`QueueKind::Classic`] on a single node,
    /// [`QueueKind::Quorum`] in a cluster. Every router and service of a bus
    /// must use the same type: the broker refuses a redeclaration with another.
    pub fn with_queue_type(mut self, queue_type: QueueKind) -> Self {
        self.queue_type = queue_type;
        self
    }

    /// Declares the dead-letter queue with `bounds` (default
    /// [`DeadQueueBounds::default`]). Every router and service of a bus must
    /// use the same: the broker refuses a redeclaration with others.
    pub fn with_dead_queue_bounds(mut self, bounds: DeadQueueBounds) -> Self {
        self.dead_bounds = bounds;
        self
    }

    /// The bounds of the dead-letter queue.
    pub fn dead_queue_bounds(&self) -> DeadQueueBounds {
        self.dead_bounds
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// The type of the bus's shared durable queues.
    pub fn queue_type(&self) -> QueueKind {
        self.queue_type
    }

    /// Topic exchange callers publish requests to, routing key `service.method`.
    pub fn ingress_exchange(&self) -> &str {
        &self.ingress
    }

    /// Durable queue the routers consume, bound to the ingress exchange with `#`.
    pub fn ingress_queue(&self) -> &str {
        &self.ingress
    }

    /// Topic exchange the router delivers to, routing key = service name (topic,
    /// so broker topic permissions can bind each service user to its own name).
    pub fn deliver_exchange(&self) -> &str {
        &self.deliver
    }

    /// Queue of service `service`, shared by all its instances.
    pub fn service_queue(&self, service: &str) -> String {
        format!("{}.svc.{service}", self.ns)
    }

    /// Fanout exchange of dead letters (the broker's and the router's).
    pub fn dead_letter_exchange(&self) -> &str {
        &self.dlx
    }

    /// Queue holding every dead letter.
    pub fn dead_queue(&self) -> &str {
        &self.dead
    }

    /// Queue the broker dead-letters into (through the dead-letter exchange):
    /// raw messages, credentials and all, which the routers turn into clean
    /// copies in the dead-letter queue.
    pub fn poison_queue(&self) -> &str {
        &self.poison
    }

    /// Queue services reply to; the routers translate and forward replies from it.
    pub fn replies_queue(&self) -> &str {
        &self.replies
    }

    /// A router instance's private replies queue (exclusive, gone with the
    /// router): replies to the calls it holds (README, "Delivery contract")
    /// come back to the router that holds their ingress delivery.
    pub fn router_replies_queue(&self, instance: &str) -> String {
        format!("{}.{instance}", self.replies)
    }

    /// Whether `queue` is a router instance's private replies queue.
    pub fn is_router_replies_queue(&self, queue: &str) -> bool {
        queue
            .strip_prefix(self.replies.as_str())
            .is_some_and(|rest| rest.len() > 1 && rest.starts_with('.'))
    }

    /// Whether `queue` is a service's queue (`<ns>.svc.<service>`).
    pub fn is_service_queue(&self, queue: &str) -> bool {
        queue
            .strip_prefix(self.ns.as_str())
            .and_then(|rest| rest.strip_prefix(".svc."))
            .is_some_and(|service| !service.is_empty())
    }

    /// Fanout exchange of registry announcements.
    pub fn control_exchange(&self) -> &str {
        &self.control
    }

    /// A router instance's private queue on the control exchange.
    pub fn router_control_queue(&self, instance: &str) -> String {
        format!("{}.router.{instance}", self.ns)
    }

    /// A service instance's private queue on the control exchange: it hears
    /// `discover` there, and the routers' answers to its registrations.
    pub fn service_control_queue(&self, instance: &str) -> String {
        format!("{}.svc-ctl.{instance}", self.ns)
    }

    /// Prefix of callers' reply queues.
    pub fn caller_queue_prefix(&self) -> &str {
        &self.caller_prefix
    }

    /// A caller's reply queue named `id`.
    pub fn caller_queue(&self, id: &str) -> String {
        format!("{}.caller.{id}", self.ns)
    }

    /// Whether the router may write a reply into `reply_to` for a request
    /// carrying `reply_key` (its [`REPLY_KEY`](crate::headers::REPLY_KEY)
    /// header): RabbitMQ's direct reply-to (the broker delivers to the
    /// requesting channel only), or a caller queue of this bus whose name the
    /// key opens (see [`ReplyKey`](crate::ReplyKey)). Never a bus or service
    /// queue, never another caller's queue. Never a server-named queue
    /// (`amq.gen-…`) either: only the router, which binds such a queue to the
    /// first reply key naming it ([`ServerNamedQueues`](crate::chain::ServerNamedQueues)),
    /// can tell whose it is.
    pub fn is_own_reply_to(&self, reply_to: &str, reply_key: Option<&str>) -> bool {
        if reply_to.starts_with(DIRECT_REPLY_TO) {
            return true;
        }
        match (reply_to.strip_prefix(self.caller_queue_prefix()), reply_key) {
            (Some(id), Some(key)) => crate::ReplyKey::opens(id, key),
            _ => false,
        }
    }
}

/// RabbitMQ's direct reply-to pseudo-queue (and its per-channel names).
pub const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";

impl Default for BusNames {
    fn default() -> Self {
        Self::new(DEFAULT_NAMESPACE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_to_must_be_the_senders_own_queue() {
        let n = BusNames::new("tg");
        let key = crate::ReplyKey::generate();
        let other = crate::ReplyKey::generate();
        let own = key.queue(&n);
        assert!(n.is_own_reply_to(&own, Some(key.secret())));
        assert!(n.is_own_reply_to("amq.rabbitmq.reply-to.g1h2AA", None));
        assert!(!n.is_own_reply_to(&own, None));
        assert!(!n.is_own_reply_to(&own, Some(other.secret())));
        assert!(!n.is_own_reply_to(&other.queue(&n), Some(key.secret())));
        assert!(!n.is_own_reply_to(&format!("other.caller.{}", key.id()), Some(key.secret())));
        for bus_queue in [
            "tg.svc.orders",
            "tg.ingress",
            "tg.dead",
            "tg.caller.",
            "",
            "amq.gen-JzTY20BRgKO-HjmUJj0wLg",
        ] {
            assert!(!n.is_own_reply_to(bus_queue, Some(key.secret())));
        }
    }

    #[test]
    fn names_live_under_the_namespace() {
        let n = BusNames::new("tg");
        assert_eq!(n.service_queue("orders"), "tg.svc.orders");
        assert_eq!(n.ingress_queue(), "tg.ingress");
        assert_eq!(n.caller_queue("x"), "tg.caller.x");
        assert_eq!(n.service_control_queue("i1"), "tg.svc-ctl.i1");
        assert_eq!(n.router_replies_queue("r1"), "tg.replies.r1");
    }

    #[test]
    fn router_replies_and_service_queues_are_told_apart() {
        let n = BusNames::new("tg");
        assert!(n.is_router_replies_queue(&n.router_replies_queue("r1")));
        for not in [
            "tg.replies",
            "tg.replies.",
            "tg.repliesx.r1",
            "other.replies.r1",
        ] {
            assert!(!n.is_router_replies_queue(not), "{not}");
        }
        assert!(n.is_service_queue(&n.service_queue("orders")));
        for not in ["tg.svc.", "tg.ingress", "other.svc.orders", "tg.svc-ctl.i1"] {
            assert!(!n.is_service_queue(not), "{not}");
        }
    }
}
