//! The reply path: a service's reply comes back through the router, which
//! opens the sealed reply context (once per context), translates the reply into the caller's
//! format and schema version, and forwards it to the caller's queue.

use std::sync::Arc;

use bytes::Bytes;

use crate::{
    address::Address,
    dead_letter::DeadLetterBounds,
    envelope::Envelope,
    error::TransportError,
    error_reply::ErrorBody,
    events, headers,
    hop::Hop,
    meters::MessageMeters,
    names::BusNames,
    rejection::{RejectCode, Rejection, Stage},
    reply_context::{ContextId, ReplyContext, ReplyContextKey},
    translate::{Codec, Format},
    transport::{Acker, Delivery, Transport},
};

use super::held::HeldCalls;
use super::live::Current;
use super::used_contexts::{DEFAULT_CAPACITY, Use, UsedContexts};

/// Forwards replies from the replies queue to callers.
pub(super) struct ReplyForwarder {
    /// The live config: replies are translated with its mappings.
    current: Current,
    key: Arc<ReplyContextKey>,
    used: UsedContexts,
    transport: Arc<dyn Transport>,
    names: BusNames,
    bounds: DeadLetterBounds,
    /// The calls this router holds: a forwarded reply releases its call.
    held: Option<Arc<HeldCalls>>,
    /// Counts the forwarded replies.
    meters: Arc<MessageMeters>,
}

/// What becomes of one reply.
enum Outcome {
    /// The context opened, matches, and was not used before.
    Forward(ReplyContext, ContextId),
    /// A second copy of a reply already forwarded (redelivered after its ack
    /// was lost): settled without a second copy to the caller.
    Duplicate,
    /// Forged, altered, expired, for another request, or replayed.
    Refuse(String),
}

impl ReplyForwarder {
    pub(super) fn new(
        current: Current,
        key: Arc<ReplyContextKey>,
        transport: Arc<dyn Transport>,
        names: BusNames,
        bounds: DeadLetterBounds,
        held: Option<Arc<HeldCalls>>,
        meters: Arc<MessageMeters>,
    ) -> Self {
        Self {
            current,
            key,
            used: UsedContexts::new(DEFAULT_CAPACITY),
            transport,
            names,
            bounds,
            held,
            meters,
        }
    }

    /// Forwards one reply; acks once the caller's copy is confirmed (or the
    /// caller is gone, or the reply is refused and dead-lettered). A held
    /// call's ingress is released once its reply is forwarded.
    ///
    /// The delivery is split before the task's future exists, which then
    /// holds its parts once (see [`Pipeline::handle`](super::pipeline::Pipeline::handle)).
    pub(super) fn forward(
        self: Arc<Self>,
        delivery: Delivery,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (reply, info, acker) = delivery.into_parts();
        self.forward_parts(reply, info.redelivered, acker)
    }

    async fn forward_parts(self: Arc<Self>, reply: Envelope, redelivered: bool, acker: Acker) {
        let result = match self.check(&reply, redelivered) {
            Outcome::Forward(context, id) => {
                let sent = self.send(&reply, &context).await;
                match (&sent, &self.held) {
                    (Ok(()), Some(held)) if context.held => held.replied(&id),
                    (Err(_), Some(held)) if context.held => held.unclaim(&id),
                    (Err(_), _) => self.used.forget(&id),
                    (Ok(()), _) => {}
                }
                sent
            }
            Outcome::Duplicate => {
                events::reply("duplicate");
                Ok(())
            }
            Outcome::Refuse(why) => Box::pin(self.dead_letter(&reply, &why)).await,
        };
        let settled = super::ack_or_requeue(acker, result, &reply.id, "Reply not forwarded").await;
        if let Err(e) = settled {
            tracing::debug!(msg.id = %reply.id, error = %e, "Settling a reply failed; it will be redelivered.");
        }
    }

    /// Opens the reply's context and checks that the reply answers the
    /// request the context was sealed for, once: a held call's reply while
    /// this router holds the call (no record of its context is kept beyond
    /// the hold), any other reply by the set of used contexts.
    fn check(&self, reply: &Envelope, redelivered: bool) -> Outcome {
        let Some(sealed) = reply.headers.get_str(headers::REPLY_CONTEXT) else {
            return Outcome::Refuse("reply without a reply context".into());
        };
        let (context, id) = match self.key.open(sealed) {
            Ok(opened) => opened,
            Err(e) => return Outcome::Refuse(e.to_string()),
        };
        if reply.correlation_id.as_deref() != Some(context.correlation_id.as_str()) {
            return Outcome::Refuse(
                "the reply's correlation id is not the one of the request its context was sealed for"
                    .into(),
            );
        }
        if context.held {
            return match &self.held {
                Some(held) if held.claim(&id) => Outcome::Forward(context, id),
                // Forwarded already, its ack lost: settled, not sent twice.
                _ if redelivered => Outcome::Duplicate,
                _ => Outcome::Refuse(
                    "the held call this reply answers is not held here: answered already \
                     (a replay), or its hold ended (a late reply; the request is served again)"
                        .into(),
                ),
            };
        }
        match self.used.first_use(id, context.expires_at) {
            Use::First => Outcome::Forward(context, id),
            Use::Again if redelivered => Outcome::Duplicate,
            Use::Again => Outcome::Refuse("reply context already used".into()),
        }
    }

    async fn send(&self, reply: &Envelope, context: &ReplyContext) -> Result<(), TransportError> {
        let mut out = match self.translate(reply, context) {
            Ok(out) => out,
            Err(rejection) => {
                tracing::warn!(service = %context.service, reason = %rejection.reason, "Reply cannot be translated.");
                ErrorBody::from_rejection(&rejection).reply_to(reply)
            }
        };
        // The caller's queue dies with the caller: a reply needs no disk.
        out.delivery_mode = Hop::Reply.delivery_mode();
        match self
            .transport
            .publish(&Address::queue(context.caller_reply_to.as_str()), &out)
            .await
        {
            Ok(()) => {
                self.meters.reply_forwarded();
                Ok(())
            }
            Err(TransportError::Unroutable { .. }) => {
                tracing::info!(reply_to = %context.caller_reply_to, "Caller's reply queue is gone; reply dropped.");
                events::reply("caller_gone");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The reply as the caller will see it: an error reply passes as is, a
    /// normal reply is translated to the caller's codec and schema version.
    fn translate(&self, reply: &Envelope, context: &ReplyContext) -> Result<Envelope, Rejection> {
        let correlation = reply.correlation_id.clone().unwrap_or_default();
        if let Some(code) = reply.headers.get_str(headers::ERROR) {
            let mut out = Envelope::new(reply.payload.clone()).with_correlation_id(correlation);
            out.content_type = reply.content_type.clone();
            out.headers.insert(headers::ERROR, code);
            return Ok(out);
        }
        let format = |ct: &str, version: &str| {
            Codec::from_content_type(ct)
                .map(|codec| Format {
                    codec,
                    schema_version: version.to_owned(),
                })
                .ok_or_else(|| Rejection::bad_payload(format!("unsupported content type `{ct}`")))
        };
        let service_type = reply
            .content_type
            .as_deref()
            .unwrap_or(&context.service_content_type);
        let service = format(service_type, &context.service_version)?;
        let caller = format(&context.caller_content_type, &context.caller_version)?;
        let translator = Arc::clone(&self.current.load().translator);
        let payload: Bytes =
            translator.reply(&context.service, &reply.payload, &service, &caller)?;
        Ok(Envelope::new(payload)
            .with_correlation_id(correlation)
            .with_content_type(context.caller_content_type.as_str()))
    }

    async fn dead_letter(&self, reply: &Envelope, why: &str) -> Result<(), TransportError> {
        let rejection = Rejection::new(RejectCode::NotFromBus, Stage::Route, why);
        tracing::warn!(target: events::AUDIT_TARGET, reason = why, msg.id = %reply.id, "Reply refused.");
        events::reply("refused");
        let copy = super::reject::dead_letter(reply, None, "-", &rejection, &self.bounds);
        super::reject::publish_dead_letter(self.transport.as_ref(), &self.names, &copy).await
    }
}
