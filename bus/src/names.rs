//! Names of every exchange and queue of one bus, derived from its namespace.
//!
//! Everything the bus owns lives under `<ns>.`; callers' reply queues live
//! under `<ns>.caller.` and are the only names a `reply_to` may point at.

/// The names of one bus (namespace `ns`, default `tollgate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusNames {
    ns: String,
}

/// The default namespace.
pub const DEFAULT_NAMESPACE: &str = "tollgate";

impl BusNames {
    /// Names under namespace `ns`.
    pub fn new(ns: impl Into<String>) -> Self {
        Self { ns: ns.into() }
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// Topic exchange callers publish requests to, routing key `service.method`.
    pub fn ingress_exchange(&self) -> String {
        format!("{}.ingress", self.ns)
    }

    /// Quorum queue the routers consume, bound to the ingress exchange with `#`.
    pub fn ingress_queue(&self) -> String {
        format!("{}.ingress", self.ns)
    }

    /// Topic exchange the router delivers to, routing key = service name (topic,
    /// so broker topic permissions can bind each service user to its own name).
    pub fn deliver_exchange(&self) -> String {
        format!("{}.deliver", self.ns)
    }

    /// Queue of service `service`, shared by all its instances.
    pub fn service_queue(&self, service: &str) -> String {
        format!("{}.svc.{service}", self.ns)
    }

    /// Fanout exchange of dead letters (the broker's and the router's).
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.ns)
    }

    /// Queue holding every dead letter.
    pub fn dead_queue(&self) -> String {
        format!("{}.dead", self.ns)
    }

    /// Queue services reply to; the routers translate and forward replies from it.
    pub fn replies_queue(&self) -> String {
        format!("{}.replies", self.ns)
    }

    /// Fanout exchange of registry announcements.
    pub fn control_exchange(&self) -> String {
        format!("{}.control", self.ns)
    }

    /// A router instance's private queue on the control exchange.
    pub fn router_control_queue(&self, instance: &str) -> String {
        format!("{}.router.{instance}", self.ns)
    }

    /// Prefix of callers' reply queues.
    pub fn caller_queue_prefix(&self) -> String {
        format!("{}.caller.", self.ns)
    }

    /// A caller's reply queue named `id`.
    pub fn caller_queue(&self, id: &str) -> String {
        format!("{}.caller.{id}", self.ns)
    }

    /// Whether a `reply_to` may be written by the router: a caller queue of this
    /// bus, or RabbitMQ's direct reply-to pseudo-queue. Never a bus or service queue.
    pub fn is_valid_reply_to(&self, reply_to: &str) -> bool {
        let prefix = self.caller_queue_prefix();
        let is_caller = reply_to.len() > prefix.len()
            && reply_to.starts_with(&prefix)
            && !reply_to[prefix.len()..].contains(['*', '#']);
        is_caller || reply_to.starts_with("amq.rabbitmq.reply-to")
    }
}

impl Default for BusNames {
    fn default() -> Self {
        Self::new(DEFAULT_NAMESPACE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_to_must_be_a_caller_queue() {
        let n = BusNames::new("tg");
        assert!(n.is_valid_reply_to("tg.caller.abc"));
        assert!(n.is_valid_reply_to("amq.rabbitmq.reply-to.g1h2AA"));
        assert!(!n.is_valid_reply_to("tg.caller."));
        assert!(!n.is_valid_reply_to("tg.svc.orders"));
        assert!(!n.is_valid_reply_to("tg.ingress"));
        assert!(!n.is_valid_reply_to("tg.dead"));
        assert!(!n.is_valid_reply_to("other.caller.x"));
        assert!(!n.is_valid_reply_to(""));
    }

    #[test]
    fn names_live_under_the_namespace() {
        let n = BusNames::new("tg");
        assert_eq!(n.service_queue("orders"), "tg.svc.orders");
        assert_eq!(n.ingress_queue(), "tg.ingress");
        assert_eq!(n.caller_queue("x"), "tg.caller.x");
    }
}
