//! The router's operations listener (`metrics_addr`): `/metrics` for
//! Prometheus, `/health/live` and `/health/ready` for a supervisor.
//!
//! metrics-exporter-prometheus's own listener answers the metrics page on
//! every path, so the three paths are served here with hyper (already
//! linked by the exporter), rendering the exporter's handle on each scrape.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, header, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tollgate_bus::{events, health::Health};

/// What the listener reads on each request.
#[derive(Clone)]
struct Endpoints {
    metrics: PrometheusHandle,
    health: Arc<Health>,
}

/// Installs the Prometheus recorder and serves the three paths on `addr`
/// until the process ends.
///
/// Errors when the recorder cannot be installed or `addr` cannot be bound.
pub(crate) async fn serve(addr: SocketAddr, health: Arc<Health>) -> anyhow::Result<()> {
    let metrics = events::prometheus_builder()
        .context("invalid histogram buckets")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot serve metrics on {addr}"))?;
    tokio::spawn(upkeep(metrics.clone()));
    tokio::spawn(accept(listener, Endpoints { metrics, health }));
    tracing::info!(%addr, "Serving /metrics, /health/live and /health/ready.");
    Ok(())
}

/// Drains the exporter's histogram buckets regularly, as its own listener would.
async fn upkeep(metrics: PrometheusHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        metrics.run_upkeep();
    }
}

async fn accept(listener: TcpListener, endpoints: Endpoints) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, typically: wait rather than spin.
                tracing::warn!(error = %e, "Cannot accept a metrics connection.");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let endpoints = endpoints.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = endpoints.respond(&request);
                async move { Ok::<_, Infallible>(response) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                // A client that never finishes its request does not hold a task forever.
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "Metrics connection ended with an error.");
            }
        });
    }
}

// === Endpoints ===

impl Endpoints {
    fn respond<B>(&self, request: &Request<B>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".to_owned());
        }
        match request.uri().path() {
            "/metrics" => {
                let mut response = text(StatusCode::OK, self.metrics.render());
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                response
            }
            "/health/live" => {
                let live = self.health.is_live();
                let body = serde_json::json!({ "live": live });
                json(status(live), &body)
            }
            "/health/ready" => {
                let readiness = self.health.readiness();
                json(status(readiness.ready), &readiness)
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n".to_owned()),
        }
    }
}

fn status(ok: bool) -> StatusCode {
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> Response<Full<Bytes>> {
    // Serializing a struct of booleans cannot fail.
    let mut bytes = serde_json::to_vec(body).unwrap_or_default();
    bytes.push(b'\n');
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
