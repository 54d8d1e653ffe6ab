//! Re-admission of requests that outlived their bus assertion.
//!
//! An assertion lives at most `[auth] assertion_ttl_secs` (≤ 300 s), so a
//! request that waited longer in its service's queue — the service was down,
//! or far behind — reaches the service with an expired assertion. The service
//! SDK hands such a request, unchanged, to `<ns>.readmit` instead of refusing
//! it. One router at a time consumes that queue (single active consumer) and
//! re-admits a request only if:
//!
//! * its assertion is genuine as issued: this bus's signature, for the
//!   request's route and message id (else `not_from_bus`);
//! * it is at most `[router] readmit_max_age_secs` old, counted from the
//!   assertion's `iat` (else `stale`);
//! * this very assertion was never re-admitted before (else `not_from_bus`:
//!   a replay of a message that was served already);
//! * its caller is still trusted — consumer enabled, no revocation covering
//!   it — and the access policy still allows the route (else the code of
//!   what failed).
//!
//! The request then gets a fresh assertion for the same route, message and
//! caller and goes back to its service's queue; the hand-back is acked once
//! the broker confirmed that. A refusal is recorded in `<ns>.dead` (no error
//! reply: the request's reply context has expired too). What was re-admitted
//! is remembered until it would be `stale` anyway, by the active router only:
//! after that router fails over, a replay of an assertion it re-admitted
//! could pass once more (README, "Backlogs older than an assertion").

use std::{sync::Arc, time::Duration};

use sha2::{Digest, Sha256};
use tollgate_auth::{AssertionSigner, AssertionVerifier, AuthError, Identity, Verifier};

use crate::{
    address::Address,
    dead_letter::DeadLetterBounds,
    envelope::Envelope,
    error::TransportError,
    headers,
    hop::Hop,
    names::BusNames,
    rejection::{RejectCode, Rejection, Stage},
    reply_context::ContextId,
    time::unix_now,
    transport::{Delivery, Transport},
};

use super::{
    REQUEUE_BACKOFF,
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
    /// Re-admits one handed-back request, or records why not; requeues it
    /// after a back-off when the broker cannot take the outcome.
    pub(super) async fn readmit(&self, delivery: Delivery) {
        let (request, _, acker) = delivery.into_parts();
        let outcome = match self.check(&request) {
            Ok((used, fresh)) => {
                let delivered = self.deliver(request.clone(), fresh).await;
                if matches!(delivered, Err(Refusal::Failed(_))) {
                    // Requeued: its next attempt is no replay.
                    self.used.forget(&used);
                }
                delivered
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
                tracing::warn!(msg.id = %request.id, error = %e, "Cannot re-admit a request now; requeued.");
                tokio::time::sleep(REQUEUE_BACKOFF).await;
                acker.reject(true).await
            }
        };
        if let Err(e) = settled {
            tracing::debug!(msg.id = %request.id, error = %e, "Settling a handed-back request failed; it will come back.");
        }
    }

    /// The checks of the module's doc, in order; if all pass, the id under
    /// which the presented assertion is now recorded as used, and the fresh
    /// assertion.
    fn check(&self, request: &Envelope) -> Result<(ContextId, String), Refusal> {
        let route = request.headers.get_str(headers::ROUTE).unwrap_or_default();
        let assertion = request
            .headers
            .get_str(headers::ASSERTION)
            .unwrap_or_default();
        let asserted = self
            .assertions
            .verify_as_issued(assertion, route, &request.id)
            .map_err(|e| not_from_bus(format!("no genuine bus assertion ({})", e.code())))?;
        let age = unix_now().saturating_sub(asserted.issued_at);
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
            asserted.issued_at.saturating_add(self.max_age.as_secs()),
        );
        if self.used.first_use(id, until) == Use::Again {
            return Err(not_from_bus(
                "this assertion was re-admitted before (a replay)".to_owned(),
            ));
        }
        Ok((id, fresh))
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

    /// Back to the service's queue with the fresh assertion.
    async fn deliver(&self, mut request: Envelope, assertion: String) -> Result<(), Refusal> {
        let route = request.headers.get_str(headers::ROUTE).unwrap_or_default();
        let service = route.split('.').next().unwrap_or_default().to_owned();
        request.headers.insert(headers::ASSERTION, assertion);
        request.delivery_mode = Hop::Request.delivery_mode();
        request.expiration = None;
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
        acker: crate::transport::Acker,
    ) -> Result<(), TransportError> {
        let route = request.headers.get_str(headers::ROUTE).unwrap_or("-");
        let copy = reject::dead_letter(request, None, route, rejection, &self.bounds);
        match reject::publish_dead_letter(self.transport.as_ref(), &self.names, &copy).await {
            Ok(()) => acker.ack().await,
            Err(e) => {
                tracing::warn!(msg.id = %request.id, error = %e, "Cannot record a refused re-admission; requeued.");
                tokio::time::sleep(REQUEUE_BACKOFF).await;
                acker.reject(true).await
            }
        }
    }
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

/// A short id of one assertion (its first 12 bytes of SHA-256).
fn assertion_id(assertion: &str) -> ContextId {
    let digest = Sha256::digest(assertion.as_bytes());
    let mut id = ContextId::default();
    let len = id.len();
    id.copy_from_slice(&digest[..len]);
    id
}
