//! One test's transport(s), namespace and declared topology, cleaned up at the end.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use parking_lot::Mutex;
use tollgate_bus::{MemoryBroker, Topology, Transport, TransportError};

use super::{Namespace, await_broker, await_bus_broker};

enum Kind {
    Memory(MemoryBroker),
    Amqp,
}

/// A test's view of one broker: its first connection, a namespace, and what
/// it declared (deleted by [`Fixture::cleanup`], or on drop if a test panicked).
pub struct Fixture {
    /// The test's namespace.
    pub ns: Namespace,
    kind: Kind,
    transport: Arc<dyn Transport>,
    declared: Mutex<Topology>,
    cleaned: AtomicBool,
}

impl Fixture {
    /// A fixture on a fresh in-memory broker.
    pub async fn memory() -> Self {
        let broker = MemoryBroker::new();
        let transport: Arc<dyn Transport> = Arc::new(broker.connect());
        Self::with(Kind::Memory(broker), transport)
    }

    /// A fixture on the shared RabbitMQ.
    pub async fn amqp() -> Self {
        let ns = Namespace::random();
        let transport: Arc<dyn Transport> = Arc::new(await_bus_broker(ns.prefix()).await);
        let mut fx = Self::with(Kind::Amqp, transport);
        fx.ns = ns;
        fx
    }

    fn with(kind: Kind, transport: Arc<dyn Transport>) -> Self {
        Self {
            ns: Namespace::random(),
            kind,
            transport,
            declared: Mutex::new(Topology::new()),
            cleaned: AtomicBool::new(false),
        }
    }

    /// The first connection (on RabbitMQ, set up as `tollgate serve` sets
    /// up a router's: see [`await_bus_broker`]).
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// Another connection to the same broker, set up as the first.
    pub async fn connect(&self) -> Arc<dyn Transport> {
        match &self.kind {
            Kind::Memory(broker) => Arc::new(broker.connect()),
            Kind::Amqp => Arc::new(await_bus_broker(self.ns.prefix()).await),
        }
    }

    /// Whether this fixture runs on the in-memory broker.
    pub fn is_memory(&self) -> bool {
        matches!(self.kind, Kind::Memory(_))
    }

    /// The in-memory broker, when this fixture runs on one (to connect as
    /// another broker user: [`MemoryBroker::connect_as`]).
    pub fn memory_broker(&self) -> Option<&MemoryBroker> {
        match &self.kind {
            Kind::Memory(broker) => Some(broker),
            Kind::Amqp => None,
        }
    }

    /// Declares `topology` on the first connection and records it for cleanup.
    pub async fn declare(&self, topology: &Topology) -> Result<(), TransportError> {
        self.declared.lock().merge(topology);
        self.transport.declare(topology).await
    }

    /// Deletes everything declared through [`Fixture::declare`].
    pub async fn cleanup(&self) {
        let declared = std::mem::take(&mut *self.declared.lock());
        self.cleaned.store(true, Ordering::Release);
        if let Err(e) = self.transport.delete(&declared).await {
            tracing::warn!(error = %e, "Cleanup on the test connection failed; retrying on a new one.");
            let fresh = self.connect().await;
            fresh.delete(&declared).await.ok();
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if self.cleaned.load(Ordering::Acquire) || !matches!(self.kind, Kind::Amqp) {
            return;
        }
        // A panicking test never reached `cleanup`: delete on a thread of our own,
        // since a runtime cannot be blocked on from inside another.
        let declared = std::mem::take(&mut *self.declared.lock());
        let name = self.ns.prefix().to_owned();
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let connect = tokio::time::timeout(Duration::from_secs(10), await_broker(&name));
                if let Ok(t) = connect.await {
                    t.delete(&declared).await.ok();
                    t.close().await.ok();
                }
            });
        });
        cleanup.join().ok();
    }
}
