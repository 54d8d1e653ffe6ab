//! One ingress message: gate → deliver (confirmed) → ack; or refuse.

use std::sync::Arc;

use tracing::Instrument;

use crate::{
    address::Address,
    central::CentralAuth,
    chain::{AuthMode, Facts, Gate, InfraError, Introspected, Resolved, Verdict},
    dead_letter::DeadLetterBounds,
    envelope::Envelope,
    error::TransportError,
    events::{self, Entry, MessageDelivered, MessageRequeued},
    hop::Hop,
    jwks::RemoteKeys,
    names::BusNames,
    rejection::{RejectCode, Rejection, Stage},
    transport::{Acker, Delivery, Transport},
    trust::{TRUST_SERVICE, TrustService},
};

use super::{REQUEUE_BACKOFF, live::Current, reject};

/// Runs ingress messages through the gate and settles them.
pub(super) struct Pipeline {
    /// The live config; each message's gate runs on one snapshot of it.
    current: Current,
    /// Remote key sets, asked again when a token names an unknown `kid`.
    remote: Arc<RemoteKeys>,
    transport: Arc<dyn Transport>,
    names: BusNames,
    /// How much of a refused message its dead-letter copy carries.
    bounds: DeadLetterBounds,
    /// Asks the central auth service (when a route is in central mode).
    central: Option<Arc<CentralAuth>>,
    /// Answers the router's own routes (`tollgate.trust.*`).
    trust: Arc<TrustService>,
}

impl Pipeline {
    pub(super) fn new(
        current: Current,
        remote: Arc<RemoteKeys>,
        transport: Arc<dyn Transport>,
        names: BusNames,
        bounds: DeadLetterBounds,
        central: Option<Arc<CentralAuth>>,
        trust: Arc<TrustService>,
    ) -> Self {
        Self {
            current,
            remote,
            transport,
            names,
            bounds,
            central,
            trust,
        }
    }

    /// A central-mode message's answer from the central auth service (awaited
    /// here, since no step of the gate awaits); `None` on other routes.
    async fn introspect(
        &self,
        gate: &Gate,
        envelope: &Envelope,
        routing_key: &str,
    ) -> Option<Introspected> {
        if gate.modes.mode_for(routing_key) != AuthMode::Central {
            return None;
        }
        let central = self.central.as_ref()?;
        let started = std::time::Instant::now();
        let answer = match gate.authenticate.central_token(envelope) {
            Ok(token) => central.introspect(&token).await,
            Err(rejection) => Err(rejection),
        };
        events::stage_timing("introspect", started.elapsed());
        Some(answer)
    }

    /// On a gateway-mode route, when the token names a `kid` nobody holds and
    /// some consumer has a remote key set: fetches it again (rate-limited)
    /// before the gate verifies the token, so a freshly rotated key is
    /// accepted on its first message.
    async fn refetch_keys(&self, gate: &Gate, envelope: &Envelope, routing_key: &str) {
        if self.remote.is_empty() || gate.modes.mode_for(routing_key) != AuthMode::Gateway {
            return;
        }
        let Ok(token) = gate.authenticate.central_token(envelope) else {
            return;
        };
        if let Some(miss) = gate.authenticate.verifier().unknown_kid(&token) {
            self.remote.on_unknown_kid(&miss).await;
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
            match self
                .run(&mut envelope, &info.routing_key, Entry::Amqp)
                .await
            {
                Ok(_) => ack(acker, &envelope.id).await,
                Err(e) => requeue(acker, &envelope.id, &e).await,
            }
        }
        .instrument(span)
        .await;
    }

    /// Takes `envelope`, sent to `routing_key` through `entry`, through the
    /// gate, then delivers it (`Ok(None)`, once the broker confirmed) or
    /// refuses it (`Ok(Some(rejection))`, once the dead-letter copy and, for
    /// the AMQP entry, the error reply to its `reply_to` are confirmed).
    /// Another entry answers a refusal itself (an HTTP status), so its
    /// refusal gets no error reply on the bus. Errors for the
    /// infrastructure's fault: nothing was delivered.
    pub(super) async fn run(
        &self,
        envelope: &mut Envelope,
        routing_key: &str,
        entry: Entry,
    ) -> Result<Option<Rejection>, InfraError> {
        let mut facts = Facts::default();
        // The steps that await use the snapshot current now; the gate runs
        // on the one current then, with no reload in its middle.
        let before = self.current.load();
        self.refetch_keys(&before.gate, envelope, routing_key).await;
        let introspected = self.introspect(&before.gate, envelope, routing_key).await;
        let verdict = self.current.with_gate(|live| {
            live.gate
                .pass(envelope, routing_key, &mut facts, introspected)
        });
        let verdict = match verdict {
            Verdict::Pass(resolved) => self.deliver(envelope, resolved, entry).await,
            Verdict::Refused(rejection) => Verdict::Refused(rejection),
            Verdict::Failed(e) => Verdict::Failed(e),
        };
        match verdict {
            Verdict::Pass(()) => Ok(None),
            Verdict::Refused(rejection) => {
                if entry != Entry::Amqp {
                    facts.reply_to = None;
                }
                self.refuse(entry, envelope, &facts, &rejection).await?;
                Ok(Some(rejection))
            }
            Verdict::Failed(e) => Err(e),
        }
    }

    /// Records a refusal of `envelope` decided before the gate (an entry's
    /// own check, such as an HTTP body past the size limit): the audit line
    /// and the dead-letter copy, as for a refusal by the gate.
    pub(super) async fn refuse(
        &self,
        entry: Entry,
        envelope: &Envelope,
        facts: &Facts,
        rejection: &Rejection,
    ) -> Result<(), InfraError> {
        reject::refuse(
            entry,
            self.transport.as_ref(),
            &self.names,
            envelope,
            facts,
            rejection,
            &self.bounds,
        )
        .await
        .map_err(InfraError::from)
    }

    /// Publishes the admitted message to its service and waits for the
    /// broker's confirm; only a [`Resolved`] target can be delivered to.
    async fn deliver(&self, envelope: &mut Envelope, to: Resolved, entry: Entry) -> Verdict<()> {
        let service = &to.target().service;
        if service == TRUST_SERVICE {
            return match self.trust.answer(envelope, to.permit()).await {
                Ok(()) => {
                    delivered(entry, &to, &envelope.id);
                    Verdict::Pass(())
                }
                Err(e) => Verdict::Failed(e.into()),
            };
        }
        let address = Address::new(self.names.deliver_exchange(), service.as_str());
        // The ingress is acked once this confirm is in: the copy must survive a restart.
        envelope.delivery_mode = Hop::Request.delivery_mode();
        let started = std::time::Instant::now();
        let published = self.transport.publish(&address, envelope).await;
        events::stage_timing("deliver", started.elapsed());
        match published {
            Ok(()) => {
                delivered(entry, &to, &envelope.id);
                Verdict::Pass(())
            }
            // Registered, but its queue is gone: the service left between lookup and delivery.
            Err(TransportError::Unroutable { .. }) => Verdict::Refused(Rejection::no_route(
                format!("service `{service}` has no queue"),
            )),
            // Nothing a retry could fix: the message itself cannot be carried.
            Err(TransportError::InvalidHeaders(e)) => Verdict::Refused(Rejection::new(
                RejectCode::TooLarge,
                Stage::Limits,
                format!("cannot be delivered: {e}"),
            )),
            Err(e) => Verdict::Failed(e.into()),
        }
    }
}

/// The access line of a message handed to its service (or answered by the
/// router's own trust routes).
fn delivered(entry: Entry, to: &Resolved, message_id: &str) {
    MessageDelivered {
        entry,
        route: to.permit().route().as_str(),
        consumer: to.permit().identity().map(|i| i.consumer.as_str()),
        message_id,
    }
    .emit();
}

async fn ack(acker: Acker, message_id: &str) {
    if let Err(e) = acker.ack().await {
        // The broker will redeliver it: at-least-once, never lost.
        tracing::warn!(msg.id = %message_id, error = %e, "Ingress ack failed; the message will be redelivered.");
    }
}

async fn requeue(acker: Acker, message_id: &str, error: &InfraError) {
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
