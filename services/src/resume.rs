//! Consuming the service queue again after its consumer ended on its own:
//! the broker cancelled it because the queue was deleted (an operator's
//! mistake, a policy), or the queue was gone when the transport reconnected.
//!
//! The instance declares its queue again (and the bus's core topology if
//! that is gone too) and consumes anew, with a back-off, at most
//! [`RESUME_ATTEMPTS`] times in a row, as the router does for its own queues.
//! Past that, it gives up with [`ServiceError::ConsumerLost`], so the service
//! stops (and a supervisor restarts it) rather than idling registered but deaf.

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;
use tollgate_bus::{
    BusNames, SubscribeOptions, Subscription, Transport, TransportError, bus_topology,
};

use crate::{error::ServiceError, running::stopped};

/// Attempts in a row to consume a vanished queue again before giving up.
pub(crate) const RESUME_ATTEMPTS: u32 = 5;
/// Wait after the first failed attempt; doubled after each, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the instance needs to consume its queue again.
pub(crate) struct Resumer {
    pub(crate) service: String,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) names: BusNames,
    pub(crate) options: SubscribeOptions,
}

impl Resumer {
    /// The service queue, declared again and consumed anew; `None` when
    /// `stop` fired meanwhile.
    ///
    /// Errors with [`ServiceError::ConsumerLost`] after [`RESUME_ATTEMPTS`]
    /// failed attempts, or at once when the transport was closed.
    pub(crate) async fn resume(
        &self,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Option<Subscription>, ServiceError> {
        let queue = self.names.service_queue(&self.service);
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            attempt += 1;
            tracing::warn!(service = %self.service, %queue, attempt, "The service queue's consumer ended; declaring the queue again.");
            let error = match self.attempt(&queue).await {
                Ok(subscription) => {
                    tracing::info!(service = %self.service, %queue, "Consuming the service queue again.");
                    return Ok(Some(subscription));
                }
                Err(e @ TransportError::Closed) => return Err(self.lost(attempt, e)),
                Err(e) if attempt >= RESUME_ATTEMPTS => return Err(self.lost(attempt, e)),
                Err(e) => e,
            };
            tracing::warn!(service = %self.service, %queue, error = %error, retry.ms = backoff.as_millis() as u64, "Cannot consume the service queue yet.");
            tokio::select! {
                () = stopped(stop) => return Ok(None),
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn attempt(&self, queue: &str) -> Result<Subscription, TransportError> {
        let topology = bus_topology::service(&self.names, &self.service);
        match self.transport.declare(&topology).await {
            Err(TransportError::NotFound { .. }) => {
                self.transport
                    .declare(&bus_topology::core(&self.names))
                    .await?;
                self.transport.declare(&topology).await?;
            }
            other => other?,
        }
        self.transport.subscribe(queue, self.options.clone()).await
    }

    fn lost(&self, attempts: u32, last: TransportError) -> ServiceError {
        tracing::error!(service = %self.service, attempts, error = %last, "Cannot consume the service queue again; stopping.");
        ServiceError::ConsumerLost {
            queue: self.names.service_queue(&self.service),
            attempts,
            last,
        }
    }
}
