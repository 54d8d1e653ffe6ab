//! What a config reload may change, swapped whole: every message loads one
//! snapshot ([`Live`]) and keeps it to the end, so it sees the old config or
//! the new one, never a mix of the two.

use std::{sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use tollgate_auth::{AssertionSigner, Policy, Verifier};

use crate::{
    chain::{
        AuthModes, Authenticate, Authorize, Gate, Limits, Resolve, Sanitize, Stamp, Translate,
    },
    names::BusNames,
    registry::RegistryTable,
    reply_context::ReplyContextKey,
    translate::Translator,
};

/// The live part of the config: the gate (limits, auth modes, policy,
/// mappings) and what other loops read of it.
pub(crate) struct Live {
    /// The steps every ingress message passes.
    pub(crate) gate: Gate,
    /// The access policy (re-admission asks it again).
    pub(crate) policy: Arc<Policy>,
    /// Codecs and mappings (replies are translated back with them).
    pub(crate) translator: Arc<Translator>,
}

/// The current [`Live`], shared by every loop of a router.
pub(crate) type Current = Arc<ArcSwap<Live>>;

/// What a reload keeps: the parts a gate is built from that cannot change
/// without a restart.
#[derive(Clone)]
pub(crate) struct Fixed {
    pub(crate) verifier: Arc<Verifier>,
    pub(crate) table: Arc<RegistryTable>,
    pub(crate) signer: AssertionSigner,
    pub(crate) reply_key: Arc<ReplyContextKey>,
    pub(crate) reply_timeout: Duration,
    pub(crate) names: BusNames,
}

/// The parts of a config a reload swaps in.
pub(crate) struct LiveParts {
    pub(crate) policy: Arc<Policy>,
    pub(crate) translator: Arc<Translator>,
    pub(crate) limits: Limits,
    pub(crate) modes: AuthModes,
    pub(crate) strip_credential: bool,
}

impl Live {
    /// The gate `parts` describe, around the kept `fixed` parts.
    pub(crate) fn build(fixed: &Fixed, parts: LiveParts) -> Self {
        let anonymous = parts.policy.anonymous_identity().is_some();
        let gate = Gate {
            sanitize: Sanitize::new(parts.limits, fixed.names.clone(), fixed.reply_timeout),
            authenticate: Authenticate::new(
                Arc::clone(&fixed.verifier),
                parts.strip_credential,
                anonymous,
            ),
            authorize: Authorize::new(Arc::clone(&parts.policy)),
            resolve: Resolve::new(Arc::clone(&fixed.table)),
            translate: Translate::new(Arc::clone(&parts.translator)),
            stamp: Stamp::new(
                fixed.signer.clone(),
                Arc::clone(&fixed.reply_key),
                fixed.reply_timeout,
                fixed.names.clone(),
            ),
            modes: parts.modes,
        };
        Self {
            gate,
            policy: parts.policy,
            translator: parts.translator,
        }
    }
}
