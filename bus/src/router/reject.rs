//! Refusing a message: exactly one error reply to the caller (when it has a
//! valid `reply_to`) and exactly one copy in the dead-letter queue, both
//! confirmed before the ingress is acked.

use crate::{
    address::Address, chain::Facts, envelope::Envelope, error::TransportError,
    error_reply::ErrorBody, events::MessageRejected, headers, names::BusNames,
    rejection::Rejection, transport::Transport,
};

/// Sends the error reply and the dead-letter copy. Errors only for a transport
/// failure (the message is then requeued); a caller whose reply queue is gone
/// gets no reply, which is logged.
pub(super) async fn refuse(
    transport: &dyn Transport,
    names: &BusNames,
    refused: &Envelope,
    facts: &Facts,
    rejection: &Rejection,
) -> Result<(), TransportError> {
    MessageRejected {
        code: rejection.code,
        stage: rejection.stage,
        route: facts.route_str(),
        consumer: facts.consumer(),
        message_id: &refused.id,
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
                tracing::info!(reply_to = %reply_to, "Caller's reply queue is gone; no error reply.");
            }
            Err(e) => return Err(e),
        }
    }
    let copy = dead_letter(
        refused,
        facts.reply_to.as_deref(),
        facts.route_str(),
        rejection,
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

/// The dead-letter copy: the refused message with its `reply_to`, without its
/// credential and without the bus's own credentials (an assertion, a reply
/// context: a message refused at delivery was already stamped), with the
/// code, stage, reason and route of the refusal.
///
/// A message refused at delivery was translated: its copy is the same
/// request in the service's format, which the router accepts again as it is.
pub(super) fn dead_letter(
    refused: &Envelope,
    reply_to: Option<&str>,
    route: &str,
    rejection: &Rejection,
) -> Envelope {
    let mut copy = refused.clone();
    copy.reply_to = reply_to.map(str::to_owned);
    // The only record of a refusal: kept on disk whatever the sender chose.
    copy.delivery_mode = crate::Hop::DeadLetter.delivery_mode();
    copy.headers.retain(|name, _| {
        !name.eq_ignore_ascii_case(headers::AUTHORIZATION)
            && name != headers::ASSERTION
            && name != headers::REPLY_CONTEXT
            && name != headers::REPLY_KEY
    });
    copy.headers.insert(headers::CODE, rejection.code.as_str());
    copy.headers
        .insert(headers::STAGE, rejection.stage.as_str());
    copy.headers
        .insert(headers::REASON, rejection.reason.as_str());
    copy.headers.insert(headers::ROUTE, route);
    if let Err(e) = copy.check_wire() {
        // The original headers cannot be sent again (a hostile table): keep the
        // copy deliverable with the verdict alone, so it is never requeued forever.
        copy.headers.retain(|name, _| headers::is_reserved(name));
        copy.headers.insert(headers::HEADERS_DROPPED, e.to_string());
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header_map::Headers;

    #[test]
    fn a_copy_whose_headers_cannot_be_sent_keeps_only_the_verdict() {
        let deep = (0..40).fold(crate::HeaderValue::Void, |v, _| {
            crate::HeaderValue::Array(vec![v])
        });
        let original = Envelope::new("{}").with_headers(Headers::new().with("deep", deep));
        let copy = dead_letter(
            &original,
            None,
            "orders.create",
            &Rejection::forbidden("no"),
        );
        assert_eq!(copy.check_wire(), Ok(()));
        assert!(copy.headers.get_str(headers::HEADERS_DROPPED).is_some());
        assert_eq!(copy.headers.get_str(headers::CODE), Some("forbidden"));
    }

    #[test]
    fn the_dead_letter_copy_has_no_credential_and_says_why() {
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
