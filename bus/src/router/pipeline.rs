//! One ingress message: chain → deliver (confirmed) → ack; or refuse.

use std::{sync::Arc, time::Duration};

use tracing::Instrument;

use crate::{
    address::Address,
    chain::{AuthModes, Chain, Context},
    envelope::{DeliveryMode, Envelope},
    error::TransportError,
    events::{MessageDelivered, MessageRequeued},
    names::BusNames,
    rejection::{RejectCode, Rejection, Stage},
    transport::{Acker, Delivery, Transport},
};

use super::reject;

/// Wait before handing a message back after an infrastructure failure, so a
/// broken dependency is not hammered.
const REQUEUE_BACKOFF: Duration = Duration::from_millis(200);

/// Runs ingress messages through the chain and settles them.
pub(super) struct Pipeline {
    chain: Chain,
    modes: AuthModes,
    transport: Arc<dyn Transport>,
    names: BusNames,
}

impl Pipeline {
    pub(super) fn new(
        chain: Chain,
        modes: AuthModes,
        transport: Arc<dyn Transport>,
        names: BusNames,
    ) -> Self {
        Self {
            chain,
            modes,
            transport,
            names,
        }
    }

    /// Handles one delivery; the ingress is acked only once the delivery, or
    /// the refusal (error reply and dead-letter copy), is confirmed.
    pub(super) async fn handle(&self, delivery: Delivery) {
        let (mut envelope, info, acker) = delivery.into_parts();
        // Every message the bus handles has an id: logs, the dead-letter copy
        // and the assertion (bound to it) need one even when the client sent none.
        if envelope.id.is_empty() {
            envelope.id = uuid::Uuid::new_v4().to_string();
        }
        let span = tracing::info_span!(
            "message",
            msg.id = %envelope.id,
            corr.id = envelope.correlation_id.as_deref().unwrap_or("-"),
            route = %info.routing_key,
            redelivered = info.redelivered,
        );
        async move {
            let original = envelope.clone();
            let mut cx = Context::new(&info.routing_key, self.modes.mode_for(&info.routing_key));
            let outcome = match self.chain.run(envelope, &mut cx).await {
                Ok(admitted) => self.deliver(admitted, &cx).await,
                Err(rejection) => Err(Outcome::Refused(rejection)),
            };
            let settled = match outcome {
                Ok(()) => Ok(()),
                Err(Outcome::Refused(rejection)) => {
                    reject::refuse(
                        self.transport.as_ref(),
                        &self.names,
                        &original,
                        &cx,
                        &rejection,
                    )
                    .await
                }
                Err(Outcome::Failed(e)) => Err(e),
            };
            match settled {
                Ok(()) => ack(acker, &original.id).await,
                Err(e) => requeue(acker, &original.id, &e).await,
            }
        }
        .instrument(span)
        .await;
    }

    async fn deliver(&self, envelope: Envelope, cx: &Context) -> Result<(), Outcome> {
        let Some(target) = &cx.target else {
            return Err(Outcome::Refused(Rejection::no_route("no target resolved")));
        };
        let to = Address::new(self.names.deliver_exchange(), target.service.clone());
        // The ingress is acked once this confirm is in: the copy must survive a restart.
        let mut envelope = envelope;
        envelope.delivery_mode = DeliveryMode::Persistent;
        match self.transport.publish(&to, &envelope).await {
            Ok(()) => {
                MessageDelivered {
                    route: cx.route_str(),
                    consumer: cx.identity.as_ref().map(|i| i.consumer.as_str()),
                    message_id: &envelope.id,
                }
                .emit();
                Ok(())
            }
            // Registered, but its queue is gone: the service left between lookup and delivery.
            Err(TransportError::Unroutable { .. }) => Err(Outcome::Refused(Rejection::no_route(
                format!("service `{}` has no queue", target.service),
            ))),
            // Nothing a retry could fix: the message itself cannot be carried.
            Err(TransportError::InvalidHeaders(e)) => Err(Outcome::Refused(Rejection::new(
                RejectCode::TooLarge,
                Stage::Limits,
                format!("cannot be delivered: {e}"),
            ))),
            Err(e) => Err(Outcome::Failed(e)),
        }
    }
}

enum Outcome {
    /// The message's fault: refuse it (never retried).
    Refused(Rejection),
    /// The infrastructure's fault: requeue it.
    Failed(TransportError),
}

async fn ack(acker: Acker, message_id: &str) {
    if let Err(e) = acker.ack().await {
        // The broker will redeliver it: at-least-once, never lost.
        tracing::warn!(msg.id = %message_id, error = %e, "Ingress ack failed; the message will be redelivered.");
    }
}

async fn requeue(acker: Acker, message_id: &str, error: &TransportError) {
    MessageRequeued {
        message_id,
        error: error.code(),
    }
    .emit();
    tokio::time::sleep(REQUEUE_BACKOFF).await;
    if let Err(e) = acker.reject(true).await {
        tracing::warn!(msg.id = %message_id, error = %e, "Requeue failed; the broker redelivers the message anyway.");
    }
}
