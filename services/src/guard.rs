//! The admission check every delivery passes before a handler sees it.
//!
//! Gateway mode: the message must carry a bus assertion, signed by the bus,
//! for exactly its route and message id. Service mode: the message must carry
//! a bearer token the service's own verifier accepts (and, when the service
//! holds a policy, that policy must allow the route). A message that passes
//! neither did not come through the router and is refused. The identity given
//! to handlers comes only from what was verified here; the informational
//! `x-tollgate-consumer`/`-scopes`/`-auth-mode` headers are never trusted.

use std::sync::Arc;

use tollgate_auth::{AssertionVerifier, AuthError, Identity, Policy, Verifier};
use tollgate_bus::{Envelope, RejectCode, Stage, headers};

mod skew;

use skew::SkewWatch;

/// How a service admits messages.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    service: String,
    bus_key: Option<AssertionVerifier>,
    verifier: Option<Arc<Verifier>>,
    policy: Option<Arc<Policy>>,
    /// Clock readings of the bus assertions (gateway mode).
    skew: Option<Arc<SkewWatch>>,
}

/// A delivery that passed the guard.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) identity: Identity,
    pub(crate) route: String,
    pub(crate) method: String,
}

/// Why a delivery was refused; `reason` reaches the sender, so it holds no detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: RejectCode,
    pub(crate) stage: Stage,
    pub(crate) reason: &'static str,
    /// What failed, for the audit log only (an [`AuthError`] code).
    pub(crate) detail: &'static str,
    /// The message came through the bus, but its assertion expired while it
    /// waited: it goes back to the routers for re-admission
    /// (`Settlement::HandBack`) rather than being refused.
    pub(crate) outlived: bool,
}

impl Guard {
    /// A guard for `service`; at least one of `bus_key` and `verifier` is set by the builder.
    pub(crate) fn new(
        service: String,
        bus_key: Option<AssertionVerifier>,
        verifier: Option<Arc<Verifier>>,
        policy: Option<Arc<Policy>>,
    ) -> Self {
        let skew = bus_key
            .as_ref()
            .map(|key| Arc::new(SkewWatch::new(service.clone(), key.leeway())));
        Self {
            service,
            bus_key,
            verifier,
            policy,
            skew,
        }
    }

    /// How this service asks routers to sign its assertions.
    pub(crate) fn assertion_alg(&self) -> tollgate_auth::AssertionAlg {
        self.bus_key
            .as_ref()
            .map(AssertionVerifier::service_alg)
            .unwrap_or_default()
    }

    /// Admits `envelope` or says why not.
    pub(crate) fn admit(&self, envelope: &Envelope) -> Result<Admitted, Refusal> {
        let route = envelope.headers.get_str(headers::ROUTE).unwrap_or_default();
        let Some(method) = self.method_of(route) else {
            return Err(Refusal::not_from_bus("route_mismatch"));
        };
        let mut refusal = Refusal::not_from_bus("assertion_missing");
        if let (Some(key), Some(token)) =
            (&self.bus_key, envelope.headers.get_str(headers::ASSERTION))
        {
            let check = key.check(token, route, &envelope.id);
            if let Some(skew) = &self.skew {
                skew.observe(&check);
            }
            match check.outcome {
                Ok(asserted) => return Ok(self.admitted(asserted.identity, route, method)),
                Err(AuthError::TokenExpired)
                    if key.verify_as_issued(token, route, &envelope.id).is_ok() =>
                {
                    refusal = Refusal::outlived();
                }
                Err(e) => refusal = Refusal::not_from_bus(e.code()),
            }
        }
        let Some(verifier) = &self.verifier else {
            return Err(refusal);
        };
        let bearer = envelope.headers.get_str(headers::AUTHORIZATION);
        if bearer.is_none() && self.bus_key.is_some() {
            return Err(refusal);
        }
        let identity = verifier
            .verify_bearer(bearer)
            .map_err(Refusal::authentication)?;
        if let Some(policy) = &self.policy {
            let decision = policy.decide(Some(&identity), route);
            if !decision.is_allowed() {
                return Err(Refusal {
                    code: RejectCode::Forbidden,
                    stage: Stage::Authorize,
                    reason: "the caller may not call this route",
                    detail: "forbidden",
                    outlived: false,
                });
            }
        }
        Ok(self.admitted(Arc::unwrap_or_clone(identity), route, method))
    }

    /// The method of `route` when it is a route of this service.
    fn method_of<'r>(&self, route: &'r str) -> Option<&'r str> {
        let (service, method) = route.split_once('.')?;
        (service == self.service && !method.is_empty()).then_some(method)
    }

    fn admitted(&self, identity: Identity, route: &str, method: &str) -> Admitted {
        Admitted {
            identity,
            route: route.to_owned(),
            method: method.to_owned(),
        }
    }
}

impl Refusal {
    fn not_from_bus(detail: &'static str) -> Self {
        Self {
            code: RejectCode::NotFromBus,
            stage: Stage::Service,
            reason: "the message did not pass the bus",
            detail,
            outlived: false,
        }
    }

    /// A genuine assertion that expired while its message waited.
    fn outlived() -> Self {
        Self {
            outlived: true,
            ..Self::not_from_bus("assertion_outlived")
        }
    }

    fn authentication(error: AuthError) -> Self {
        let code = match error {
            AuthError::TokenMissing => RejectCode::TokenMissing,
            AuthError::TokenTooLarge => RejectCode::TokenTooLarge,
            AuthError::TokenExpired => RejectCode::TokenExpired,
            AuthError::TokenRevoked | AuthError::ConsumerDisabled => RejectCode::TokenRevoked,
            AuthError::Forbidden => RejectCode::Forbidden,
            _ => RejectCode::InvalidToken,
        };
        Self {
            code,
            stage: Stage::Authenticate,
            reason: "the credential was refused",
            detail: error.code(),
            outlived: false,
        }
    }
}

#[cfg(test)]
mod tests;
