//! The consuming loop shared by the ingress and replies queues: one task per
//! delivery (bounded by the prefetch), and a graceful stop.

use std::{future::Future, time::Duration};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::transport::{Delivery, Subscription};

/// Longest a stopping router waits for its in-flight messages to settle (each
/// step of a message is bounded well below it: a publish by its 30 s confirm
/// timeout, a settle by 5 s).
const DRAIN_WAIT: Duration = Duration::from_secs(45);

/// Hands each delivery of `subscription` to `handle` in its own task until
/// `shutdown`; then stops taking deliveries, lets every in-flight handler
/// settle its message (for at most [`DRAIN_WAIT`]), and only then cancels the
/// consumer (whatever was prefetched but not started goes back to the queue).
pub(super) async fn consume<F, Fut>(
    mut subscription: Subscription,
    shutdown: CancellationToken,
    handle: F,
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
                    tracing::error!("Consumer ended; the transport is closed or the queue was deleted.");
                    break;
                }
            },
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
