//! Refusing a message: exactly one error reply to the caller (when it has a
//! valid `reply_to`) and exactly one copy in the dead-letter queue, both
//! confirmed before the ingress is acked.

use crate::{
    address::Address,
    chain::Facts,
    dead_letter::DeadLetterBounds,
    envelope::Envelope,
    error::TransportError,
    error_reply::ErrorBody,
    events::{Entry, MessageRejected},
    names::BusNames,
    rejection::Rejection,
    transport::Transport,
};

/// Sends the error reply (to `facts.reply_to`, when set) and the dead-letter
/// copy, and writes the audit line labelled with `entry`. Errors only for a
/// transport failure (the message is then requeued); a caller whose reply
/// queue is gone gets no reply, which is logged.
pub(super) async fn refuse(
    entry: Entry,
    transport: &dyn Transport,
    names: &BusNames,
    refused: &Envelope,
    facts: &Facts,
    rejection: &Rejection,
    bounds: &DeadLetterBounds,
) -> Result<(), TransportError> {
    MessageRejected {
        entry,
        code: rejection.code,
        stage: rejection.stage,
        route: facts.route_str(),
        consumer: facts.consumer(),
        message_id: &refused.id,
        correlation_id: refused.correlation_id.as_deref(),
        reason: &rejection.reason,
    }
    .emit();
    if let Some(reply_to) = &facts.reply_to {
        let reply = ErrorBody::from_rejection(rejection).reply_to(refused);
        match transport
            .publish(&Address::queue(reply_to.as_str()), &reply)
            .await
        {
            Ok(()) => {}
            Err(TransportError::Unroutable { .. }) => {
                tracing::info!(msg.id = %refused.id, reply_to = %reply_to, "Caller's reply queue is gone; no error reply.");
            }
            Err(e) => return Err(e),
        }
    }
    let copy = dead_letter(
        refused,
        facts.reply_to.as_deref(),
        facts.route_str(),
        rejection,
        bounds,
    );
    publish_dead_letter(transport, names, &copy).await
}

/// Publishes `copy` to the dead-letter queue. A dead-letter queue that is
/// gone (an operator deleted it) is declared again, with the rest of the bus
/// topology, and the copy published once more: a refusal is never acked
/// without its record, nor requeued for ever for want of a queue.
pub(super) async fn publish_dead_letter(
    transport: &dyn Transport,
    names: &BusNames,
    copy: &Envelope,
) -> Result<(), TransportError> {
    let dead = Address::queue(names.dead_queue());
    match transport.publish(&dead, copy).await {
        Err(TransportError::Unroutable { .. }) => {
            tracing::warn!(
                queue = names.dead_queue(),
                "The dead-letter queue is gone; declaring the bus topology again."
            );
            transport.declare(&crate::bus_topology::core(names)).await?;
            transport.publish(&dead, copy).await
        }
        other => other,
    }
}

/// The dead-letter copy of a refused message (see [`crate::dead_letter`]):
/// the caller's checked `reply_to`, the verdict, and only as much of the
/// message as the bounds allow. A message refused at delivery was
/// translated: its copy is the request in the service's format.
pub(super) use crate::dead_letter::copy_of as dead_letter;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{header_map::Headers, headers};

    #[test]
    fn a_refused_request_s_copy_has_no_credential_and_says_why() {
        let original = Envelope::new("{}").with_headers(
            Headers::new()
                .with("Authorization", "Bearer secret")
                .with("authorization", "Bearer x")
                .with(headers::ASSERTION, "signed-for-this-message")
                .with(headers::REPLY_CONTEXT, "ctx"),
        );
        let copy = dead_letter(
            &original,
            Some("tg.caller.c1"),
            "orders.create",
            &Rejection::forbidden("no"),
            &DeadLetterBounds::default(),
        );
        assert!(
            copy.headers
                .iter()
                .all(|(n, _)| !n.eq_ignore_ascii_case("authorization"))
        );
        assert_eq!(copy.headers.get_str(headers::ASSERTION), None);
        assert_eq!(copy.headers.get_str(headers::REPLY_CONTEXT), None);
        assert_eq!(copy.reply_to.as_deref(), Some("tg.caller.c1"));
        assert_eq!(copy.headers.get_str(headers::CODE), Some("forbidden"));
        assert_eq!(copy.headers.get_str(headers::STAGE), Some("authorize"));
        assert_eq!(copy.headers.get_str(headers::ROUTE), Some("orders.create"));
        assert_eq!(copy.id, original.id);
    }
}
