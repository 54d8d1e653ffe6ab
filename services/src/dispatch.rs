//! One delivery from admission to settlement: guard, handler, reply, ack.
//!
//! * Refused by the guard: an error reply (only to a `reply_to` the router
//!   could have set), a sanitized copy in the dead-letter queue, then an ack
//!   (see [`crate::refuse`]).
//! * Admitted: the handler's reply or error reply, then an ack. A handler
//!   error is an answer, never a retry.
//! * A panic anywhere before settling (in the handler, in decoding its body
//!   or encoding its reply, in the guard): a `handler_failed` reply and a
//!   dead-letter copy, then an ack (see [`crate::panicked`]). The delivery is
//!   settled by [`Dispatcher::handle`], outside the code that may panic, so
//!   no panic leaves it unsettled (which would hold a prefetch slot for good).
//! * The reply cannot be published: reject with requeue; the queue's delivery
//!   limit dead-letters a message that keeps failing.

use std::{panic::AssertUnwindSafe, sync::Arc, time::Duration};

use futures_util::FutureExt;
use tollgate_bus::{
    Address, BusNames, Delivery, Envelope, ErrorBody, ErrorDetail, Headers, Stage, Transport,
    TransportError, dead_letter::DeadLetterBounds, headers, translate::Codec, transport::Acker,
};
use tracing::Instrument;

use crate::{
    error::HandlerError,
    guard::{Admitted, Guard},
    handler::{Handled, Handlers, Incoming, UNKNOWN_METHOD},
    panicked,
};

/// Wait before handing a request back whose reply could not be published.
const REQUEUE_BACKOFF: Duration = Duration::from_millis(200);

/// Everything a delivery needs, shared by the service's tasks.
pub(crate) struct Dispatcher {
    pub(crate) service: String,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) names: BusNames,
    pub(crate) guard: Guard,
    pub(crate) handlers: Handlers,
    pub(crate) codec: Codec,
    /// How much of a refused message its dead-letter copy carries.
    pub(crate) dead_letter_bounds: DeadLetterBounds,
}

/// How a delivery is settled once the service is done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settlement {
    /// Answered or recorded: the broker forgets it.
    Ack,
    /// Not the message's fault (its reply or dead-letter copy could not be
    /// published): handed back to the queue after the back-off.
    Requeue {
        /// Wait before requeueing, so a failing broker is not hammered.
        after: Duration,
    },
    /// Rejected without requeue: the broker dead-letters it, unchanged, to
    /// the routers (a request that outlived its bus assertion while it
    /// waited, which they re-admit: README, "Backlogs older than an
    /// assertion").
    HandBack,
}

impl Dispatcher {
    /// Takes `delivery` through the guard and its handler, replies, and
    /// settles it: always exactly once, whatever panicked on the way.
    pub(crate) async fn handle(self: Arc<Self>, delivery: Delivery) {
        let (envelope, info, acker) = delivery.into_parts();
        let span = tracing::debug_span!(
            "delivery",
            service = %self.service,
            msg.id = %envelope.id,
            redelivered = info.redelivered,
            delivery_count = info.delivery_count,
        );
        async move {
            let settlement = self.settlement_of(&envelope).await;
            settle(acker, settlement, &envelope.id).await;
        }
        .instrument(span)
        .await
    }

    /// Everything up to settling, with any panic on the way caught and
    /// settled as a `handler_failed`; a panic while settling that requeues.
    async fn settlement_of(&self, envelope: &Envelope) -> Settlement {
        let payload = match AssertUnwindSafe(self.process(envelope))
            .catch_unwind()
            .await
        {
            Ok(settlement) => return settlement,
            Err(payload) => payload,
        };
        let what = panicked::message(payload);
        tracing::error!(msg.id = %envelope.id, panic = %what, "Panicked on a delivery; answering handler_failed.");
        match AssertUnwindSafe(self.settle_panicked(envelope))
            .catch_unwind()
            .await
        {
            Ok(settlement) => settlement,
            Err(payload) => {
                let what = panicked::message(payload);
                tracing::error!(msg.id = %envelope.id, panic = %what, "Panicked again while recording the failure; requeueing.");
                Settlement::Requeue {
                    after: crate::refuse::DEAD_LETTER_BACKOFF,
                }
            }
        }
    }

    /// The guard, then a refusal or the handler.
    async fn process(&self, envelope: &Envelope) -> Settlement {
        match self.guard.admit(envelope) {
            Err(refusal) if refusal.outlived => {
                tracing::info!(
                    service = %self.service,
                    msg.id = %envelope.id,
                    "A request outlived its bus assertion while it waited; handed back for re-admission."
                );
                Settlement::HandBack
            }
            Err(refusal) => self.refuse(envelope, &refusal).await,
            Ok(admitted) => self.serve(envelope, admitted).await,
        }
    }

    async fn serve(&self, envelope: &Envelope, admitted: Admitted) -> Settlement {
        let reply_to = self.reply_target(envelope).map(str::to_owned);
        if reply_to.is_none() && envelope.reply_to.is_some() {
            tracing::warn!(
                target: "tollgate::audit",
                route = %admitted.route,
                msg.id = %envelope.id,
                "Not replying to a reply_to that is no queue of the bus.",
            );
        }
        let consumer = admitted.identity.consumer.clone();
        let (id, route) = (envelope.id.clone(), admitted.route.clone());
        let outcome = self.run_handler(envelope, admitted).await;
        if let Err(e) = &outcome {
            tracing::info!(msg.id = %id, %route, %consumer, code = e.code(), "Handler refused.");
        } else {
            tracing::debug!(msg.id = %id, %route, %consumer, "Handled.");
        }
        let Some(reply_to) = reply_to else {
            return Settlement::Ack;
        };
        let reply = match outcome {
            Ok(body) => ok_reply(envelope, body, self.codec),
            Err(e) => error_reply(envelope, detail_of(e)),
        };
        match self
            .transport
            .publish(&Address::queue(&reply_to), &reply)
            .await
        {
            Ok(()) => Settlement::Ack,
            // A router's own replies queue dies with the router: the call it
            // held went back to the ingress queue and comes again.
            Err(TransportError::Unroutable { .. })
                if self.names.is_router_replies_queue(&reply_to) =>
            {
                tracing::info!(msg.id = %id, %reply_to, "The router holding this call is gone; its reply is dropped.");
                Settlement::Ack
            }
            Err(e) => {
                // Not the message's fault: requeue after a back-off, so a missing
                // replies queue is not hammered (on quorum queues the delivery
                // limit also ends a loop; classic queues retry until it heals).
                tracing::warn!(msg.id = %id, error = %e, code = e.code(), "Cannot reply; requeueing.");
                Settlement::Requeue {
                    after: REQUEUE_BACKOFF,
                }
            }
        }
    }

    /// Decodes and runs the handler.
    async fn run_handler(&self, envelope: &Envelope, admitted: Admitted) -> Handled {
        let Some(handler) = self.handlers.get(&admitted.method) else {
            let message = format!("service {} has no method {}", self.service, admitted.method);
            return Err(HandlerError::new(UNKNOWN_METHOD, message));
        };
        let codec = match envelope.content_type.as_deref() {
            None => self.codec,
            Some(ct) => Codec::from_content_type(ct).ok_or_else(|| {
                HandlerError::new(
                    crate::handler::BAD_PAYLOAD,
                    "the content type is not supported",
                )
            })?,
        };
        let incoming = Incoming {
            identity: admitted.identity,
            route: admitted.route,
            method: admitted.method,
            message_id: envelope.id.clone(),
            correlation_id: envelope.correlation_id.clone(),
            headers: public_headers(&envelope.headers),
            payload: envelope.payload.clone(),
            codec,
        };
        // A panic in here unwinds to `settlement_of`.
        handler.call(incoming, self.codec).await
    }

    /// The queue to reply to: the bus's replies queue or a router's own
    /// (only with the reply context the router sets beside it: without one,
    /// the router could forward nothing and would only record the reply as
    /// refused), or the
    /// sender's own queue (direct reply-to, or a caller queue its reply key
    /// opens); never a queue of the bus, of a service or of another caller.
    pub(crate) fn reply_target<'e>(&self, envelope: &'e Envelope) -> Option<&'e str> {
        let reply_to = envelope.reply_to.as_deref()?;
        let key = envelope.headers.get_str(headers::REPLY_KEY);
        let through_router = (reply_to == self.names.replies_queue()
            || self.names.is_router_replies_queue(reply_to))
            && envelope.headers.contains(headers::REPLY_CONTEXT);
        (through_router || self.names.is_own_reply_to(reply_to, key)).then_some(reply_to)
    }
}

/// Acks or requeues `acker` as `settlement` says.
async fn settle(acker: Acker, settlement: Settlement, id: &str) {
    match settlement {
        Settlement::Ack => {
            if let Err(e) = acker.ack().await {
                tracing::debug!(msg.id = %id, error = %e, "Cannot ack; the broker will redeliver.");
            }
        }
        Settlement::Requeue { after } => {
            tokio::time::sleep(after).await;
            if let Err(e) = acker.reject(true).await {
                tracing::debug!(msg.id = %id, error = %e, "Cannot requeue.");
            }
        }
        Settlement::HandBack => {
            if let Err(e) = acker.reject(false).await {
                tracing::debug!(msg.id = %id, error = %e, "Cannot hand back; the broker will redeliver.");
            }
        }
    }
}

pub(crate) fn detail_of(error: HandlerError) -> ErrorDetail {
    ErrorDetail {
        code: error.code().to_owned(),
        stage: Stage::Service.as_str().to_owned(),
        message: error.message().to_owned(),
    }
}

fn ok_reply(request: &Envelope, body: Vec<u8>, codec: Codec) -> Envelope {
    let correlation = request.correlation_id.as_ref().unwrap_or(&request.id);
    // Transient: the replies queue hands it to a router at once, and a reply
    // lost with the broker is covered by the caller's timeout (README).
    let mut reply = Envelope::new(body)
        .with_content_type(codec.content_type())
        .with_correlation_id(correlation.clone())
        .for_hop(tollgate_bus::Hop::Reply);
    copy_reply_context(request, &mut reply);
    reply
}

pub(crate) fn error_reply(request: &Envelope, detail: ErrorDetail) -> Envelope {
    let mut reply = ErrorBody { error: detail }.reply_to(request);
    copy_reply_context(request, &mut reply);
    reply
}

/// The router's opaque reply context goes back verbatim; nothing else of the request's.
fn copy_reply_context(request: &Envelope, reply: &mut Envelope) {
    if let Some(context) = request.headers.get(headers::REPLY_CONTEXT) {
        reply
            .headers
            .insert(headers::REPLY_CONTEXT, context.clone());
    }
}

/// The request's headers without the credential and the assertion.
fn public_headers(all: &Headers) -> Headers {
    let mut kept = all.clone();
    kept.retain(|name, _| {
        !name.eq_ignore_ascii_case(headers::AUTHORIZATION)
            && !name.eq_ignore_ascii_case(headers::ASSERTION)
    });
    kept
}
