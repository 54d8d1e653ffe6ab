//! Authorization: the access policy decides on `service.method`, and only this
//! module can build the [`Permitted`] that resolving a target requires
//! (linkerd's `Permitted<T>`).

use std::sync::Arc;

use tollgate_auth::{Identity, Policy};

use crate::rejection::Rejection;

use super::{AuthMode, Authenticated, RouteKey};

/// Proof that a message passed authorization for one route. Its fields are
/// private to this module, so no other code can forge one.
#[derive(Debug, Clone)]
pub struct Permitted {
    route: RouteKey,
    caller: Caller,
}

/// Who the service is told the caller is.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The gateway verified the caller (or the policy admitted it as the
    /// anonymous consumer): the service gets this identity and a bus assertion.
    Gateway(Arc<Identity>),
    /// A service-mode route: the service verifies the credential that travels on.
    Service,
    /// The central auth service vouched for the caller; the service gets the
    /// identity and a bus assertion as in gateway mode.
    Central(Arc<Identity>),
}

/// Applies the access policy (gateway mode) and grants [`Permitted`].
pub struct Authorize {
    policy: Arc<Policy>,
    anonymous: Option<Arc<Identity>>,
}

impl Permitted {
    /// The route it was granted for.
    pub fn route(&self) -> &RouteKey {
        &self.route
    }

    /// Who the caller is, as the service will be told.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The verified identity (gateway mode), if any.
    pub fn identity(&self) -> Option<&Arc<Identity>> {
        match &self.caller {
            Caller::Gateway(identity) | Caller::Central(identity) => Some(identity),
            Caller::Service => None,
        }
    }

    /// The mode it was granted under.
    pub fn mode(&self) -> AuthMode {
        match self.caller {
            Caller::Gateway(_) => AuthMode::Gateway,
            Caller::Service => AuthMode::Service,
            Caller::Central(_) => AuthMode::Central,
        }
    }
}

impl Authorize {
    /// The step over `policy`.
    pub fn new(policy: Arc<Policy>) -> Self {
        let anonymous = policy.anonymous_identity().map(Arc::new);
        Self { policy, anonymous }
    }

    /// Grants `route` to `who`, or refuses. A service-mode route needs only a
    /// valid route (its service decides); a gateway route needs the policy's
    /// yes. An invalid route is refused here, before anything can learn
    /// whether a service exists.
    pub fn check(
        &self,
        route: Option<&RouteKey>,
        who: Authenticated,
    ) -> Result<Permitted, Rejection> {
        let Some(route) = route else {
            return Err(Rejection::forbidden("not a valid `service.method` route"));
        };
        let identity = match who {
            Authenticated::Deferred => {
                return Ok(Permitted {
                    route: route.clone(),
                    caller: Caller::Service,
                });
            }
            Authenticated::Central(identity) => {
                return self.decide(route, &identity).map(|()| Permitted {
                    route: route.clone(),
                    caller: Caller::Central(identity),
                });
            }
            Authenticated::Verified(identity) => Some(identity),
            Authenticated::Anonymous => None,
        };
        let decision = self.policy.decide(identity.as_deref(), route.as_str());
        if !decision.is_allowed() {
            let consumer = identity
                .as_ref()
                .map_or("anonymous", |i| i.consumer.as_str());
            return Err(Rejection::forbidden(format!(
                "`{consumer}` may not call `{route}`"
            )));
        }
        // Admitted by an anonymous rule: the service sees the anonymous consumer.
        let identity = identity.or_else(|| self.anonymous.clone());
        let Some(identity) = identity else {
            return Err(Rejection::forbidden("no anonymous consumer is configured"));
        };
        Ok(Permitted {
            route: route.clone(),
            caller: Caller::Gateway(identity),
        })
    }

    /// The policy's answer for a known caller (central mode: no anonymous rules).
    fn decide(&self, route: &RouteKey, identity: &Identity) -> Result<(), Rejection> {
        if self
            .policy
            .decide(Some(identity), route.as_str())
            .is_allowed()
        {
            Ok(())
        } else {
            Err(Rejection::forbidden(format!(
                "`{}` may not call `{route}`",
                identity.consumer
            )))
        }
    }
}
