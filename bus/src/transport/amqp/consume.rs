//! Consuming with manual acks and a bounded prefetch, re-registered after a reconnect.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::{
    Channel, Consumer,
    options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions},
    types::FieldTable,
};
use tokio::sync::{mpsc, oneshot};

use crate::{
    error::TransportError,
    transport::{Delivery, Settle, Subscription},
};

use super::{connect::Connector, convert};

struct AmqpSettle(lapin::Acker);

/// Starts consuming `queue`; the first registration's errors are returned,
/// later ones (after a reconnect) are retried in the background.
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
    let first = start(&connector, queue, &tag, prefetch).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let (cancel, cancelled) = oneshot::channel::<()>();
    let job = Job {
        connector,
        queue: queue.to_owned(),
        tag,
        prefetch,
        tx,
    };
    tokio::spawn(job.run(first, cancelled));
    Ok(Subscription::new(rx, Box::new(cancel)))
}

async fn start(
    connector: &Connector,
    queue: &str,
    tag: &str,
    prefetch: u16,
) -> Result<(Channel, Consumer), TransportError> {
    let link = connector.link().await?;
    let channel = link
        .connection
        .create_channel()
        .await
        .map_err(|e| convert::error(e, "channel.open", ("channel", "consumer")))?;
    channel
        .basic_qos(prefetch.max(1), BasicQosOptions::default())
        .await
        .map_err(|e| convert::error(e, "basic.qos", ("queue", queue)))?;
    let consumer = channel
        .basic_consume(
            convert::short(queue)?,
            convert::short(tag)?,
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| convert::error(e, "basic.consume", ("queue", queue)))?;
    Ok((channel, consumer))
}

struct Job {
    connector: Arc<Connector>,
    queue: String,
    tag: String,
    prefetch: u16,
    tx: mpsc::UnboundedSender<Delivery>,
}

enum Ended {
    /// The subscription was dropped or the transport closed.
    Stop,
    /// The channel or connection broke: consume again once reconnected.
    Lost,
}

impl Job {
    async fn run(self, first: (Channel, Consumer), mut cancelled: oneshot::Receiver<()>) {
        let (mut channel, mut consumer) = first;
        loop {
            let ended = self.forward(&mut consumer, &channel, &mut cancelled).await;
            if let Err(e) = channel.close(200, "consumer done".into()).await {
                tracing::debug!(error = %e, "Consumer channel already closed.");
            }
            if matches!(ended, Ended::Stop) || self.connector.is_closed() {
                return;
            }
            match self.restart(&mut cancelled).await {
                Some(next) => (channel, consumer) = next,
                None => return,
            }
        }
    }

    async fn forward(
        &self,
        consumer: &mut Consumer,
        channel: &Channel,
        cancelled: &mut oneshot::Receiver<()>,
    ) -> Ended {
        loop {
            let item = tokio::select! {
                _ = &mut *cancelled => return Ended::Stop,
                item = consumer.next() => item,
            };
            match item {
                Some(Ok(d)) => {
                    let (envelope, info, acker) = convert::split(d);
                    let delivery = Delivery::new(envelope, info, Box::new(AmqpSettle(acker)));
                    if self.tx.send(delivery).is_err() {
                        return Ended::Stop;
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(queue = %self.queue, error = %e, "Consumer lost its channel.");
                    return Ended::Lost;
                }
                None if channel.status().connected() => {
                    // The broker cancelled us while the channel is fine: the queue was deleted.
                    tracing::info!(queue = %self.queue, "Consumer cancelled by the broker.");
                    return Ended::Stop;
                }
                None => return Ended::Lost,
            }
        }
    }

    /// Consumes again after a reconnect; `None` when cancelled or the queue is gone.
    async fn restart(&self, cancelled: &mut oneshot::Receiver<()>) -> Option<(Channel, Consumer)> {
        let mut backoff = Duration::from_millis(100);
        loop {
            let attempt = tokio::select! {
                _ = &mut *cancelled => return None,
                attempt = start(&self.connector, &self.queue, &self.tag, self.prefetch) => attempt,
            };
            match attempt {
                Ok(next) => {
                    tracing::info!(queue = %self.queue, "Consumer re-registered.");
                    return Some(next);
                }
                Err(TransportError::NotFound { .. } | TransportError::Closed) => return None,
                Err(e) => {
                    tracing::warn!(queue = %self.queue, error = %e, "Cannot consume yet; retrying.");
                    tokio::select! {
                        _ = &mut *cancelled => return None,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

#[async_trait]
impl Settle for AmqpSettle {
    async fn ack(&self) -> Result<(), TransportError> {
        settled(self.0.ack(BasicAckOptions::default()).await)
    }

    async fn reject(&self, requeue: bool) -> Result<(), TransportError> {
        settled(self.0.reject(BasicRejectOptions { requeue }).await)
    }
}

/// Lapin answers `Ok(false)` for a poisoned (channel gone) or used acker.
fn settled(outcome: Result<bool, lapin::Error>) -> Result<(), TransportError> {
    match outcome {
        Ok(true) => Ok(()),
        Ok(false) => Err(TransportError::DeliveryStale),
        Err(e) => {
            tracing::debug!(error = %e, "Settling a delivery failed.");
            Err(TransportError::DeliveryStale)
        }
    }
}
