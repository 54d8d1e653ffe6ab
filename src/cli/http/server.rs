//! The listener: one task per connection (HTTP/1.1 with hyper), slow clients
//! timed out, and a graceful stop that finishes the requests in flight.

use std::{convert::Infallible, pin::pin, sync::Arc, time::Duration};

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;

use super::handler::Handler;

/// Connection settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionSettings {
    /// How long a client has to send a request's line and headers.
    pub(crate) header_timeout: Duration,
    /// Largest request head in bytes (hyper answers 431 past it).
    pub(crate) max_head_bytes: usize,
}

/// Accepts connections until `stopping`; then stops accepting, lets every
/// connection finish the request it is answering (and closes it after),
/// and returns once all are closed.
pub(crate) async fn run(
    listener: TcpListener,
    handler: Arc<Handler>,
    settings: ConnectionSettings,
    stopping: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stopping.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let (handler, stopping) = (Arc::clone(&handler), stopping.clone());
                    connections.spawn(serve(stream, handler, settings, stopping));
                }
                Err(e) => {
                    // Out of file descriptors, typically: wait rather than spin.
                    tracing::warn!(error = %e, "Cannot accept an HTTP connection.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    tracing::info!(
        connections = connections.len(),
        "HTTP entry stopping: finishing in-flight requests."
    );
    while connections.join_next().await.is_some() {}
    tracing::info!("HTTP entry stopped.");
}

async fn serve(
    stream: tokio::net::TcpStream,
    handler: Arc<Handler>,
    settings: ConnectionSettings,
    stopping: CancellationToken,
) {
    let service = service_fn(move |request| {
        let handler = Arc::clone(&handler);
        async move { Ok::<_, Infallible>(handler.handle(request).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .max_buf_size(settings.max_head_bytes)
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = stopping.cancelled() => {
            // Finishes the request being answered, then closes.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = served {
        tracing::debug!(error = %e, "HTTP connection ended with an error.");
    }
}
