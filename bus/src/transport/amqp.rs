//! RabbitMQ transport on `tollgate-wire` (this workspace's AMQP client, whose
//! socket tokio tasks read and write): publisher confirms (pipelined),
//! mandatory publishes, manual acks, `basic.qos` on every consuming channel,
//! and reconnection (topology re-declared, consumers re-registered).

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;

use crate::{
    address::Address,
    envelope::Envelope,
    error::TransportError,
    topology::Topology,
    transport::{QueueInfo, SubscribeOptions, Subscription, Transport},
};

mod connect;
mod consume;
mod convert;
mod encode;
mod nodes;
mod publish;
mod topology;

use connect::Connector;
pub use nodes::{BrokerNodes, NODE_SEPARATOR, NodeListError, redact_amqp_urls};

/// Settings of an [`AmqpTransport`]. Its `Debug` hides passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct AmqpConfig {
    /// `amqp://user:pass@host:port/vhost`, or several such URLs separated by
    /// commas, one per node of a cluster (see [`BrokerNodes`]): the
    /// transport connects to the first that answers and, when its
    /// connection breaks, moves on to the next.
    pub url: String,
    /// Shown in RabbitMQ's management UI and used as consumer-tag prefix.
    pub connection_name: String,
    /// How long a call waits for a lost broker to come back before failing.
    pub reconnect_timeout: Duration,
    /// How long a publish waits for the broker's confirm.
    pub confirm_timeout: Duration,
}

/// A [`Transport`] on RabbitMQ.
#[derive(Clone)]
pub struct AmqpTransport {
    connector: Arc<Connector>,
}

// === AmqpConfig ===

impl AmqpConfig {
    /// Defaults: connection name `tollgate`, 10 s reconnect window, 30 s confirm timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            connection_name: "tollgate".into(),
            reconnect_timeout: Duration::from_secs(10),
            confirm_timeout: Duration::from_secs(30),
        }
    }

    /// Sets the connection name.
    pub fn with_connection_name(mut self, name: impl Into<String>) -> Self {
        self.connection_name = name.into();
        self
    }

    /// Sets how long calls wait for a lost broker.
    pub fn with_reconnect_timeout(mut self, timeout: Duration) -> Self {
        self.reconnect_timeout = timeout;
        self
    }
}

impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConfig")
            .field("url", &redact_amqp_urls(&self.url))
            .field("connection_name", &self.connection_name)
            .field("reconnect_timeout", &self.reconnect_timeout)
            .field("confirm_timeout", &self.confirm_timeout)
            .finish()
    }
}

// === AmqpTransport ===

impl AmqpTransport {
    /// Connects to RabbitMQ: to the first node of the URL list that answers.
    ///
    /// Fails at once with [`TransportError::BadUrl`] when the list does not
    /// parse, and with the last node's error when none can be reached.
    pub async fn connect(config: AmqpConfig) -> Result<Self, TransportError> {
        Ok(Self {
            connector: Arc::new(Connector::connect(config).await?),
        })
    }

    /// Runs `op` on a fresh channel and closes it ([`Connector::on_channel`]).
    async fn on_channel<T>(
        &self,
        op: impl AsyncFnOnce(&tollgate_wire::Channel) -> Result<T, TransportError>,
    ) -> Result<T, TransportError> {
        self.connector
            .on_channel("declare, delete or inspect (timed out)", op)
            .await
    }
}

impl std::fmt::Debug for AmqpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpTransport")
            .field("connection_name", &self.connector.config().connection_name)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Transport for AmqpTransport {
    async fn declare(&self, topology: &Topology) -> Result<(), TransportError> {
        topology.validate()?;
        self.on_channel(async |ch| topology::declare(ch, topology).await)
            .await?;
        self.connector.record(topology);
        Ok(())
    }

    async fn delete(&self, topology: &Topology) -> Result<(), TransportError> {
        self.connector.forget(topology);
        self.on_channel(async |ch| topology::delete(ch, topology).await)
            .await
    }

    async fn publish(&self, to: &Address, envelope: &Envelope) -> Result<(), TransportError> {
        publish::publish(&self.connector, to, envelope).await
    }

    async fn subscribe(
        &self,
        queue: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription, TransportError> {
        consume::subscribe(Arc::clone(&self.connector), queue, options.prefetch).await
    }

    async fn inspect(&self, queue: &str) -> Result<QueueInfo, TransportError> {
        self.on_channel(async |ch| topology::inspect(ch, queue).await)
            .await
    }

    fn is_connected(&self) -> bool {
        self.connector.is_connected()
    }

    fn is_blocked(&self) -> bool {
        self.connector.blocked()
    }

    fn user(&self) -> Option<&str> {
        self.connector.user()
    }

    async fn close(&self) -> Result<(), TransportError> {
        self.connector.close().await;
        Ok(())
    }
}
