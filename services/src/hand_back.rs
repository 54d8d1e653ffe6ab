//! Handing back a request that outlived its bus assertion while it waited
//! in the service's queue: the routers re-admit it with a fresh assertion
//! (README, "Backlogs older than an assertion"; the router's side is
//! `tollgate_bus`'s `router::readmit`).

use tollgate_bus::{Address, Envelope, TransportError};

use crate::{
    dispatch::{Dispatcher, Settlement},
    guard::Refusal,
    refuse::DEAD_LETTER_BACKOFF,
};

impl Dispatcher {
    /// Hands a request whose bus assertion expired while it waited back to
    /// the routers (`<ns>.readmit`, unchanged but for its storage: persistent
    /// and without expiration, whatever hop it came on), which check it and
    /// deliver it again with a fresh assertion; acks once the broker
    /// confirmed. A bus
    /// without that queue (routers older than re-admission) gets the
    /// refusal instead; a broker that cannot take it now, a requeue.
    pub(crate) async fn hand_back(&self, envelope: &Envelope, refusal: &Refusal) -> Settlement {
        let readmit = Address::queue(self.names.readmit_queue());
        let mut copy = envelope.clone().for_hop(tollgate_bus::Hop::Request);
        copy.expiration = None;
        match self.transport.publish(&readmit, &copy).await {
            Ok(()) => {
                tracing::info!(
                    service = %self.service,
                    msg.id = %envelope.id,
                    "A request outlived its bus assertion while it waited; handed back for re-admission."
                );
                Settlement::Ack
            }
            Err(TransportError::Unroutable { .. }) => {
                tracing::warn!(msg.id = %envelope.id, queue = self.names.readmit_queue(), "No re-admission queue on this bus; refusing a request that outlived its assertion.");
                self.refuse(envelope, refusal).await
            }
            Err(e) => {
                tracing::warn!(msg.id = %envelope.id, error = %e, "Cannot hand a request back for re-admission; requeueing.");
                Settlement::Requeue {
                    after: DEAD_LETTER_BACKOFF,
                }
            }
        }
    }
}
