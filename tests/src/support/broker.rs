//! The shared local RabbitMQ.

use std::time::Duration;

use tollgate_bus::{AmqpConfig, AmqpTransport, TransportError};

/// Default broker of the test machines.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// `TOLLGATE_AMQP_URL`, or the local default.
pub fn amqp_url() -> String {
    std::env::var("TOLLGATE_AMQP_URL").unwrap_or_else(|_| DEFAULT_AMQP_URL.to_owned())
}

/// The `host:port` of [`amqp_url`] (port 5672 when the URL names none).
pub fn broker_addr() -> String {
    let url = amqp_url();
    let authority = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let authority = authority.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5672")
    }
}

/// Connects to the test broker, retrying with backoff for up to 30 s.
///
/// # Panics
/// When the broker does not answer in time: `scripts/test` starts it first.
pub async fn await_broker(connection_name: &str) -> AmqpTransport {
    await_broker_with(AmqpConfig::new(amqp_url()).with_connection_name(connection_name)).await
}

/// Connects a transport for the bus of namespace `ns` (named after it, as
/// `tollgate serve` names its own).
///
/// # Panics
/// As [`await_broker`].
pub async fn await_bus_broker(ns: &str) -> AmqpTransport {
    await_broker_with(AmqpConfig::new(amqp_url()).with_connection_name(ns)).await
}

/// Connects with `config`, retrying with backoff for up to 30 s.
async fn await_broker_with(config: AmqpConfig) -> AmqpTransport {
    let mut backoff = Duration::from_millis(100);
    let mut waited = Duration::ZERO;
    loop {
        match AmqpTransport::connect(config.clone()).await {
            Ok(t) => return t,
            Err(e @ TransportError::Connect(_)) if waited < Duration::from_secs(30) => {
                tracing::warn!(error = %e, "Broker not ready; retrying.");
                tokio::time::sleep(backoff).await;
                waited += backoff;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => panic!("RabbitMQ at {} is not reachable: {e}", amqp_url()),
        }
    }
}
