//! Re-admission of requests that outlived their bus assertion.
//!
//! An assertion lives at most `[auth] assertion_ttl_secs` (≤ 300 s), so a
//! request that waited longer in its service's queue — the service was down,
//! or far behind — reaches the service with an expired assertion. The
//! service rejects such a request without requeueing it (it does not refuse
//! it): the broker dead-letters it, unchanged, into `<ns>.poison`, and the
//! router that takes it from there re-admits it. A request is re-admitted
//! only if:
//!
//! * **the broker vouches that a router delivered it and its service never
//!   took it**: its `user_id` is this router's broker user (RabbitMQ refuses
//!   any other publisher's message that names it, so no copy of a delivery
//!   can carry it), and the broker's latest `x-death` says `rejected` from a
//!   service queue (a message is dead-lettered only if its consumer did not
//!   ack it). This is what closes the replay window: a captured delivery put
//!   back by someone else is never re-admitted, however genuine its
//!   assertion (recorded `dead_lettered`, saying so);
//! * its assertion is genuine as issued: this bus's signature, for the
//!   request's route and message id (else `not_from_bus`), and has expired by
//!   the router's clock (else the service rejected it for another reason:
//!   recorded `dead_lettered`, never sent round again);
//! * it is at most `[router] readmit_max_age_secs` old, counted from when it
//!   first entered the bus: its assertion's `iat`, or for a request
//!   re-admitted before, the [`headers::ADMITTED_AT`] the router put on it
//!   then (else `stale`);
//! * its caller is still trusted — consumer enabled, no revocation covering
//!   it — and the access policy still allows the route (else the code of
//!   what failed).
//!
//! The request then gets a fresh assertion for the same route, message and
//! caller and goes back to its service's queue; the poison message is acked
//! once the broker confirmed that. A refusal is recorded in `<ns>.dead` (no
//! error reply: the request's reply context has expired too). A poison
//! message this router re-admitted already (its ack was lost) is dropped.

use std::{sync::Arc, time::Duration};

use sha2::{Digest, Sha256};
use tollgate_auth::{AssertionSigner, AssertionVerifier, AuthError, Identity, Verifier};

use crate::{
    address::Address,
    dead_letter::DeadLetterBounds,
    envelope::Envelope,
    error::TransportError,
    header_map::HeaderValue,
    headers,
    hop::Hop,
    names::BusNames,
    rejection::{RejectCode, Rejection, Stage},
    reply_context::ContextId,
    time::unix_now,
    transport::{Acker, Transport},
};

use super::{
    live::Current,
    reject,
    used_contexts::{Use, UsedContexts},
};

/// What a router needs to re-admit requests.
pub(super) struct Readmitter {
    pub(super) transport: Arc<dyn Transport>,
    pub(super) names: BusNames,
    pub(super) bounds: DeadLetterBounds,
    /// Checks this bus's assertions as issued.
    pub(super) assertions: AssertionVerifier,
    /// Signs the fresh assertion.
    pub(super) signer: AssertionSigner,
    /// Whether the caller is still trusted.
    pub(super) verifier: Arc<Verifier>,
    /// The live config, whose policy says whether the route is still allowed.
    pub(super) current: Current,
    /// Oldest request re-admitted.
    pub(super) max_age: Duration,
    /// Assertions re-admitted already.
    pub(super) used: UsedContexts,
}

impl Readmitter {
    /// Whether `raw`, taken from the poison queue, is a request its service
    /// handed back — persistent, and the broker's latest `x-death` says
    /// `rejected` from a service queue — and whether the broker vouches that
    /// a router delivered it (the first check of the module's doc). A
    /// vouched one goes to [`Readmitter::readmit`].
    pub(super) fn hand_back(&self, raw: &Envelope) -> Option<HandBack> {
        let rejected_by_service = raw.delivery_mode == crate::envelope::DeliveryMode::Persistent
            && latest_death(raw).is_some_and(|(reason, queue)| {
                reason == "rejected" && self.names.is_service_queue(queue)
            });
        if !rejected_by_service {
            return None;
        }
        Some(if self.vouched(raw) {
            HandBack::Vouched
        } else {
            HandBack::Unvouched
        })
    }

    /// Whether `raw` names this router's broker user: the broker vouches
    /// that a router published it.
    pub(super) fn vouched(&self, raw: &Envelope) -> bool {
        let own = self.transport.user();
        own.is_some() && raw.user_id.as_deref() == own
    }

    /// Re-admits one handed-back request, or records why not; requeues it
    /// after a back-off when the broker cannot take the outcome.
    pub(super) async fn readmit(&self, request: Envelope, acker: Acker) {
        let outcome = match self.check(&request) {
            Ok(Some(readmission)) => {
                let used = readmission.used;
                let delivered = self.deliver(request.clone(), readmission).await;
                if matches!(delivered, Err(Refusal::Failed(_))) {
                    // Requeued: its next attempt is no repeat.
                    self.used.forget(&used);
                }
                delivered
            }
            Ok(None) => {
                tracing::info!(msg.id = %request.id, "A request this router re-admitted already came again; dropped.");
                if let Err(e) = acker.ack().await {
                    tracing::debug!(msg.id = %request.id, error = %e, "Acking a repeated hand-back failed; it will come back.");
                }
                return;
            }
            Err(rejection) => Err(rejection),
        };
        let settled = match outcome {
            Ok(()) => {
                tracing::info!(msg.id = %request.id, "Re-admitted a request that outlived its assertion.");
                crate::events::readmission("readmitted");
                acker.ack().await
            }
            Err(Refusal::Rejected(rejection)) => {
                tracing::warn!(
                    target: "tollgate::audit",
                    code = rejection.code.as_str(),
                    msg.id = %request.id,
                    reason = %rejection.reason,
                    "Re-admission refused."
                );
                crate::events::readmission(rejection.code.as_str());
                self.record(&request, &rejection, acker).await
            }
            Err(Refusal::Failed(e)) => {
                super::ack_or_requeue(acker, Err(e), &request.id, "Cannot re-admit a request now")
                    .await
            }
        };
        if let Err(e) = settled {
            tracing::debug!(msg.id = %request.id, error = %e, "Settling a handed-back request failed; it will come back.");
        }
    }

    /// The checks of the module's doc after the first, in order; if all
    /// pass, what the re-admission needs; `None` if this router re-admitted
    /// it already.
    fn check(&self, request: &Envelope) -> Result<Option<Readmission>, Refusal> {
        let route = request.headers.get_str(headers::ROUTE).unwrap_or_default();
        let assertion = request
            .headers
            .get_str(headers::ASSERTION)
            .unwrap_or_default();
        let asserted = self
            .assertions
            .verify_as_issued(assertion, route, &request.id)
            .map_err(|e| not_from_bus(format!("no genuine bus assertion ({})", e.code())))?;
        if unix_now() < asserted.expires_at {
            return Err(Refusal::Rejected(Rejection::new(
                RejectCode::DeadLettered,
                Stage::Service,
                "its service rejected it before its assertion expired".to_owned(),
            )));
        }
        // The header is a router's own (the broker vouched for the sender, and
        // the gate strips `x-tollgate-*` from callers' requests).
        let entered_at = request
            .headers
            .get(headers::ADMITTED_AT)
            .and_then(HeaderValue::as_i64)
            .and_then(|t| u64::try_from(t).ok())
            .map_or(asserted.issued_at, |t| t.min(asserted.issued_at));
        let age = unix_now().saturating_sub(entered_at);
        if age > self.max_age.as_secs() {
            return Err(Refusal::Rejected(Rejection::new(
                RejectCode::Stale,
                Stage::Route,
                format!(
                    "waited {age} s for its service; the bus re-admits requests up to {} s old",
                    self.max_age.as_secs()
                ),
            )));
        }
        let mut who = asserted.identity;
        self.still_allowed(&who, route)?;
        // The credential was valid when the request entered the bus; the fresh
        // assertion is not cut short by its expiry.
        who.expires_at = None;
        let fresh = self
            .signer
            .sign_for(asserted.alg, &who, route, &request.id)
            .map_err(|e| Refusal::Failed(TransportError::InvalidTopology(e.to_string())))?;
        let (id, until) = (
            assertion_id(assertion),
            entered_at.saturating_add(self.max_age.as_secs()),
        );
        if self.used.first_use(id, until) == Use::Again {
            return Ok(None);
        }
        Ok(Some(Readmission {
            used: id,
            assertion: fresh,
            entered_at,
        }))
    }

    /// The caller is still trusted and the policy still allows `route`.
    fn still_allowed(&self, who: &Identity, route: &str) -> Result<(), Refusal> {
        let policy = Arc::clone(&self.current.load().policy);
        let anonymous = policy
            .anonymous_identity()
            .is_some_and(|a| a.consumer == who.consumer);
        if !anonymous {
            self.verifier
                .still_trusted(who)
                .map_err(|e| Refusal::Rejected(untrusted(&e)))?;
        }
        if !policy.decide(Some(who), route).is_allowed() {
            return Err(Refusal::Rejected(Rejection::new(
                RejectCode::Forbidden,
                Stage::Authorize,
                format!("the policy no longer allows `{route}` for this caller"),
            )));
        }
        Ok(())
    }

    /// Back to the service's queue with the fresh assertion and the time it
    /// first entered the bus.
    async fn deliver(
        &self,
        mut request: Envelope,
        readmission: Readmission,
    ) -> Result<(), Refusal> {
        let route = request.headers.get_str(headers::ROUTE).unwrap_or_default();
        let service = route.split('.').next().unwrap_or_default().to_owned();
        request
            .headers
            .insert(headers::ASSERTION, readmission.assertion);
        request.headers.insert(
            headers::ADMITTED_AT,
            i64::try_from(readmission.entered_at).unwrap_or(i64::MAX),
        );
        // Its queue history is the broker's, not the request's: a next
        // dead-lettering starts afresh.
        request
            .headers
            .retain(|name, _| !headers::is_broker_header(name));
        request.delivery_mode = Hop::Request.delivery_mode();
        request.expiration = None;
        request.user_id = self.transport.user().map(str::to_owned);
        let to = Address::new(self.names.deliver_exchange(), &service);
        match self.transport.publish(&to, &request).await {
            Ok(()) => Ok(()),
            Err(TransportError::Unroutable { .. }) => Err(Refusal::Rejected(Rejection::no_route(
                format!("service `{service}` has no queue"),
            ))),
            Err(e) => Err(Refusal::Failed(e)),
        }
    }

    /// A clean copy in `<ns>.dead`, then the ack; a requeue if it cannot be recorded.
    async fn record(
        &self,
        request: &Envelope,
        rejection: &Rejection,
        acker: Acker,
    ) -> Result<(), TransportError> {
        let route = request.headers.get_str(headers::ROUTE).unwrap_or("-");
        let copy = reject::dead_letter(request, None, route, rejection, &self.bounds);
        let published =
            reject::publish_dead_letter(self.transport.as_ref(), &self.names, &copy).await;
        super::ack_or_requeue(
            acker,
            published,
            &request.id,
            "Cannot record a refused re-admission",
        )
        .await
    }
}

/// What re-admitting one request takes, once its checks passed.
struct Readmission {
    /// The id its presented assertion is now recorded under.
    used: ContextId,
    /// The fresh assertion.
    assertion: String,
    /// When it first entered the bus.
    entered_at: u64,
}

/// A request its service handed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HandBack {
    /// A router of this bus delivered it: re-admitted if the other checks pass.
    Vouched,
    /// Someone else put it into the service's queue: never re-admitted,
    /// recorded like any other message the broker dead-lettered.
    Unvouched,
}

/// Why a request was not re-admitted.
enum Refusal {
    /// The request's fault: recorded, never retried.
    Rejected(Rejection),
    /// The broker's: requeued.
    Failed(TransportError),
}

fn not_from_bus(reason: String) -> Refusal {
    Refusal::Rejected(Rejection::new(
        RejectCode::NotFromBus,
        Stage::Service,
        reason,
    ))
}

/// The refusal of a caller that is no longer trusted.
fn untrusted(e: &AuthError) -> Rejection {
    let code = match e {
        AuthError::TokenRevoked | AuthError::ConsumerDisabled => RejectCode::TokenRevoked,
        _ => RejectCode::InvalidToken,
    };
    Rejection::new(
        code,
        Stage::Authenticate,
        format!("the caller is no longer trusted ({})", e.code()),
    )
}

/// The reason and queue of the broker's latest dead-lettering of `raw`.
fn latest_death(raw: &Envelope) -> Option<(&str, &str)> {
    let latest = headers::latest_death(&raw.headers)?;
    Some((latest.get_str("reason")?, latest.get_str("queue")?))
}

/// A short id of one assertion (its first 12 bytes of SHA-256).
fn assertion_id(assertion: &str) -> ContextId {
    let digest = Sha256::digest(assertion.as_bytes());
    let mut id = ContextId::default();
    let len = id.len();
    id.copy_from_slice(&digest[..len]);
    id
}
