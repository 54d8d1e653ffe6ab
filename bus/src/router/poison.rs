//! Messages the broker dead-lettered on its own — a quorum queue's delivery
//! limit, an expired or overflowing message, a consumer's reject without
//! requeue — land raw in `<ns>.poison`, with whatever the sender put in them
//! (its credential, forged headers, a hostile table). The router turns each
//! into a clean copy in `<ns>.dead`, built by the same rules as its own
//! refusals ([`crate::dead_letter`]), so no credential and no attacker's
//! header table ever reaches the dead-letter queue.

use std::sync::Arc;

use crate::{
    dead_letter::DeadLetterBounds,
    error::TransportError,
    headers,
    names::BusNames,
    rejection::{RejectCode, Rejection, Stage},
    transport::{Delivery, Transport},
};

/// Longest piece of a broker header quoted in a copy's reason (the broker
/// keeps a header a publisher already set, so it may be forged).
const QUOTED_BYTES: usize = 128;

/// Cleans the poison queue into the dead-letter queue.
pub(super) struct PoisonCleaner {
    transport: Arc<dyn Transport>,
    names: BusNames,
    bounds: DeadLetterBounds,
}

impl PoisonCleaner {
    pub(super) fn new(
        transport: Arc<dyn Transport>,
        names: BusNames,
        bounds: DeadLetterBounds,
    ) -> Self {
        Self {
            transport,
            names,
            bounds,
        }
    }

    /// Publishes the clean copy of one poison message, then acks it; requeues
    /// it after a back-off when the copy cannot be published.
    pub(super) async fn clean(&self, delivery: Delivery) {
        let (raw, _, acker) = delivery.into_parts();
        let rejection = Rejection::new(RejectCode::DeadLettered, Stage::Broker, reason(&raw));
        tracing::warn!(msg.id = %raw.id, reason = %rejection.reason, "The broker dead-lettered a message.");
        let copy = super::reject::dead_letter(&raw, None, "-", &rejection, &self.bounds);
        let published: Result<(), TransportError> =
            super::reject::publish_dead_letter(self.transport.as_ref(), &self.names, &copy).await;
        let settled = match published {
            Ok(()) => {
                crate::events::broker_dead_letter();
                acker.ack().await
            }
            Err(e) => {
                tracing::warn!(msg.id = %raw.id, error = %e, "Cannot record a dead-lettered message; requeued.");
                tokio::time::sleep(super::REQUEUE_BACKOFF).await;
                acker.reject(true).await
            }
        };
        if let Err(e) = settled {
            tracing::debug!(msg.id = %raw.id, error = %e, "Settling a poison message failed; it will be redelivered.");
        }
    }
}

/// What the broker's headers say of why and where (quoted, cut short).
fn reason(raw: &crate::envelope::Envelope) -> String {
    let quoted = |name: &str| {
        raw.headers
            .get_str(name)
            .map(|v| crate::dead_letter::cut(v, QUOTED_BYTES))
            .unwrap_or("unknown")
    };
    format!(
        "dead-lettered by the broker from queue `{}` ({})",
        quoted(headers::X_FIRST_DEATH_QUEUE),
        quoted(headers::X_FIRST_DEATH_REASON)
    )
}
