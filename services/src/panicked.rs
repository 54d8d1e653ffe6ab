//! Settling a delivery whose processing panicked: in its handler, in decoding
//! its body or encoding its reply, in the guard.
//!
//! A panic is the service's fault, not the message's, but retrying would
//! most likely panic again: the delivery is answered like a handler failure
//! (an error reply `handler_failed`, only to a `reply_to` the router could
//! have set), recorded as a sanitized copy in `<ns>.dead` with code
//! `handler_failed` (so an operator can see and replay what crashed the
//! handler), then acked. If the copy cannot be published, it is requeued
//! after a back-off, as a refusal is ([`crate::refuse`]).
//!
//! The panic's payload is dropped under `catch_unwind` too: a payload whose
//! `Drop` panics must not unwind past the settlement either.
//!
//! Built with `panic = "abort"`, nothing here runs: the process ends, and the
//! broker redelivers its unsettled deliveries to the next instance.

use std::{any::Any, panic::AssertUnwindSafe};

use tollgate_bus::{Address, Envelope, ErrorDetail, RejectCode, Rejection, Stage};

use crate::{
    dispatch::{Dispatcher, Settlement, error_reply},
    handler::HANDLER_FAILED,
};

/// What the caller's error reply says.
const ANSWER: &str = "the handler failed";

impl Dispatcher {
    /// Answers `handler_failed` and dead-letters a delivery whose processing panicked.
    pub(crate) async fn settle_panicked(&self, envelope: &Envelope) -> Settlement {
        let reply_to = self.reply_target(envelope);
        if let Some(reply_to) = reply_to {
            let detail = ErrorDetail {
                code: HANDLER_FAILED.to_owned(),
                stage: Stage::Service.as_str().to_owned(),
                message: ANSWER.to_owned(),
            };
            let reply = error_reply(envelope, detail);
            if let Err(e) = self
                .transport
                .publish(&Address::queue(reply_to), &reply)
                .await
            {
                tracing::warn!(msg.id = %envelope.id, error = %e, "Cannot send the handler_failed reply.");
            }
        }
        let rejection = Rejection::new(
            RejectCode::HandlerFailed,
            Stage::Service,
            "the service panicked on this message",
        );
        self.dead_letter(envelope, reply_to, &rejection).await
    }
}

/// The panic's message (empty when it is no string), with the payload dropped
/// safely: a panic in its `Drop` is caught, and that second payload leaked.
pub(crate) fn message(payload: Box<dyn Any + Send>) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    if let Err(again) = std::panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        tracing::error!("A panic's payload panicked when dropped; leaking it.");
        std::mem::forget(again);
    }
    what
}

#[cfg(test)]
mod tests {
    use super::*;

    struct PanicsOnDrop;

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("dropped");
        }
    }

    #[test]
    fn tells_a_string_payload() {
        assert_eq!(message(Box::new("boom")), "boom");
        assert_eq!(message(Box::new(String::from("bang"))), "bang");
        assert_eq!(message(Box::new(7_u8)), "");
    }

    #[test]
    fn survives_a_payload_that_panics_when_dropped() {
        assert_eq!(message(Box::new(PanicsOnDrop)), "");
    }
}
