//! The gate every ingress message passes: sanitize → authenticate → authorize
//! → resolve → translate → stamp.
//!
//! Progress is a type: authentication yields [`Authenticated`], only
//! authorization can turn it into a [`Permitted`], only resolving a
//! [`Permitted`] yields the [`Resolved`] target, and delivery takes nothing
//! else. Each step answers the message's fault as a [`Rejection`] and the
//! infrastructure's as an [`InfraError`] ([`Verdict`]). No step awaits, so
//! none is `async`; the driver times each one.

use std::sync::Arc;

use tollgate_auth::Identity;

use crate::{
    envelope::Envelope,
    meters::{MessageMeters, TimedStage},
    reply_context::ContextId,
};

mod authenticate;
mod authorize;
mod mode;
mod resolve;
mod route_key;
mod sanitize;
mod server_named;
mod stamp;
mod translate;
mod verdict;

pub use authenticate::{Authenticate, Authenticated, Introspected};
pub use authorize::{Authorize, Caller, Permitted};
pub use mode::{AuthMode, AuthModes, RouteAuth};
pub use resolve::{Resolve, Resolved};
pub use route_key::RouteKey;
pub use sanitize::{Limits, Sanitize};
pub use server_named::{SERVER_NAMED_PREFIX, ServerNamedQueues, Unbound, is_server_named};
pub use stamp::{ReplyRoute, Stamp};
pub use translate::{DEFAULT_CONTENT_TYPE, Translate};
pub use verdict::{InfraError, Verdict};

/// The steps, in order, and the auth mode of each route.
pub struct Gate {
    /// Limits, forged headers, `reply_to`.
    pub sanitize: Sanitize,
    /// Credentials (gateway mode).
    pub authenticate: Authenticate,
    /// The access policy.
    pub authorize: Authorize,
    /// The registry.
    pub resolve: Resolve,
    /// Codecs and schema mappings.
    pub translate: Translate,
    /// Identity headers, assertion, reply context.
    pub stamp: Stamp,
    /// Which mode each route authenticates in.
    pub modes: AuthModes,
}

/// What the gate learned about one message on its way, whatever the verdict:
/// the audit line and a refusal's error reply need it.
#[derive(Debug, Default)]
pub struct Facts {
    /// The route, when the routing key is a valid `service.method`.
    pub route: Option<RouteKey>,
    /// The caller's `reply_to`, once sanitize accepted it.
    pub reply_to: Option<String>,
    /// The verified caller, once known.
    pub caller: Option<Arc<Identity>>,
}

impl Facts {
    /// The route as a string for logs (`-` when invalid).
    pub fn route_str(&self) -> &str {
        self.route.as_ref().map_or("-", RouteKey::as_str)
    }

    /// The verified consumer's name, if any.
    pub fn consumer(&self) -> Option<&str> {
        self.caller.as_deref().map(|i| i.consumer.as_str())
    }
}

impl Gate {
    /// Takes `envelope`, published with `routing_key`, through every step,
    /// changing it in place into what the service receives. Records what it
    /// learns in `facts`. On a refusal the envelope holds the sanitized
    /// request (its credential and `reply_to` removed, its payload untouched).
    ///
    /// `introspected` is the central auth service's answer for a central-mode
    /// route (asked by the driver before, since no step awaits); without it
    /// such a route is refused `auth_unavailable`. A call the router holds
    /// under `held_as` gets a reply context sealed under that id and saying
    /// so. Each step's time goes to `meters`.
    pub fn pass(
        &self,
        envelope: &mut Envelope,
        routing_key: &str,
        facts: &mut Facts,
        introspected: Option<Introspected>,
        held_as: Option<ContextId>,
        meters: &MessageMeters,
    ) -> Verdict<Resolved> {
        let lap = meters.lap();
        facts.route = RouteKey::parse(routing_key);
        let mode = self.modes.mode_for(routing_key);
        let resolved = lap
            .time(TimedStage::Sanitize, || {
                facts.reply_to = self.sanitize.reply_to(envelope)?;
                self.sanitize.limits(envelope)
            })
            .and_then(|()| {
                lap.time(TimedStage::Authenticate, || {
                    self.authenticate.check(envelope, mode, introspected)
                })
            })
            .and_then(|who| {
                if let Authenticated::Verified(identity) | Authenticated::Central(identity) = &who {
                    facts.caller = Some(Arc::clone(identity));
                }
                lap.time(TimedStage::Authorize, || {
                    self.authorize.check(facts.route.as_ref(), who)
                })
            })
            .and_then(|permit| lap.time(TimedStage::Resolve, || self.resolve.check(permit)));
        let resolved = match resolved {
            Ok(resolved) => resolved,
            Err(rejection) => return Verdict::Refused(rejection),
        };
        let caller = match lap.time(TimedStage::Translate, || {
            self.translate.apply(envelope, &resolved)
        }) {
            Ok(format) => format,
            Err(rejection) => return Verdict::Refused(rejection),
        };
        let reply = facts.reply_to.as_deref().map(|reply_to| ReplyRoute {
            reply_to,
            format: &caller,
            held_as,
        });
        match lap.time(TimedStage::Stamp, || {
            self.stamp.apply(envelope, &resolved, reply)
        }) {
            Ok(()) => Verdict::Pass(resolved),
            Err(e) => Verdict::Failed(e),
        }
    }
}
