//! The HTTP entry (`[http] listen`): `POST /{service}/{method}` through the
//! same gate as an AMQP request, in process (see README "The HTTP entry").
//!
//! Only the wiring lives here: [`request`] reads an HTTP request into an
//! envelope, [`handler`] sends it through the router's
//! [`DirectEntry`](tollgate_bus::router::DirectEntry), [`response`] and
//! [`status`] answer, [`server`] owns connections and the graceful stop.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tollgate_bus::{chain::Limits, config::HttpSection, router::DirectEntry};

mod handler;
mod request;
mod response;
mod server;
mod status;

/// Smallest read buffer hyper accepts.
const MIN_HEAD_BYTES: usize = 8192;
/// Room for the request line and the HTTP headers a client adds (host,
/// user agent, lengths) beyond the headers the envelope carries.
const HEAD_SLACK_BYTES: usize = 4096;

/// Binds `addr` and serves the entry until `stopping`; the task ends once
/// the requests in flight were answered. Returns the bound address (`addr`
/// may ask for port 0).
///
/// Errors when `addr` cannot be bound.
pub(crate) async fn start(
    addr: SocketAddr,
    entry: Arc<DirectEntry>,
    section: &HttpSection,
    router_reply_timeout_secs: u64,
    limits: Limits,
    stopping: CancellationToken,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot serve HTTP on {addr}"))?;
    let bound = listener.local_addr().context("no local address")?;
    let handler = Arc::new(handler::Handler {
        entry,
        max_body: limits.max_message_bytes,
        reply_timeout: section.reply_timeout(router_reply_timeout_secs),
        client_timeout: section.client_timeout(),
    });
    let settings = server::ConnectionSettings {
        header_timeout: section.client_timeout(),
        max_head_bytes: (limits.max_header_bytes + HEAD_SLACK_BYTES).max(MIN_HEAD_BYTES),
    };
    let task = tokio::spawn(server::run(listener, handler, settings, stopping));
    tracing::info!(addr = %bound, "HTTP entry listening: POST /{{service}}/{{method}}.");
    Ok((bound, task))
}
