//! The reply path: a service's reply comes back through the router, which
//! checks the signed reply context, translates the reply into the caller's
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
    names::BusNames,
    rejection::{RejectCode, Rejection, Stage},
    reply_context::{ReplyContext, ReplyContextKey},
    translate::{Codec, Format, Translator},
    transport::{Delivery, Transport},
};

/// Forwards replies from the replies queue to callers.
pub(super) struct ReplyForwarder {
    translator: Arc<Translator>,
    key: ReplyContextKey,
    transport: Arc<dyn Transport>,
    names: BusNames,
    bounds: DeadLetterBounds,
}

impl ReplyForwarder {
    pub(super) fn new(
        translator: Arc<Translator>,
        key: ReplyContextKey,
        transport: Arc<dyn Transport>,
        names: BusNames,
        bounds: DeadLetterBounds,
    ) -> Self {
        Self {
            translator,
            key,
            transport,
            names,
            bounds,
        }
    }

    /// Forwards one reply; acks once the caller's copy is confirmed (or the
    /// caller is gone, or the reply is refused and dead-lettered).
    pub(super) async fn forward(&self, delivery: Delivery) {
        let (reply, _, acker) = delivery.into_parts();
        let result = match reply
            .headers
            .get_str(headers::REPLY_CONTEXT)
            .map(|c| self.key.verify(c))
        {
            Some(Ok(context)) => self.send(&reply, &context).await,
            Some(Err(e)) => self.dead_letter(&reply, &e.to_string()).await,
            None => {
                self.dead_letter(&reply, "reply without a reply context")
                    .await
            }
        };
        let settled = match result {
            Ok(()) => acker.ack().await,
            Err(e) => {
                tracing::warn!(msg.id = %reply.id, error = %e, "Reply not forwarded; requeued.");
                tokio::time::sleep(super::REQUEUE_BACKOFF).await;
                acker.reject(true).await
            }
        };
        if let Err(e) = settled {
            tracing::debug!(msg.id = %reply.id, error = %e, "Settling a reply failed; it will be redelivered.");
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
                events::reply("forwarded");
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
        let payload: Bytes =
            self.translator
                .reply(&context.service, &reply.payload, &service, &caller)?;
        Ok(Envelope::new(payload)
            .with_correlation_id(correlation)
            .with_content_type(context.caller_content_type.as_str()))
    }

    async fn dead_letter(&self, reply: &Envelope, why: &str) -> Result<(), TransportError> {
        let rejection = Rejection::new(RejectCode::NotFromBus, Stage::Route, why);
        tracing::warn!(audit = true, msg.id = %reply.id, reason = why, "Reply refused.");
        events::reply("refused");
        let copy = super::reject::dead_letter(reply, None, "-", &rejection, &self.bounds);
        super::reject::publish_dead_letter(self.transport.as_ref(), &self.names, &copy).await
    }
}
