//! The connection to RabbitMQ: one shared connection and publishing channel,
//! re-established with backoff after the broker restarts or the link drops,
//! on the next node of the URL list when there are several.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::{
    FutureExt,
    future::{BoxFuture, Shared},
};
use parking_lot::{Mutex, RwLock};
use tokio::time::{Instant, sleep};
use tollgate_wire::{Channel, Connection};

use crate::{error::TransportError, topology::Topology};

use super::{AmqpConfig, BrokerNodes, convert::error, topology};

/// How long [`Connector::close`] waits for the broker.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// How long opening a channel, or another exchange on a channel, may take.
const OPEN_WAIT: Duration = Duration::from_secs(10);
/// How long connecting to one node may take before the next is tried (a
/// node behind a dead network answers nothing at all).
const CONNECT_WAIT: Duration = Duration::from_secs(5);

/// A reconnect running in a task of its own, awaited by every caller that
/// needs a link meanwhile. Its own task, not the caller's: a caller may stop
/// polling (a `select!` whose other branch won, a consumer nobody polls while
/// its task publishes) and must not hold up everyone else's reconnect — a
/// service whose control-queue consumer was reconnecting when its heartbeat
/// ticked waited on itself for ever.
type Relink = Shared<BoxFuture<'static, Result<Arc<Link>, TransportError>>>;

/// A live connection and its publishing channel (confirm mode).
pub(super) struct Link {
    pub(super) connection: Connection,
    pub(super) publisher: Channel,
}

/// Owns the current [`Link`] and replaces it when it breaks.
pub(super) struct Connector {
    config: AmqpConfig,
    /// The nodes of `config.url`.
    nodes: BrokerNodes,
    /// Index in `nodes` of the node the current link goes to.
    node: AtomicUsize,
    current: RwLock<Option<Arc<Link>>>,
    /// The reconnect under way, shared by every caller that needs a link.
    relinking: Mutex<Option<Relink>>,
    /// Everything declared through this transport, re-declared on reconnect
    /// (exclusive queues die with their connection).
    declared: Mutex<Topology>,
    /// Exchanges known to exist, checked before publishing (a publish to a
    /// missing exchange would close the shared channel under other publishers).
    known_exchanges: RwLock<HashSet<String>>,
    /// Whether the last look found the connection blocked (to log changes once).
    was_blocked: AtomicBool,
}

// === Link ===

impl Link {
    fn healthy(&self) -> bool {
        self.connection.is_open() && self.publisher.is_open()
    }
}

// === Connector ===

impl Connector {
    /// Tries each node once, in order; fails fast (no retry) so a wrong URL
    /// is reported at start.
    pub(super) async fn connect(config: AmqpConfig) -> Result<Self, TransportError> {
        let nodes = BrokerNodes::parse(&config.url)?;
        let (link, node) = open_any(&config, &nodes, 0).await?;
        Ok(Self {
            config,
            nodes,
            node: AtomicUsize::new(node),
            current: RwLock::new(Some(Arc::new(link))),
            relinking: Mutex::new(None),
            declared: Mutex::new(Topology::new()),
            known_exchanges: RwLock::new(HashSet::new()),
            was_blocked: AtomicBool::new(false),
        })
    }

    pub(super) fn config(&self) -> &AmqpConfig {
        &self.config
    }

    /// The broker user of the node the current link goes to
    /// ([`BrokerNodes::user`]).
    pub(super) fn user(&self) -> Option<&str> {
        self.nodes.user(self.node.load(Ordering::Acquire))
    }

    /// Whether the broker has blocked the current connection
    /// (`connection.blocked`: a memory or disk alarm). Publishes wait while it
    /// is, without counting the time against their confirm timeout.
    pub(super) fn blocked(&self) -> bool {
        let blocked = self
            .current
            .read()
            .as_ref()
            .is_some_and(|link| link.connection.is_blocked());
        if self.was_blocked.swap(blocked, Ordering::Relaxed) != blocked {
            if blocked {
                tracing::warn!(connection = %self.config.connection_name, "The broker blocked publishing (memory or disk alarm); publishes wait.");
            } else {
                tracing::info!(connection = %self.config.connection_name, "The broker unblocked publishing.");
            }
        }
        blocked
    }

    /// Runs `op` on a fresh, throwaway channel of the current link (a failed
    /// operation closes its channel, never the shared publishing one), for at
    /// most [`OPEN_WAIT`] (`operation` names it when it times out), and
    /// closes the channel.
    pub(super) async fn on_channel<T>(
        self: &Arc<Self>,
        operation: &'static str,
        op: impl AsyncFnOnce(&Channel) -> Result<T, TransportError>,
    ) -> Result<T, TransportError> {
        let link = self.link().await?;
        let channel = open_channel(&link.connection, "admin").await?;
        let result = within(operation, op(&channel)).await;
        // A refusal (a missing queue, a failed precondition) is the broker
        // closing the channel: there is nothing left to close then.
        if channel.is_open()
            && let Ok(Err(e)) = tokio::time::timeout(CLOSE_WAIT, channel.close()).await
        {
            tracing::debug!(error = %e, "Closing a throwaway channel failed.");
        }
        result
    }

    /// Whether the current link is healthy (no reconnect is needed).
    pub(super) fn is_connected(&self) -> bool {
        self.current
            .read()
            .as_ref()
            .is_some_and(|link| link.healthy())
    }

    /// The current healthy link, reconnecting (with backoff, up to
    /// `reconnect_timeout`) if it is broken. Every caller awaits the same
    /// reconnect, which runs in a task of its own (see [`Relink`]).
    pub(super) async fn link(self: &Arc<Self>) -> Result<Arc<Link>, TransportError> {
        if let Some(link) = self.current.read().as_ref().filter(|l| l.healthy()) {
            return Ok(Arc::clone(link));
        }
        let relink = {
            let mut slot = self.relinking.lock();
            match slot.as_ref() {
                Some(relink) => relink.clone(),
                None => {
                    let this = Arc::clone(self);
                    let task = tokio::spawn(async move {
                        let outcome = this.relink().await;
                        *this.relinking.lock() = None;
                        outcome
                    });
                    let relink = async move {
                        task.await.unwrap_or(Err(TransportError::ConnectionLost {
                            operation: "reconnect (the task ended)",
                            source: None,
                        }))
                    }
                    .boxed()
                    .shared();
                    *slot = Some(relink.clone());
                    relink
                }
            }
        };
        relink.await
    }

    /// Replaces a broken link: reopens only the publishing channel when the
    /// connection is fine, else reconnects.
    async fn relink(&self) -> Result<Arc<Link>, TransportError> {
        let existing = self.current.read().clone();
        match existing {
            Some(link) if link.healthy() => return Ok(link),
            Some(link) if link.connection.is_open() => {
                // Only the publishing channel broke (e.g. a refused publish): reopen it.
                let publisher = publisher(&link.connection).await?;
                let fresh = Arc::new(Link {
                    connection: link.connection.clone(),
                    publisher,
                });
                *self.current.write() = Some(Arc::clone(&fresh));
                return Ok(fresh);
            }
            Some(_) => {}
            None => return Err(TransportError::Closed),
        }
        let fresh = Arc::new(self.reopen().await?);
        {
            let mut current = self.current.write();
            // Closed by its owner while reconnecting (the reconnect outlives
            // its callers): the fresh connection must not bring it back.
            if current.is_some() {
                *current = Some(Arc::clone(&fresh));
                return Ok(fresh);
            }
        }
        let close = fresh.connection.close();
        if let Ok(Err(e)) = tokio::time::timeout(CLOSE_WAIT, close).await {
            tracing::debug!(error = %e, "Closing a connection opened during the close failed.");
        }
        Err(TransportError::Closed)
    }

    async fn reopen(&self) -> Result<Link, TransportError> {
        let deadline = Instant::now() + self.config.reconnect_timeout;
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.reopen_once().await {
                Ok(link) => {
                    tracing::info!(
                        connection.name = %self.config.connection_name,
                        broker.node = %self.nodes.shown(self.node.load(Ordering::Acquire)),
                        "Reconnected to the broker."
                    );
                    return Ok(link);
                }
                Err(e) if Instant::now() + backoff < deadline => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "Broker unreachable; retrying.");
                    sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Opens a link, trying every node once, starting with the one after the
    /// node of the lost link, and declares the recorded topology on it.
    async fn reopen_once(&self) -> Result<Link, TransportError> {
        let after = self.node.load(Ordering::Acquire) + 1;
        let (link, node) = open_any(&self.config, &self.nodes, after).await?;
        self.node.store(node, Ordering::Release);
        let declared = self.declared.lock().clone();
        // Bounded: a broker still booting (`start_app`) accepts connections
        // while a durable queue it recovers can keep a declaration waiting;
        // unbounded, that wait held every publish of this transport (a
        // service's heartbeats too, until its lease ran out).
        let redeclared = within(
            "re-declaring the topology after a reconnect (timed out)",
            topology::declare(&link.publisher, &declared),
        )
        .await;
        if let Err(e) = redeclared {
            let closing = link.connection.close();
            if let Err(close) = tokio::time::timeout(CLOSE_WAIT, closing)
                .await
                .unwrap_or(Ok(()))
            {
                tracing::debug!(error = %close, "Closing a half-open connection failed.");
            }
            return Err(e);
        }
        self.known_exchanges.write().clear();
        Ok(link)
    }

    /// Remembers a declared topology for re-declaration after a reconnect.
    pub(super) fn record(&self, topology: &Topology) {
        let mut declared = self.declared.lock();
        for e in &topology.exchanges {
            if !declared.exchanges.iter().any(|d| d.name == e.name) {
                declared.exchanges.push(e.clone());
            }
        }
        for q in &topology.queues {
            if !declared.queues.iter().any(|d| d.name == q.name) {
                declared.queues.push(q.clone());
            }
        }
        for b in &topology.bindings {
            if !declared.bindings.contains(b) {
                declared.bindings.push(b.clone());
            }
        }
        let mut known = self.known_exchanges.write();
        known.extend(topology.exchanges.iter().map(|e| e.name.clone()));
    }

    /// Forgets a deleted topology.
    pub(super) fn forget(&self, topology: &Topology) {
        let mut declared = self.declared.lock();
        declared
            .queues
            .retain(|q| !topology.queues.iter().any(|d| d.name == q.name));
        declared
            .exchanges
            .retain(|e| !topology.exchanges.iter().any(|d| d.name == e.name));
        declared.bindings.retain(|b| {
            !topology.queues.iter().any(|d| d.name == b.queue)
                && !topology.exchanges.iter().any(|d| d.name == b.exchange)
        });
        let mut known = self.known_exchanges.write();
        for e in &topology.exchanges {
            known.remove(&e.name);
        }
    }

    /// Whether `exchange` was seen to exist (the default exchange always does).
    pub(super) fn exchange_known(&self, exchange: &str) -> bool {
        exchange.is_empty() || self.known_exchanges.read().contains(exchange)
    }

    pub(super) fn remember_exchange(&self, exchange: &str) {
        self.known_exchanges.write().insert(exchange.to_owned());
    }

    /// Closes the connection for good; later calls fail with `Closed`.
    /// Closes the connection; gives up waiting for the broker's `close-ok`
    /// after [`CLOSE_WAIT`] (a broker that stopped answering must not keep a
    /// program from exiting).
    pub(super) async fn close(&self) {
        let link = self.current.write().take();
        let Some(link) = link else { return };
        let close = link.connection.close();
        match tokio::time::timeout(CLOSE_WAIT, close).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "Connection already closed."),
            Err(_) => tracing::warn!("The broker did not acknowledge the close; leaving anyway."),
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        self.current.read().is_none()
    }
}

/// Opens a link to the first node that answers, trying each once from
/// `start` on (modulo the list's length); returns the link and its node's
/// index, or the last node's error.
async fn open_any(
    config: &AmqpConfig,
    nodes: &BrokerNodes,
    start: usize,
) -> Result<(Link, usize), TransportError> {
    let mut last = None;
    for node in (start..start + nodes.len()).map(|i| i % nodes.len()) {
        match open(config, nodes, node).await {
            Ok(link) => return Ok((link, node)),
            Err(e) => {
                if nodes.len() > 1 {
                    tracing::warn!(broker.node = %nodes.shown(node), error = %e, "Broker node unreachable; trying the next.");
                }
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or(TransportError::Closed))
}

async fn open(
    config: &AmqpConfig,
    nodes: &BrokerNodes,
    node: usize,
) -> Result<Link, TransportError> {
    // A peer that accepts TCP but never speaks AMQP (a hung broker, a stalled
    // proxy) must not keep a connect waiting for ever, and with it every
    // reconnect and every shutdown that needs the connection.
    let connect = Connection::open(nodes.uri(node), &config.connection_name);
    let connection = tokio::time::timeout(CONNECT_WAIT, connect)
        .await
        .map_err(|_| TransportError::ConnectionLost {
            operation: "connect (timed out)",
            source: None,
        })?
        .map_err(TransportError::Connect)?;
    let publisher = publisher(&connection).await?;
    Ok(Link {
        connection,
        publisher,
    })
}

/// Opens a channel on `connection`, for `purpose` (in errors). Gives up after
/// [`OPEN_WAIT`]: a broker that stopped answering must not hold the caller.
pub(super) async fn open_channel(
    connection: &Connection,
    purpose: &str,
) -> Result<Channel, TransportError> {
    let open = async {
        connection
            .channel()
            .await
            .map_err(|e| error(e, "channel.open", ("channel", purpose)))
    };
    within("channel.open (timed out)", open).await
}

/// Runs a channel-level exchange with the broker (`operation` names it when it
/// times out) for at most [`OPEN_WAIT`]: a broken connection must turn into a
/// retryable error, never into a wait without end.
pub(super) async fn within<T>(
    operation: &'static str,
    exchange: impl Future<Output = Result<T, TransportError>>,
) -> Result<T, TransportError> {
    tokio::time::timeout(OPEN_WAIT, exchange)
        .await
        .unwrap_or(Err(TransportError::ConnectionLost {
            operation,
            source: None,
        }))
}

async fn publisher(connection: &Connection) -> Result<Channel, TransportError> {
    let channel = open_channel(connection, "publisher").await?;
    let confirms = async {
        channel
            .confirm_select()
            .await
            .map_err(|e| error(e, "confirm.select", ("channel", "publisher")))
    };
    within("confirm.select (timed out)", confirms).await?;
    Ok(channel)
}
