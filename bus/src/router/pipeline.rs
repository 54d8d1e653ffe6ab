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
    events::{Entry, MessageDelivered, MessageRequeued},
    headers,
    hop::Hop,
    jwks::RemoteKeys,
    meters::{MessageMeters, TimedStage},
    names::BusNames,
    rejection::{RejectCode, Rejection, Stage},
    transport::{Acker, Delivery, DeliveryInfo, Transport},
    trust::{TRUST_SERVICE, TrustService, is_router_route},
};

use super::{
    REQUEUE_BACKOFF,
    held::{HeldCall, Hold, HoldEnd, Holding},
    live::Current,
    reject,
};

/// Runs ingress messages through the gate and settles them.
pub(super) struct Pipeline {
    /// The live config; each message's gate runs on one snapshot of it.
    pub(super) current: Current,
    /// Remote key sets, asked again when a token names an unknown `kid`.
    pub(super) remote: Arc<RemoteKeys>,
    pub(super) transport: Arc<dyn Transport>,
    pub(super) names: BusNames,
    /// How much of a refused message its dead-letter copy carries.
    pub(super) bounds: DeadLetterBounds,
    /// Asks the central auth service (when a route is in central mode).
    pub(super) central: Option<Arc<CentralAuth>>,
    /// Answers the router's own routes (`tollgate.trust.*`).
    pub(super) trust: Arc<TrustService>,
    /// Holds calls until their reply (`None`: every request is delivered
    /// durably and its ingress acked on the confirm).
    pub(super) holding: Option<Holding>,
    /// The stage histograms and delivered counters.
    pub(super) meters: Arc<MessageMeters>,
}

/// What became of a message the gate passed or refused.
pub(super) enum Outcome<'p> {
    /// Delivered, confirmed by the broker: ack the ingress.
    Delivered,
    /// Delivered as a held call: ack the ingress once its reply passed.
    Held(HeldCall<'p>),
    /// Refused; the dead-letter copy (and error reply) are confirmed.
    Refused(Rejection),
}

impl Pipeline {
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
        let started = crate::meters::Instant::now();
        let answer = match gate.authenticate.central_token(envelope) {
            Ok(token) => Box::pin(central.introspect(&token)).await,
            Err(rejection) => Err(rejection),
        };
        self.meters.record_since(TimedStage::Introspect, started);
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
            Box::pin(self.remote.on_unknown_kid(&miss)).await;
        }
    }

    /// Handles one delivery; the ingress is acked only once the delivery, or
    /// the refusal (error reply and dead-letter copy), is confirmed — or, for
    /// a held call, once its reply has passed the router.
    ///
    /// Every delivery runs this in a task of its own, whose size is that of
    /// the largest path through it: the paths a delivered message does not
    /// take (refusal, requeue, give-back, introspection, key refetch, trust
    /// answers) are boxed where they are awaited, and the delivery is split
    /// here, before the task's future exists, so that the future holds its
    /// parts once (an `async` wrapper around [`Pipeline::settle`] held the
    /// delivery, then its parts, then their copy in the span's block: 2.0 KB
    /// a task, instead of 1.5).
    pub(super) fn handle(
        self: Arc<Self>,
        delivery: Delivery,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (mut envelope, info, acker) = delivery.into_parts();
        // Every message the bus handles has an id: logs, the dead-letter copy
        // and the assertion (bound to it) need one even when the client sent none.
        if envelope.id.is_empty() {
            envelope.id = uuid::Uuid::new_v4().to_string();
        }
        // Every line about a message names it (`msg.id`) itself; the span
        // that adds its correlation id and route to every line logged
        // beneath it is a debug one: at `info`, creating, entering and
        // closing it cost about 2 µs a message, a tenth of the router's CPU.
        let span = tracing::debug_span!(
            "message",
            msg.id = %envelope.id,
            corr.id = envelope.correlation_id.as_deref().unwrap_or("-"),
            route = %info.routing_key,
            redelivered = info.redelivered,
        );
        self.settle(envelope, info, acker).instrument(span)
    }

    /// Takes one delivery's message through the gate and settles it (see
    /// [`Pipeline::handle`]).
    async fn settle(self: Arc<Self>, mut envelope: Envelope, info: DeliveryInfo, acker: Acker) {
        if let Some(why) = &info.unreadable {
            let rejection = Rejection::new(
                RejectCode::Unreadable,
                Stage::Limits,
                format!("its AMQP properties cannot be read: {why}"),
            );
            let facts = Facts::default();
            match Box::pin(self.refuse(Entry::Amqp, &envelope, &facts, &rejection)).await {
                Ok(()) => ack(acker, &envelope.id).await,
                Err(e) => Box::pin(requeue(acker, &envelope.id, &e)).await,
            }
            return;
        }
        // A redelivered call may have been held by a router that died or
        // gave up on it: it goes the durable way.
        let may_hold = !info.redelivered;
        match self
            .pass(&mut envelope, &info.routing_key, Entry::Amqp, may_hold)
            .await
        {
            Ok(Outcome::Delivered | Outcome::Refused(_)) => ack(acker, &envelope.id).await,
            Ok(Outcome::Held(call)) => match call.end().await {
                HoldEnd::Replied => ack(acker, &envelope.id).await,
                end @ (HoldEnd::Lapsed | HoldEnd::Stopping | HoldEnd::HandedBack) => {
                    Box::pin(give_back(acker, &envelope.id, end)).await
                }
            },
            Err(e) => Box::pin(requeue(acker, &envelope.id, &e)).await,
        }
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
        match self.pass(envelope, routing_key, entry, false).await? {
            Outcome::Delivered | Outcome::Held(_) => Ok(None),
            Outcome::Refused(rejection) => Ok(Some(rejection)),
        }
    }

    /// As [`Pipeline::run`]; a call may be held (`may_hold`, and room in the
    /// table) instead of delivered durably.
    async fn pass(
        &self,
        envelope: &mut Envelope,
        routing_key: &str,
        entry: Entry,
        may_hold: bool,
    ) -> Result<Outcome<'_>, InfraError> {
        let mut facts = Facts::default();
        // The steps that await use the snapshot current now; the gate runs
        // on the one current then, with no reload in its middle.
        let before = self.current.load();
        self.refetch_keys(&before.gate, envelope, routing_key).await;
        let introspected = self.introspect(&before.gate, envelope, routing_key).await;
        // A call (it names a queue for its reply) is held before the gate,
        // when it may be and there is room, so that its reply context is
        // sealed under the hold and says so. Not one the router answers
        // itself: its answer passes the reply path with no service between.
        let call = envelope.reply_to.is_some() && !is_router_route(routing_key);
        let hold = match &self.holding {
            Some(holding) if may_hold && call => holding.reserve(),
            _ => None,
        };
        let verdict = self.current.with_gate(|live| {
            live.gate.pass(
                envelope,
                routing_key,
                &mut facts,
                introspected,
                hold.as_ref().map(Hold::id),
                &self.meters,
            )
        });
        let verdict = match verdict {
            Verdict::Pass(resolved) => self.deliver(envelope, resolved, entry, hold).await,
            // A refused call leaves the table now, not once its refusal is
            // published: a flood of refusals does not crowd out held calls.
            Verdict::Refused(rejection) => {
                drop(hold);
                Verdict::Refused(rejection)
            }
            Verdict::Failed(e) => {
                drop(hold);
                Verdict::Failed(e)
            }
        };
        match verdict {
            Verdict::Pass(None) => Ok(Outcome::Delivered),
            Verdict::Pass(Some(hold)) => Ok(Outcome::Held(hold)),
            Verdict::Refused(rejection) => {
                if entry != Entry::Amqp {
                    facts.reply_to = None;
                }
                Box::pin(self.refuse(entry, envelope, &facts, &rejection)).await?;
                Ok(Outcome::Refused(rejection))
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
    /// A call held before the gate (`hold`) is delivered as held: its copy is
    /// transient and its reply comes back to this router; otherwise the copy
    /// is persistent and the ingress is acked on its confirm.
    async fn deliver<'p>(
        &'p self,
        envelope: &mut Envelope,
        to: Resolved,
        entry: Entry,
        hold: Option<Hold<'p>>,
    ) -> Verdict<Option<HeldCall<'p>>> {
        let service = &to.target().service;
        if service == TRUST_SERVICE {
            return match Box::pin(self.trust.answer(envelope, to.permit())).await {
                Ok(()) => {
                    self.delivered(entry, &to, &envelope.id);
                    Verdict::Pass(None)
                }
                Err(e) => Verdict::Failed(e.into()),
            };
        }
        let address = Address::new(self.names.deliver_exchange(), service.as_str());
        // Only a call whose context the gate sealed (under the hold) is held;
        // any other message drops the hold taken for it.
        let hold = match (&self.holding, hold) {
            (Some(holding), Some(hold)) if envelope.headers.contains(headers::REPLY_CONTEXT) => {
                Some(holding.hold(envelope, hold))
            }
            _ => None,
        };
        if hold.is_none() {
            // The ingress is acked once this confirm is in: the copy must survive a restart.
            envelope.delivery_mode = Hop::Request.delivery_mode();
            envelope.expiration = None;
        }
        // The broker vouches for it: a router delivered it (re-admission trusts
        // nothing else; a copy from anyone else cannot name this user).
        envelope.user_id = self.transport.user().map(str::to_owned);
        let started = crate::meters::Instant::now();
        let published = self.transport.publish(&address, envelope).await;
        self.meters.record_since(TimedStage::Deliver, started);
        match published {
            Ok(()) => {
                self.delivered(entry, &to, &envelope.id);
                Verdict::Pass(hold)
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

    /// The access line and count of a message handed to its service (or
    /// answered by the router's own trust routes).
    fn delivered(&self, entry: Entry, to: &Resolved, message_id: &str) {
        MessageDelivered {
            entry,
            route: to.permit().route().as_str(),
            consumer: to.permit().identity().map(|i| i.consumer.as_str()),
            message_id,
        }
        .emit(&self.meters);
    }
}

async fn ack(acker: Acker, message_id: &str) {
    if let Err(e) = acker.ack().await {
        // The broker will redeliver it: at-least-once, never lost.
        tracing::warn!(msg.id = %message_id, error = %e, "Ingress ack failed; the message will be redelivered.");
    }
}

/// Gives a held call's ingress back to the queue: it comes again
/// redelivered, and is delivered durably.
async fn give_back(acker: Acker, message_id: &str, end: HoldEnd) {
    tracing::info!(msg.id = %message_id, ended = end.as_str(), "A held call had no reply; its request goes back to the ingress queue.");
    if let Err(e) = acker.reject(true).await {
        tracing::warn!(msg.id = %message_id, error = %e, "Giving a held call back failed; the broker redelivers it anyway.");
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
