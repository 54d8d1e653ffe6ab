//! Settling a delivery the guard refused: an error reply (only to a
//! `reply_to` the router could have set), a sanitized, bounded copy in
//! `<ns>.dead` confirmed by the broker, then an ack.
//!
//! The SDK writes the copy itself rather than rejecting the message to the
//! broker's dead-letter exchange, which would keep every header the sender
//! chose: a forged bus header, a table nested thousands deep, and in service
//! mode the caller's `authorization` token. The copy follows the router's
//! rules ([`tollgate_bus::dead_letter`]). If it cannot be published, the
//! message is requeued after [`DEAD_LETTER_BACKOFF`]: never lost, never
//! retried in a tight loop.

use std::time::Duration;

use tollgate_bus::{
    Address, Envelope, ErrorDetail, Rejection, dead_letter, header_map::MAX_NAME_BYTES, headers,
};

use crate::{
    dispatch::{Dispatcher, Settlement},
    guard::Refusal,
};

/// Wait before handing back a refused message whose dead-letter copy could
/// not be published (the dead-letter queue is gone, the broker refused it).
pub(crate) const DEAD_LETTER_BACKOFF: Duration = Duration::from_secs(1);

impl Dispatcher {
    /// Answers and records a delivery the guard refused; says how to settle it.
    pub(crate) async fn refuse(&self, envelope: &Envelope, refusal: &Refusal) -> Settlement {
        let route = self.claimed_route(envelope);
        tracing::warn!(
            target: "tollgate::audit",
            service = %self.service,
            msg.id = %envelope.id,
            route,
            code = refusal.code.as_str(),
            detail = refusal.detail,
            "Refused a message that did not pass the guard.",
        );
        let reply_to = self.reply_target(envelope);
        if let Some(reply_to) = reply_to {
            let detail = ErrorDetail {
                code: refusal.code.as_str().to_owned(),
                stage: refusal.stage.as_str().to_owned(),
                message: refusal.reason.to_owned(),
            };
            let reply = crate::dispatch::error_reply(envelope, detail);
            if let Err(e) = self
                .transport
                .publish(&Address::queue(reply_to), &reply)
                .await
            {
                tracing::warn!(msg.id = %envelope.id, error = %e, "Cannot send the refusal.");
            }
        }
        // The dead-letter queue is read by operators: the detail helps them
        // and is no secret (an error code of the check that failed).
        let rejection = Rejection::new(
            refusal.code,
            refusal.stage,
            format!("{} ({})", refusal.reason, refusal.detail),
        );
        self.dead_letter(envelope, reply_to, &rejection).await
    }

    /// Publishes a sanitized, bounded copy of `envelope` with `rejection` to
    /// `<ns>.dead`: [`Settlement::Ack`] once the broker confirmed it, a
    /// requeue after [`DEAD_LETTER_BACKOFF`] when it cannot be published.
    pub(crate) async fn dead_letter(
        &self,
        envelope: &Envelope,
        reply_to: Option<&str>,
        rejection: &Rejection,
    ) -> Settlement {
        let route = self.claimed_route(envelope);
        let copy = dead_letter::copy_of(
            envelope,
            reply_to,
            route,
            rejection,
            &self.dead_letter_bounds,
        );
        let dead = Address::queue(self.names.dead_queue());
        match self.transport.publish(&dead, &copy).await {
            Ok(()) => Settlement::Ack,
            Err(e) => {
                tracing::warn!(
                    msg.id = %envelope.id,
                    error = %e,
                    code = e.code(),
                    "Cannot dead-letter a message; requeueing.",
                );
                Settlement::Requeue {
                    after: DEAD_LETTER_BACKOFF,
                }
            }
        }
    }

    /// The route the message claims, for the log and the copy, when it names
    /// a method of this service (the sender wrote it: anything else is `-`).
    pub(crate) fn claimed_route<'e>(&self, envelope: &'e Envelope) -> &'e str {
        envelope
            .headers
            .get_str(headers::ROUTE)
            .filter(|route| {
                route.len() <= MAX_NAME_BYTES
                    && route
                        .strip_prefix(self.service.as_str())
                        .and_then(|rest| rest.strip_prefix('.'))
                        .is_some_and(|method| !method.is_empty())
            })
            .unwrap_or("-")
    }
}
