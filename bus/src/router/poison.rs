//! Messages the broker dead-lettered on its own — a quorum queue's delivery
//! limit, an expired or overflowing message, a consumer's reject without
//! requeue — land raw in `<ns>.poison`, with whatever the sender put in them
//! (its credential, forged headers, a hostile table). The router turns each
//! into a clean copy in `<ns>.dead`, built by the same rules as its own
//! refusals ([`crate::dead_letter`]), so no credential and no attacker's
//! header table ever reaches the dead-letter queue.
//!
//! Three kinds are no dead letters: a held call's copy whose hold ended
//! (dropped: its ingress comes again), a request a router delivered and its
//! service rejected because it outlived its assertion (re-admitted, see
//! [`super::readmit`]), and a request the ingress queue dead-lettered at its
//! delivery limit (returned to the ingress, see [`super::limit_return`]).

use std::sync::Arc;

use super::{
    held::HeldCalls,
    limit_return,
    readmit::{HandBack, Readmitter},
};
use crate::{
    address::Address,
    dead_letter::DeadLetterBounds,
    envelope::Envelope,
    error::TransportError,
    headers,
    names::BusNames,
    rejection::{RejectCode, Rejection, Stage},
    reply_context::ReplyContextKey,
    transport::{Acker, Delivery, Transport},
};

/// Longest piece of a broker header quoted in a copy's reason (the broker
/// keeps a header a publisher already set, so it may be forged).
const QUOTED_BYTES: usize = 128;

/// Cleans the poison queue into the dead-letter queue, and hands the
/// requests that outlived their assertion to re-admission.
pub(super) struct PoisonCleaner {
    transport: Arc<dyn Transport>,
    names: BusNames,
    bounds: DeadLetterBounds,
    readmitter: Arc<Readmitter>,
    /// The calls this router holds, if it holds any.
    held: Option<Arc<HeldCalls>>,
}

impl PoisonCleaner {
    pub(super) fn new(
        transport: Arc<dyn Transport>,
        names: BusNames,
        bounds: DeadLetterBounds,
        readmitter: Arc<Readmitter>,
        held: Option<Arc<HeldCalls>>,
    ) -> Self {
        Self {
            transport,
            names,
            bounds,
            readmitter,
            held,
        }
    }

    /// Publishes the clean copy of one poison message, then acks it; requeues
    /// it after a back-off when the copy cannot be published.
    pub(super) async fn clean(&self, delivery: Delivery) {
        let (raw, _, acker) = delivery.into_parts();
        if is_lapsed_held_copy(&raw, &self.names) {
            // Its ingress goes back to the queue when the hold ends, and comes
            // again to be delivered durably: this copy is no loss. A copy a
            // router delivered and its service handed back ends the hold now,
            // where this router holds it.
            let handed_back = raw.headers.get_str(headers::X_FIRST_DEATH_REASON)
                == Some("rejected")
                && self.readmitter.vouched(&raw);
            if let (true, Some(held), Some(id)) = (
                handed_back,
                &self.held,
                raw.headers
                    .get_str(headers::REPLY_CONTEXT)
                    .and_then(ReplyContextKey::id_of),
            ) {
                held.handed_back(&id);
            }
            tracing::debug!(msg.id = %raw.id, handed_back, "A held call's copy left its service queue unserved; dropped.");
            if let Err(e) = acker.ack().await {
                tracing::debug!(msg.id = %raw.id, error = %e, "Acking an expired held copy failed.");
            }
            return;
        }
        if let Some((route, copy)) = limit_return::returned_to_ingress(&raw, &self.names) {
            return self.return_to_ingress(&route, &copy, acker).await;
        }
        let hand_back = self.readmitter.hand_back(&raw);
        if hand_back == Some(HandBack::Vouched) {
            return self.readmitter.readmit(raw, acker).await;
        }
        let mut reason = reason(&raw);
        if hand_back == Some(HandBack::Unvouched) {
            reason.push_str(
                "; not re-admitted: no router of this bus delivered it (a copy put into the queue by another publisher)",
            );
        }
        let rejection = Rejection::new(RejectCode::DeadLettered, Stage::Broker, reason);
        tracing::warn!(msg.id = %raw.id, reason = %rejection.reason, "The broker dead-lettered a message.");
        let copy = super::reject::dead_letter(&raw, None, "-", &rejection, &self.bounds);
        let published: Result<(), TransportError> =
            super::reject::publish_dead_letter(self.transport.as_ref(), &self.names, &copy).await;
        if published.is_ok() {
            crate::events::broker_dead_letter();
        }
        let settled = super::ack_or_requeue(
            acker,
            published,
            &raw.id,
            "Cannot record a dead-lettered message",
        )
        .await;
        settled_or_logged(settled, &raw.id);
    }

    /// Publishes `copy` of a request the ingress queue dead-lettered at its
    /// delivery limit to the ingress exchange with `route`, then acks it;
    /// requeues it after a back-off when the publish fails.
    async fn return_to_ingress(&self, route: &str, copy: &Envelope, acker: Acker) {
        let to = Address::new(self.names.ingress_exchange(), route);
        let published = self.transport.publish(&to, copy).await;
        if published.is_ok() {
            tracing::info!(msg.id = %copy.id, %route, "A request reached the ingress queue's delivery limit unrefused; returned to the ingress.");
            crate::events::limit_return();
        }
        let settled = super::ack_or_requeue(
            acker,
            published,
            &copy.id,
            "Cannot return a request to the ingress",
        )
        .await;
        settled_or_logged(settled, &copy.id);
    }
}

/// Logs a poison message that could not be settled (the broker redelivers it).
fn settled_or_logged(settled: Result<(), TransportError>, msg_id: &str) {
    if let Err(e) = settled {
        tracing::debug!(msg.id = %msg_id, error = %e, "Settling a poison message failed; it will be redelivered.");
    }
}

/// Whether `raw` is the copy of a held call (transient, with a reply
/// context) that its service queue dead-lettered: it expired when its hold
/// lapsed, or its service rejected it as outliving its assertion (the
/// broker's first death of it says `expired` or `rejected` in a service
/// queue). Either way its ingress goes back to the queue, or went back, when
/// the hold lapses.
fn is_lapsed_held_copy(raw: &Envelope, names: &BusNames) -> bool {
    raw.delivery_mode == crate::envelope::DeliveryMode::Transient
        && raw.headers.contains(headers::REPLY_CONTEXT)
        && matches!(
            raw.headers.get_str(headers::X_FIRST_DEATH_REASON),
            Some("expired" | "rejected")
        )
        && raw
            .headers
            .get_str(headers::X_FIRST_DEATH_QUEUE)
            .is_some_and(|queue| names.is_service_queue(queue))
}

/// What the broker's headers say of why and where (quoted, cut short).
fn reason(raw: &Envelope) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_expired_or_rejected_transient_call_from_a_service_queue_is_a_lapsed_held_copy() {
        let names = BusNames::new("tg");
        let held = |reason: &str, queue: &str| {
            let mut raw = Envelope::new("body").for_hop(crate::Hop::HeldRequest);
            raw.headers.insert(headers::REPLY_CONTEXT, "sealed");
            raw.headers.insert(headers::X_FIRST_DEATH_REASON, reason);
            raw.headers.insert(headers::X_FIRST_DEATH_QUEUE, queue);
            raw
        };
        assert!(is_lapsed_held_copy(
            &held("expired", "tg.svc.orders"),
            &names
        ));
        assert!(is_lapsed_held_copy(
            &held("rejected", "tg.svc.orders"),
            &names
        ));
        assert!(!is_lapsed_held_copy(
            &held("delivery_limit", "tg.svc.orders"),
            &names
        ));
        assert!(!is_lapsed_held_copy(&held("expired", "tg.ingress"), &names));
        let durable = held("expired", "tg.svc.orders").for_hop(crate::Hop::Request);
        assert!(!is_lapsed_held_copy(&durable, &names));
        let mut no_call = held("expired", "tg.svc.orders");
        no_call
            .headers
            .retain(|name, _| name != headers::REPLY_CONTEXT);
        assert!(!is_lapsed_held_copy(&no_call, &names));
    }
}
