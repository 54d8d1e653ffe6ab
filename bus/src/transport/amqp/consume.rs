//! Consuming with manual acks and a bounded prefetch, re-registered after a reconnect.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use tollgate_wire::{Acker, Channel, Consumer, FieldTable};

use crate::{
    error::TransportError,
    transport::{Delivery, Settle, Subscription},
};

use super::{
    connect::{self, Connector},
    convert,
};

/// How long closing a consumer's channel may take.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

struct AmqpSettle(Acker);

/// Starts consuming `queue`; the first registration's errors are returned,
/// later ones (after a reconnect) are retried while the subscriber waits.
///
/// The subscriber's own task takes each delivery off the consumer's queue,
/// where the connection's reader put it: no other task in between.
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
    Ok(Subscription::from_stream(futures_util::StreamExt::fuse(
        deliveries,
    )))
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
            .qos(prefetch.max(1))
            .await
            .map_err(|e| convert::error(e, "basic.qos", ("queue", queue)))?;
        channel
            .consume(queue, tag, FieldTable::default())
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
                Some(d) => {
                    let (envelope, info, acker) = convert::split(d);
                    return Some(Delivery::new(envelope, info, Box::new(AmqpSettle(acker))));
                }
                // The broker cancelled us while the channel is fine: the queue was deleted.
                None if channel.is_open() => {
                    tracing::info!(queue = %self.queue, "Consumer cancelled by the broker.");
                    false
                }
                None => {
                    tracing::warn!(queue = %self.queue, "Consumer lost its channel.");
                    true
                }
            };
            if let Some((channel, _)) = self.current.take() {
                close(channel).await;
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
        let Some((channel, _)) = self.current.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            drop(runtime.spawn(close(channel)));
        }
        // No runtime left: the connection's end closes the channel.
    }
}

/// Closes a consumer's channel: the broker cancels its consumer and requeues
/// what it held unsettled.
async fn close(channel: Channel) {
    if !channel.is_open() {
        return;
    }
    match tokio::time::timeout(CLOSE_WAIT, channel.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "Consumer channel already closed."),
        Err(_) => tracing::debug!("Closing a consumer channel timed out."),
    }
}

#[async_trait]
impl Settle for AmqpSettle {
    async fn ack(&self) -> Result<(), TransportError> {
        self.0.ack().map_err(stale)
    }

    async fn reject(&self, requeue: bool) -> Result<(), TransportError> {
        self.0.reject(requeue).map_err(stale)
    }
}

/// A settle on a channel that is gone: the broker redelivers the message.
fn stale(e: tollgate_wire::WireError) -> TransportError {
    tracing::debug!(error = %e, "Settling a delivery failed.");
    TransportError::DeliveryStale
}
