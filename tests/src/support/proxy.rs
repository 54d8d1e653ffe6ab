//! A TCP proxy in front of the broker whose connections a test can cut, to
//! prove reconnection without disturbing other tests on the shared broker.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use parking_lot::Mutex;
use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// Forwards `127.0.0.1:<port>` to the broker; [`ChaosProxy::cut`] drops every
/// live connection, [`ChaosProxy::set_refusing`] turns new ones away.
pub struct ChaosProxy {
    addr: SocketAddr,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    refusing: Arc<AtomicBool>,
    acceptor: JoinHandle<()>,
}

impl ChaosProxy {
    /// Starts a proxy to `target` (`host:port`).
    pub async fn start(target: String) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let refusing = Arc::new(AtomicBool::new(false));
        let acceptor = tokio::spawn(accept(
            listener,
            target,
            Arc::clone(&links),
            Arc::clone(&refusing),
        ));
        Ok(Self {
            addr,
            links,
            refusing,
            acceptor,
        })
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

    /// While true, new connections are closed at once (the broker looks down).
    pub fn set_refusing(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::Release);
    }
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
    refusing: Arc<AtomicBool>,
) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        if refusing.load(Ordering::Acquire) {
            continue;
        }
        let target = target.clone();
        let link = tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(&target).await {
                copy_bidirectional(&mut inbound, &mut outbound).await.ok();
            }
        });
        links.lock().push(link);
    }
}
