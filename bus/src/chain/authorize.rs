//! Authorization: the access policy decides on `service.method`, and only this
//! module can issue the [`Permit`] that routing requires (linkerd's `Permitted<T>`).

use std::sync::Arc;

use async_trait::async_trait;
use tollgate_auth::Policy;

use crate::{
    envelope::Envelope,
    rejection::{Rejection, Stage},
};

use super::{AuthMode, Context, Interceptor};

/// Proof that a message passed authorization. Its field is private to this
/// module, so no other code can forge one.
#[derive(Debug)]
pub struct Permit {
    mode: AuthMode,
}

impl Permit {
    /// Under which mode it was granted (`Service`: the service still verifies).
    pub fn mode(&self) -> AuthMode {
        self.mode
    }
}

/// Applies the access policy (gateway mode) and grants the permit.
pub struct Authorize {
    policy: Arc<Policy>,
}

impl Authorize {
    /// The step over `policy`.
    pub fn new(policy: Arc<Policy>) -> Self {
        Self { policy }
    }
}

#[async_trait]
impl Interceptor for Authorize {
    fn stage(&self) -> Stage {
        Stage::Authorize
    }

    fn name(&self) -> &'static str {
        "authorize"
    }

    async fn intercept(&self, envelope: Envelope, cx: &mut Context) -> Result<Envelope, Rejection> {
        if cx.mode == AuthMode::Service {
            if cx.route.is_none() {
                return Err(Rejection::forbidden("not a valid `service.method` route"));
            }
            cx.grant(Permit {
                mode: AuthMode::Service,
            });
            return Ok(envelope);
        }
        let decision = self.policy.decide(cx.identity.as_ref(), cx.route_str());
        if !decision.is_allowed() {
            let consumer = cx
                .identity
                .as_ref()
                .map_or("anonymous", |i| i.consumer.as_str());
            return Err(Rejection::forbidden(format!(
                "`{consumer}` may not call `{}`",
                cx.route_str()
            )));
        }
        if cx.identity.is_none() {
            // Admitted by an anonymous rule: the service sees the anonymous consumer.
            cx.identity = self.policy.anonymous_identity();
        }
        cx.grant(Permit {
            mode: AuthMode::Gateway,
        });
        Ok(envelope)
    }
}
