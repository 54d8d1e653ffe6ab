//! Consuming with manual acks and a bounded prefetch, re-registered after a reconnect.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use futures_util::StreamExt as _;
use lapin::{
    Channel, Consumer,
    options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions},
    types::FieldTable,
};

use crate::{
    error::TransportError,
    transport::{Delivery, Settle, Subscription},
};

use super::{
    connect::{self, Connector},
    convert,
};

struct AmqpSettle(lapin::Acker);

/// Starts consuming `queue`; the first registration's errors are returned,
/// later ones (after a reconnect) are retried while the subscriber waits.
///
/// The subscriber's own task polls lapin's consumer: a delivery reaches it
/// with no hand-over through another task.
pub(super) async fn subscribe(
    connector: Arc<Connector>,
    queue: &str,
    prefetch: u16,
) -> Result<Subscription, TransportError> {
    let tag = format!(
        "{}.{}",
        connector.config().connection_name,
        uuid::Uuid::new_v4().simple()
    );
    let (channel, consumer) = start(&connector, queue, &tag, prefetch).await?;
    let live = Live {
        connector,
        queue: queue.to_owned(),
        tag,
        prefetch,
        current: Some((channel, consumer)),
    };
    // Fused: once the consumer ended for good, every later poll is `None`.
    let deliveries = futures_util::stream::unfold(live, |mut live| async move {
        live.next().await.map(|d| (d, live))
    });
    Ok(Subscription::from_stream(deliveries.fuse()))
}

async fn start(
    connector: &Arc<Connector>,
    queue: &str,
    tag: &str,
    prefetch: u16,
) -> Result<(Channel, Consumer), TransportError> {
    let link = connector.link().await?;
    let channel = connect::open_channel(&link.connection, "consumer").await?;
    let register = async {
        channel
            .basic_qos(prefetch.max(1), BasicQosOptions::default())
            .await
            .map_err(|e| convert::error(e, "basic.qos", ("queue", queue)))?;
        channel
            .basic_consume(
                convert::short(queue)?,
                convert::short(tag)?,
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| convert::error(e, "basic.consume", ("queue", queue)))
    };
    let consumer = connect::within("basic.consume (timed out)", register).await?;
    Ok((channel, consumer))
}

/// One consumer of a queue, registered again after the connection broke.
/// Dropping it (with its subscription) closes its channel, which cancels the
/// consumer; unsettled deliveries go back to the queue.
struct Live {
    connector: Arc<Connector>,
    queue: String,
    tag: String,
    prefetch: u16,
    /// `None` once it ended for good (queue deleted, transport closed).
    current: Option<(Channel, Consumer)>,
}

impl Live {
    /// The next delivery, consuming again after a lost connection; `None`
    /// once the queue is gone or the transport closed.
    async fn next(&mut self) -> Option<Delivery> {
        loop {
            let (channel, consumer) = self.current.as_mut()?;
            let lost = match consumer.next().await {
                Some(Ok(d)) => {
                    let (envelope, info, acker) = convert::split(d);
                    return Some(Delivery::new(envelope, info, Box::new(AmqpSettle(acker))));
                }
                Some(Err(e)) => {
                    tracing::warn!(queue = %self.queue, error = %e, "Consumer lost its channel.");
                    true
                }
                // The broker cancelled us while the channel is fine: the queue was deleted.
                None if channel.status().connected() => {
                    tracing::info!(queue = %self.queue, "Consumer cancelled by the broker.");
                    false
                }
                None => true,
            };
            if let Some((channel, consumer)) = self.current.take() {
                close(channel, consumer).await;
            }
            if !lost || self.connector.is_closed() {
                return None;
            }
            self.current = Some(self.restart().await?);
        }
    }

    /// Consumes again after a reconnect; `None` when the queue is gone or the
    /// transport closed.
    async fn restart(&self) -> Option<(Channel, Consumer)> {
        let mut backoff = Duration::from_millis(100);
        loop {
            match start(&self.connector, &self.queue, &self.tag, self.prefetch).await {
                Ok(next) => {
                    tracing::info!(queue = %self.queue, "Consumer re-registered.");
                    return Some(next);
                }
                Err(TransportError::NotFound { .. } | TransportError::Closed) => return None,
                Err(e) => {
                    tracing::warn!(queue = %self.queue, error = %e, "Cannot consume yet; retrying.");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let Some((channel, consumer)) = self.current.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(close(channel, consumer))),
            // No runtime left: the connection's end closes the channel.
            Err(_) => drop((channel, consumer)),
        }
    }
}

/// Closes a consumer's channel (the broker cancels its consumer and requeues
/// what it held), and only then drops lapin's consumer.
///
/// Dropping an active lapin consumer sends `basic.cancel` from lapin's own
/// task, which races the channel's close: after the close it is a frame on a
/// closing channel, and lapin (4.12) then shuts the whole connection down —
/// every other consumer and publish on it with it (RabbitMQ, when the cancel
/// does reach it after the close, does the same: `CHANNEL_ERROR`, "expected
/// 'channel.open'"). Once its channel is closed, the consumer is no longer
/// active and its drop sends nothing.
async fn close(channel: Channel, consumer: Consumer) {
    if channel.status().connected()
        && let Err(e) = channel.close(200, "consumer done".into()).await
    {
        tracing::debug!(error = %e, "Consumer channel already closed.");
    }
    drop(consumer);
}

/// How long settling a delivery may take: an ack on a connection that is
/// closing can wait for a frame that is never written.
const SETTLE_WAIT: Duration = Duration::from_secs(5);

#[async_trait]
impl Settle for AmqpSettle {
    async fn ack(&self) -> Result<(), TransportError> {
        settled(tokio::time::timeout(SETTLE_WAIT, self.0.ack(BasicAckOptions::default())).await)
    }

    async fn reject(&self, requeue: bool) -> Result<(), TransportError> {
        let reject = self.0.reject(BasicRejectOptions { requeue });
        settled(tokio::time::timeout(SETTLE_WAIT, reject).await)
    }
}

/// Lapin answers `Ok(false)` for a poisoned (channel gone) or used acker; a
/// settle that timed out is as stale (the broker redelivers the message).
fn settled(
    outcome: Result<Result<bool, lapin::Error>, tokio::time::error::Elapsed>,
) -> Result<(), TransportError> {
    match outcome {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(TransportError::DeliveryStale),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "Settling a delivery failed.");
            Err(TransportError::DeliveryStale)
        }
        Err(_) => {
            tracing::debug!("Settling a delivery timed out.");
            Err(TransportError::DeliveryStale)
        }
    }
}
