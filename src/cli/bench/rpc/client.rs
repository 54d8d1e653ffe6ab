//! How `bench rpc` reaches the echo service: the SDK caller over AMQP, or
//! HTTP to the router's HTTP entry (one keep-alive connection per worker).

use std::{sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, client::conn::http1::SendRequest, header};
use hyper_util::rt::TokioIo;
use tollgate_bus::Envelope;
use tollgate_services::{Caller, RequestOptions};

use super::echo::ROUTE;

/// Who makes the calls of a run.
#[derive(Clone)]
pub(crate) enum Client {
    /// The SDK caller, shared by every worker.
    Amqp(Arc<Caller>),
    /// The router's HTTP entry at this address.
    Http(String),
}

/// One worker's way to call: the shared caller, or its own connection.
pub(crate) enum Line {
    /// The SDK caller.
    Amqp(Arc<Caller>),
    /// An HTTP/1.1 connection, opened on first use and again after an error.
    Http {
        addr: String,
        sender: Option<SendRequest<Full<Bytes>>>,
    },
}

impl Client {
    /// A worker's line.
    pub(crate) fn line(&self) -> Line {
        match self {
            Self::Amqp(caller) => Line::Amqp(Arc::clone(caller)),
            Self::Http(addr) => Line::Http {
                addr: addr.clone(),
                sender: None,
            },
        }
    }
}

impl Line {
    /// Calls the echo service with `payload` (JSON) and `token`; errors when
    /// no successful reply came within `timeout`.
    pub(crate) async fn call(
        &mut self,
        payload: &Bytes,
        token: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        match self {
            Self::Amqp(caller) => {
                let options = RequestOptions::with_token(token).timeout(timeout);
                let request = Envelope::new(payload.clone()).with_content_type("application/json");
                caller.request_raw(ROUTE, request, &options).await?;
                Ok(())
            }
            Self::Http { addr, sender } => {
                let called =
                    tokio::time::timeout(timeout, post(addr, sender, payload, token)).await;
                let outcome =
                    called.unwrap_or_else(|_| Err(anyhow::anyhow!("no reply within {timeout:?}")));
                if outcome.is_err() {
                    // The connection may be mid-answer: the next call opens another.
                    *sender = None;
                }
                outcome
            }
        }
    }
}

/// `POST /echo/call` on the line's connection (opened when there is none).
async fn post(
    addr: &str,
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    payload: &Bytes,
    token: &str,
) -> anyhow::Result<()> {
    if sender.is_none() {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to the HTTP entry at {addr}"))?;
        stream.set_nodelay(true)?;
        let (opened, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "A bench HTTP connection ended.");
            }
        });
        *sender = Some(opened);
    }
    let Some(open) = sender.as_mut() else {
        bail!("no connection");
    };
    open.ready().await?;
    let request = Request::post(format!("/{}", ROUTE.replace('.', "/")))
        .header(header::HOST, addr)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::new(payload.clone()))?;
    let response = open.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}
