//! The consuming loop shared by the ingress and replies queues: one task per
//! delivery (bounded by the prefetch), and a graceful stop.

use std::{future::Future, sync::Arc, time::Duration};

use futures_util::FutureExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{
    bus_topology,
    error::TransportError,
    health::{Check, Health},
    names::BusNames,
    topology::Topology,
    transport::{Delivery, SubscribeOptions, Subscription, Transport},
};

/// Longest a stopping router waits for its in-flight messages to settle (each
/// step of a message is bounded well below it: a publish by its 30 s confirm
/// timeout, a settle by 5 s).
const DRAIN_WAIT: Duration = Duration::from_secs(45);

/// Hands each delivery of `subscription` to `handle` in its own task until
/// `shutdown`; then stops taking deliveries (but, with `finish_ready`,
/// starts those already received), lets every in-flight handler settle its
/// message (for at most [`DRAIN_WAIT`]), and only then cancels the consumer
/// (whatever was prefetched but not started goes back to the queue).
pub(super) async fn consume<F, Fut>(
    mut subscription: Subscription,
    shutdown: &CancellationToken,
    finish_ready: bool,
    handle: &F,
) where
    F: Fn(Delivery) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut in_flight = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "A message handler panicked; its message will be redelivered.");
                }
            }
            delivery = subscription.next() => match delivery {
                Some(d) => { in_flight.spawn(handle(d)); }
                None => {
                    tracing::warn!("Consumer ended; the transport is closed or the queue was deleted.");
                    break;
                }
            },
        }
    }
    if finish_ready && shutdown.is_cancelled() {
        while let Some(Some(d)) = subscription.next().now_or_never() {
            in_flight.spawn(handle(d));
        }
    }
    let pending = in_flight.len();
    if pending > 0 {
        tracing::info!(pending, "Finishing in-flight messages before stopping.");
    }
    let drain = async {
        while let Some(done) = in_flight.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "A message handler panicked; its message will be redelivered.");
            }
        }
    };
    if tokio::time::timeout(DRAIN_WAIT, drain).await.is_err() {
        // Unsettled, so the broker redelivers them: stopping never loses one.
        tracing::warn!(
            left = in_flight.len(),
            "In-flight messages did not settle in time; leaving them to be redelivered."
        );
        in_flight.abort_all();
    }
    drop(subscription);
}

/// One queue a router consumes, and what it needs to consume it again.
#[derive(Clone)]
pub(super) struct Consumer {
    pub(super) transport: Arc<dyn Transport>,
    pub(super) names: BusNames,
    pub(super) queue: String,
    pub(super) options: SubscribeOptions,
    /// Where this consumer reports whether it consumes.
    pub(super) health: Arc<Health>,
    /// The check this queue's consumer passes.
    pub(super) check: Check,
    /// The topology of a queue of this router's own (its private replies
    /// queue), declared again with the bus's when the consumer ended.
    pub(super) own: Option<Topology>,
    /// On stop, also handles the deliveries already received but not yet
    /// started, instead of handing them back to the queue (the poison
    /// queue: what a stopping router took, it cleans).
    pub(super) finish_ready: bool,
}

/// Attempts in a row to consume a vanished queue again before giving up.
const RESUME_ATTEMPTS: u32 = 5;

impl Consumer {
    /// Starts consuming the queue.
    pub(super) async fn subscribe(&self) -> Result<Subscription, TransportError> {
        self.transport
            .subscribe(&self.queue, self.options.clone())
            .await
    }

    /// Consumes with `handle` until `shutdown`, starting with `subscription`,
    /// and keeps consuming when the consumer ends on its own (an operator
    /// deleted the queue, a policy removed it): declares the bus topology
    /// again and consumes anew. Gives up after [`RESUME_ATTEMPTS`] failed
    /// attempts in a row: then it cancels `shutdown` — the whole router stops,
    /// so that a supervisor sees it — and returns the error.
    pub(super) async fn keep_consuming<F, Fut>(
        self,
        mut subscription: Subscription,
        shutdown: CancellationToken,
        handle: F,
    ) -> Result<(), TransportError>
    where
        F: Fn(Delivery) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        loop {
            self.health.set(self.check, true);
            consume(subscription, &shutdown, self.finish_ready, &handle).await;
            self.health.set(self.check, false);
            if shutdown.is_cancelled() {
                return Ok(());
            }
            subscription = match self.resume(&shutdown).await {
                Ok(Some(next)) => next,
                Ok(None) => return Ok(()),
                Err(e) => {
                    tracing::error!(queue = %self.queue, error = %e, "Cannot consume again; stopping the router.");
                    self.health.set_failed();
                    shutdown.cancel();
                    return Err(e);
                }
            };
        }
    }

    /// Declares the bus topology and this consumer's own queue.
    async fn declare(&self) -> Result<(), TransportError> {
        self.transport
            .declare(&bus_topology::core(&self.names))
            .await?;
        match &self.own {
            Some(own) => self.transport.declare(own).await,
            None => Ok(()),
        }
    }

    /// Declares the bus topology and consumes the queue again, with a
    /// back-off; `None` when shut down meanwhile.
    async fn resume(
        &self,
        shutdown: &CancellationToken,
    ) -> Result<Option<Subscription>, TransportError> {
        let queue = &self.queue;
        let mut backoff = Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            attempt += 1;
            tracing::warn!(%queue, attempt, "The queue's consumer ended; declaring the bus topology again.");
            self.health.set(Check::Topology, false);
            let resumed = match self.declare().await {
                Ok(()) => {
                    self.health.set(Check::Topology, true);
                    self.subscribe().await
                }
                Err(e) => Err(e),
            };
            match resumed {
                Ok(subscription) => {
                    tracing::info!(%queue, "Consuming again.");
                    return Ok(Some(subscription));
                }
                // A transport closed by its owner never comes back.
                Err(e @ TransportError::Closed) => return Err(e),
                Err(e) if attempt >= RESUME_ATTEMPTS => return Err(e),
                Err(e) => tracing::warn!(%queue, error = %e, "Cannot consume again yet."),
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(None),
                () = tokio::time::sleep(backoff) => {}
            }
            backoff *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::{Address, Envelope, MemoryTransport, topology::QueueSpec};

    #[tokio::test]
    async fn a_stopped_consumer_that_finishes_what_it_received_handles_every_ready_delivery() {
        let transport = MemoryTransport::new();
        transport
            .declare(&Topology::new().queue(QueueSpec::classic("q")))
            .await
            .unwrap();
        let to = Address::new("", "q");
        for n in 0..3 {
            transport
                .publish(&to, &Envelope::new(format!("m{n}")))
                .await
                .unwrap();
        }
        let subscription = transport
            .subscribe("q", SubscribeOptions::prefetch(8))
            .await
            .unwrap();
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let handled = Arc::new(AtomicUsize::new(0));
        let handle = |d: Delivery| {
            let handled = Arc::clone(&handled);
            async move {
                d.ack().await.unwrap();
                handled.fetch_add(1, Ordering::Relaxed);
            }
        };

        consume(subscription, &shutdown, true, &handle).await;

        assert_eq!(handled.load(Ordering::Relaxed), 3);
        assert_eq!(transport.inspect("q").await.unwrap().messages, 0);
    }
}
