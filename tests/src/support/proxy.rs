//! A TCP proxy in front of the broker whose connections a test can cut, to
//! prove reconnection without disturbing other tests on the shared broker.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use parking_lot::Mutex;
use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// Forwards `127.0.0.1:<port>` to the broker; [`ChaosProxy::cut`] drops every
/// live connection, [`ChaosProxy::set_refusing`] turns new ones away, and
/// [`ChaosProxy::set_stalling`] holds new ones open without an answer (a
/// broker that accepts TCP but never speaks AMQP).
pub struct ChaosProxy {
    addr: SocketAddr,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    refusing: Arc<AtomicBool>,
    stalling: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    acceptor: JoinHandle<()>,
}

impl ChaosProxy {
    /// Starts a proxy to `target` (`host:port`).
    pub async fn start(target: String) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let refusing = Arc::new(AtomicBool::new(false));
        let stalling = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let acceptor = tokio::spawn(accept(
            listener,
            target,
            Arc::clone(&links),
            Gates {
                refusing: Arc::clone(&refusing),
                stalling: Arc::clone(&stalling),
            },
            Arc::clone(&accepted),
        ));
        Ok(Self {
            addr,
            links,
            refusing,
            stalling,
            accepted,
            acceptor,
        })
    }

    /// Starts a proxy to the test broker ([`super::amqp_url`]'s host and port).
    pub async fn to_broker() -> std::io::Result<Self> {
        Self::start(super::broker_addr()).await
    }

    /// An AMQP URL through the proxy for `user:pass` and the default vhost.
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    /// Drops every connection currently through the proxy.
    pub fn cut(&self) {
        for link in self.links.lock().drain(..) {
            link.abort();
        }
    }

    /// How many connections the proxy forwarded so far (a client that
    /// reconnected after [`ChaosProxy::cut`] counts again).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Acquire)
    }

    /// While true, new connections are closed at once (the broker looks down).
    pub fn set_refusing(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::Release);
    }

    /// While true, new connections are accepted and held open, but nothing
    /// is forwarded either way (the broker hangs).
    pub fn set_stalling(&self, stalling: bool) {
        self.stalling.store(stalling, Ordering::Release);
    }
}

/// What [`accept`] does with a new connection.
struct Gates {
    refusing: Arc<AtomicBool>,
    stalling: Arc<AtomicBool>,
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.cut();
    }
}

async fn accept(
    listener: TcpListener,
    target: String,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    gates: Gates,
    accepted: Arc<AtomicUsize>,
) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        if gates.refusing.load(Ordering::Acquire) {
            continue;
        }
        if gates.stalling.load(Ordering::Acquire) {
            // Held (and closed by `cut` or drop) like a live link.
            let held = tokio::spawn(async move {
                let _inbound = inbound;
                std::future::pending::<()>().await;
            });
            links.lock().push(held);
            continue;
        }
        accepted.fetch_add(1, Ordering::AcqRel);
        let target = target.clone();
        let link = tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(&target).await {
                copy_bidirectional(&mut inbound, &mut outbound).await.ok();
            }
        });
        links.lock().push(link);
    }
}
