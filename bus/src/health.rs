//! What a router says about itself on `/health/live` and `/health/ready`.
//!
//! The router's loops set these flags as they change state (topology
//! declared, a queue consumed, a consumer ended, the registry listening,
//! shutdown begun); the binary's HTTP listener only reads them. Every flag
//! is an atomic: reading never waits on the router.

use std::sync::{
    Arc, OnceLock, Weak,
    atomic::{AtomicBool, Ordering},
};

use serde::Serialize;

use crate::transport::Transport;

/// One thing that must hold for a router to take traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Check {
    /// The bus topology (exchanges, the ingress, replies and dead-letter
    /// queues) is declared; false while it is being declared again.
    Topology,
    /// The ingress queue has an active consumer.
    Ingress,
    /// The replies queue has an active consumer.
    Replies,
    /// The poison queue (the broker's own dead letters) has an active consumer.
    Poison,
    /// The registry listener consumes the control queue.
    Registry,
}

/// The health of one router, shared between its loops and the HTTP listener.
#[derive(Debug, Default)]
pub struct Health {
    topology: AtomicBool,
    ingress: AtomicBool,
    replies: AtomicBool,
    poison: AtomicBool,
    registry: AtomicBool,
    draining: AtomicBool,
    /// A loop ended on its own (not by shutdown): the process needs a restart.
    failed: AtomicBool,
    /// The router's transport, asked whether it is connected.
    broker: OnceLock<Weak<dyn Transport>>,
}

/// What `/health/ready` answers, as JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// Every check passes and the router is not shutting down.
    pub ready: bool,
    /// The bus topology is declared.
    pub topology: bool,
    /// The ingress queue is consumed.
    pub ingress: bool,
    /// The replies queue is consumed.
    pub replies: bool,
    /// The poison queue is consumed.
    pub poison: bool,
    /// The registry listener runs.
    pub registry: bool,
    /// The transport is connected to the broker (false while it reconnects:
    /// the consumers above resume by themselves once it is back).
    pub broker: bool,
    /// Shutdown began: in-flight messages are being settled, no new ones taken.
    pub draining: bool,
}

// === Health ===

impl Health {
    /// A router that has not started: live, not ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records whether `check` passes.
    pub fn set(&self, check: Check, passes: bool) {
        self.flag(check).store(passes, Ordering::SeqCst);
    }

    /// Watches `transport`'s connection: not ready while it is down.
    pub fn watch_broker(&self, transport: &Arc<dyn Transport>) {
        // A router starts once; a second start keeps the first transport.
        let _ = self.broker.set(Arc::downgrade(transport));
    }

    /// Records that shutdown began: not ready any more.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Records that one of the router's loops ended on its own: not live any more.
    pub fn set_failed(&self) {
        self.failed.store(true, Ordering::SeqCst);
    }

    /// Whether the router's loops run (they run from start until shutdown,
    /// through reconnects and re-declarations; only a loop that gave up
    /// makes the router not live).
    pub fn is_live(&self) -> bool {
        !self.failed.load(Ordering::SeqCst)
    }

    /// Which checks pass, and whether the router takes traffic.
    pub fn readiness(&self) -> Readiness {
        let passes = |check| self.flag(check).load(Ordering::SeqCst);
        let (topology, ingress, replies, poison, registry) = (
            passes(Check::Topology),
            passes(Check::Ingress),
            passes(Check::Replies),
            passes(Check::Poison),
            passes(Check::Registry),
        );
        let draining = self.draining.load(Ordering::SeqCst);
        let broker = self
            .broker
            .get()
            .and_then(Weak::upgrade)
            .is_some_and(|t| t.is_connected());
        Readiness {
            ready: topology
                && ingress
                && replies
                && poison
                && registry
                && broker
                && !draining
                && self.is_live(),
            topology,
            ingress,
            replies,
            poison,
            registry,
            broker,
            draining,
        }
    }

    fn flag(&self, check: Check) -> &AtomicBool {
        match check {
            Check::Topology => &self.topology,
            Check::Ingress => &self.ingress,
            Check::Replies => &self.replies,
            Check::Poison => &self.poison,
            Check::Registry => &self.registry,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(transport: &Arc<dyn Transport>) -> Health {
        let health = Health::new();
        health.watch_broker(transport);
        for check in [
            Check::Topology,
            Check::Ingress,
            Check::Replies,
            Check::Poison,
            Check::Registry,
        ] {
            health.set(check, true);
        }
        health
    }

    #[test]
    fn a_router_that_has_not_started_is_live_but_not_ready() {
        let health = Health::new();
        assert!(health.is_live());
        assert!(!health.readiness().ready);
    }

    fn memory() -> Arc<dyn Transport> {
        Arc::new(crate::MemoryBroker::new().connect())
    }

    #[test]
    fn a_started_router_is_ready_until_one_check_fails() {
        let transport = memory();
        let health = started(&transport);
        assert!(health.readiness().ready);
        health.set(Check::Ingress, false);
        let readiness = health.readiness();
        assert!(!readiness.ready);
        assert!(!readiness.ingress && readiness.replies && readiness.topology);
    }

    #[test]
    fn draining_makes_a_router_not_ready_but_live() {
        let transport = memory();
        let health = started(&transport);
        health.set_draining();
        assert!(!health.readiness().ready);
        assert!(health.readiness().draining);
        assert!(health.is_live());
    }

    #[test]
    fn a_failed_loop_makes_a_router_neither_live_nor_ready() {
        let transport = memory();
        let health = started(&transport);
        health.set_failed();
        assert!(!health.is_live());
        assert!(!health.readiness().ready);
    }

    #[tokio::test]
    async fn a_router_without_its_broker_is_not_ready() {
        let transport = memory();
        let health = started(&transport);
        assert!(health.readiness().broker && health.readiness().ready);
        transport.close().await.unwrap();
        let readiness = health.readiness();
        assert!(!readiness.broker && !readiness.ready);
        assert!(health.is_live());
    }
}
