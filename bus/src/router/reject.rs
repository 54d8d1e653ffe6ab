//! Refusing a message: exactly one error reply to the caller (when it has a
//! valid `reply_to`) and exactly one copy in the dead-letter queue, both
//! confirmed before the ingress is acked.

use crate::{
    address::Address, chain::Context, envelope::Envelope, error::TransportError,
    error_reply::ErrorBody, events::MessageRejected, headers, names::BusNames,
    rejection::Rejection, transport::Transport,
};

/// Sends the error reply and the dead-letter copy. Errors only for a transport
/// failure (the message is then requeued); a caller whose reply queue is gone
/// gets no reply, which is logged.
pub(super) async fn refuse(
    transport: &dyn Transport,
    names: &BusNames,
    original: &Envelope,
    cx: &Context,
    rejection: &Rejection,
) -> Result<(), TransportError> {
    MessageRejected {
        code: rejection.code,
        stage: rejection.stage,
        route: cx.route_str(),
        consumer: cx.identity.as_ref().map(|i| i.consumer.as_str()),
        message_id: &original.id,
        reason: &rejection.reason,
    }
    .emit();
    if let Some(reply_to) = &cx.caller_reply_to {
        let reply = ErrorBody::from_rejection(rejection).reply_to(original);
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
    transport
        .publish(
            &Address::queue(names.dead_queue()),
            &dead_letter(original, cx.route_str(), rejection),
        )
        .await
}

/// The dead-letter copy: the original message, its credential removed, with
/// the code, stage, reason and route of the refusal.
pub(super) fn dead_letter(original: &Envelope, route: &str, rejection: &Rejection) -> Envelope {
    let mut copy = original.clone();
    copy.identity = None;
    // The only record of a refusal: kept on disk whatever the sender chose.
    copy.delivery_mode = crate::DeliveryMode::Persistent;
    copy.headers
        .retain(|name, _| !name.eq_ignore_ascii_case(headers::AUTHORIZATION));
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
    use crate::{chain::AuthMode, header_map::Headers};

    #[test]
    fn a_copy_whose_headers_cannot_be_sent_keeps_only_the_verdict() {
        let deep = (0..40).fold(crate::HeaderValue::Void, |v, _| {
            crate::HeaderValue::Array(vec![v])
        });
        let original = Envelope::new("{}").with_headers(Headers::new().with("deep", deep));
        let cx = Context::new("orders.create", AuthMode::Gateway);
        let copy = dead_letter(&original, cx.route_str(), &Rejection::forbidden("no"));
        assert_eq!(copy.check_wire(), Ok(()));
        assert!(copy.headers.get_str(headers::HEADERS_DROPPED).is_some());
        assert_eq!(copy.headers.get_str(headers::CODE), Some("forbidden"));
    }

    #[test]
    fn the_dead_letter_copy_has_no_credential_and_says_why() {
        let original = Envelope::new("{}").with_headers(
            Headers::new()
                .with("Authorization", "Bearer secret")
                .with("authorization", "Bearer x"),
        );
        let cx = Context::new("orders.create", AuthMode::Gateway);
        let copy = dead_letter(&original, cx.route_str(), &Rejection::forbidden("no"));
        assert!(
            copy.headers
                .iter()
                .all(|(n, _)| !n.eq_ignore_ascii_case("authorization"))
        );
        assert_eq!(copy.headers.get_str(headers::CODE), Some("forbidden"));
        assert_eq!(copy.headers.get_str(headers::STAGE), Some("authorize"));
        assert_eq!(copy.headers.get_str(headers::ROUTE), Some("orders.create"));
        assert_eq!(copy.id, original.id);
    }
}
