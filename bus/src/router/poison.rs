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
//!
//! The queue also keeps what the AMQP transport rescued: a message the
//! broker returned as unroutable whose return lapin gave to another
//! publish's confirm, so its own publish was told "delivered"
//! (`transport::amqp::returns`, marked [`headers::RETURNED`]). A request
//! the router had delivered to a service queue that was gone is recorded as
//! refused `no_route` (its caller, already acked, gets no error reply and
//! times out); a dead-letter copy whose queue was gone is recorded again; a
//! reply or answer to a queue that is gone is dropped, as the router drops
//! it when the return reaches its own publish.

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
        let rejection = match Returned::of(&raw, &self.names) {
            None => {
                let mut reason = reason(&raw);
                if hand_back == Some(HandBack::Unvouched) {
                    reason.push_str(
                        "; not re-admitted: no router of this bus delivered it (a copy put into the queue by another publisher)",
                    );
                }
                let rejection = Rejection::new(RejectCode::DeadLettered, Stage::Broker, reason);
                tracing::warn!(msg.id = %raw.id, reason = %rejection.reason, "The broker dead-lettered a message.");
                rejection
            }
            Some(Returned::ToGoneQueue { queue }) => {
                tracing::info!(msg.id = %raw.id, queue = %queue, "A rescued reply or answer to a queue that is gone; dropped.");
                if let Err(e) = acker.ack().await {
                    tracing::debug!(msg.id = %raw.id, error = %e, "Acking a rescued message failed.");
                }
                return;
            }
            Some(Returned::Refused(rejection)) => {
                tracing::warn!(msg.id = %raw.id, reason = %rejection.reason, "A message returned as unroutable was rescued; recorded as refused.");
                rejection
            }
        };
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

/// A message the AMQP transport rescued into the poison queue.
#[derive(Debug, PartialEq, Eq)]
enum Returned {
    /// Published by queue name to a queue that is gone (a caller's, a
    /// service's control queue): nobody is left to read it.
    ToGoneQueue { queue: String },
    /// A request, or a dead-letter copy, that must stay on record.
    Refused(Rejection),
}

impl Returned {
    /// What `raw` is, if it was rescued. A message the broker dead-lettered
    /// (it carries `x-death`) is never taken for a rescued one, whatever
    /// headers its sender forged.
    fn of(raw: &Envelope, names: &BusNames) -> Option<Self> {
        let because = raw.headers.get_str(headers::RETURNED)?;
        if raw.headers.get(headers::X_DEATH).is_some() {
            return None;
        }
        let exchange = raw
            .headers
            .get_str(headers::RETURNED_EXCHANGE)
            .unwrap_or("");
        let key = raw.headers.get_str(headers::RETURNED_KEY).unwrap_or("");
        let quote = |s| crate::dead_letter::cut(s, QUOTED_BYTES);
        if exchange.is_empty() && key != names.dead_queue() {
            return Some(Self::ToGoneQueue {
                queue: quote(key).to_owned(),
            });
        }
        let reason = format!(
            "returned by the broker ({}) from exchange `{}`, key `{}`",
            quote(because),
            quote(exchange),
            quote(key)
        );
        Some(Self::Refused(if exchange.is_empty() {
            // A dead-letter copy: its verdict headers are the bus's own, stripped
            // with the rest; what it was refused for is in the reason.
            let original = raw.headers.get_str(headers::CODE).unwrap_or("unknown");
            Rejection::new(
                RejectCode::DeadLettered,
                Stage::Broker,
                format!("{reason}, refused as `{}` before", quote(original)),
            )
        } else {
            Rejection::no_route(reason)
        }))
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

    fn rescued(exchange: &str, key: &str) -> Envelope {
        let mut raw = Envelope::new("body");
        raw.headers.insert(headers::RETURNED, "312 NO_ROUTE");
        raw.headers.insert(headers::RETURNED_EXCHANGE, exchange);
        raw.headers.insert(headers::RETURNED_KEY, key);
        raw
    }

    #[test]
    fn a_rescued_request_is_refused_no_route() {
        let names = BusNames::new("tg");
        let raw = rescued(names.deliver_exchange(), "orders");
        let Some(Returned::Refused(rejection)) = Returned::of(&raw, &names) else {
            panic!("not refused");
        };
        assert_eq!(rejection.code, RejectCode::NoRoute);
        assert!(
            rejection.reason.contains("key `orders`"),
            "{}",
            rejection.reason
        );
    }

    #[test]
    fn a_rescued_reply_to_a_gone_queue_is_dropped_and_a_dead_copy_kept() {
        let names = BusNames::new("tg");
        let reply = rescued("", &names.caller_queue("gone"));
        assert!(matches!(
            Returned::of(&reply, &names),
            Some(Returned::ToGoneQueue { .. })
        ));
        let mut copy = rescued("", names.dead_queue());
        copy.headers.insert(headers::CODE, "forbidden");
        let Some(Returned::Refused(rejection)) = Returned::of(&copy, &names) else {
            panic!("not kept");
        };
        assert_eq!(rejection.code, RejectCode::DeadLettered);
        assert!(
            rejection.reason.contains("`forbidden`"),
            "{}",
            rejection.reason
        );
    }

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

    #[test]
    fn a_broker_dead_letter_is_never_taken_for_a_rescued_message() {
        let names = BusNames::new("tg");
        let mut forged = rescued("", &names.caller_queue("victim"));
        forged.headers.insert(headers::X_DEATH, "rejected");
        assert_eq!(Returned::of(&forged, &names), None);
        assert_eq!(Returned::of(&Envelope::new("plain"), &names), None);
    }
}
