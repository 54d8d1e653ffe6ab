//! What a config reload may change, swapped whole: every message loads one
//! snapshot ([`Live`]) and keeps it to the end, so it sees the old config or
//! the new one, never a mix of the two. The consumers live in the consumer
//! store the verifier reads, so they are swapped under the same lock as the
//! snapshot, which a message's gate holds (shared) while it runs.

use std::{sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use parking_lot::RwLock;
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
pub(crate) type Current = Arc<LiveConfig>;

/// The current [`Live`] and the lock that keeps a reload out of a gate.
pub(crate) struct LiveConfig {
    live: ArcSwap<Live>,
    /// Shared by each message's gate, exclusive for a reload's swap.
    swap: RwLock<()>,
}

impl LiveConfig {
    /// Starts with `live`.
    pub(crate) fn new(live: Live) -> Self {
        Self {
            live: ArcSwap::from_pointee(live),
            swap: RwLock::new(()),
        }
    }

    /// The current snapshot (for steps outside the gate).
    pub(crate) fn load(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Runs `gate` on the current snapshot while no reload can swap the
    /// consumers or the snapshot (`gate` must not block or await).
    pub(crate) fn with_gate<T>(&self, gate: impl FnOnce(&Live) -> T) -> T {
        let _shared = self.swap.read();
        gate(&self.live.load())
    }

    /// Swaps in `live` right after `install` (the consumers) succeeded, both
    /// while no gate runs; on error nothing is swapped.
    pub(crate) fn swap<E>(
        &self,
        install: impl FnOnce() -> Result<(), E>,
        live: Live,
    ) -> Result<(), E> {
        let _exclusive = self.swap.write();
        install()?;
        self.live.store(Arc::new(live));
        Ok(())
    }
}

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
    pub(crate) identity_headers: bool,
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
            )
            .with_identity_headers(parts.identity_headers),
            modes: parts.modes,
        };
        Self {
            gate,
            policy: parts.policy,
            translator: parts.translator,
        }
    }
}
