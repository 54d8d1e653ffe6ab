//! Reloading a running router's config (`tollgate serve` on SIGHUP): the
//! consumers, policy, auth modes, mappings and limits change at once for the
//! next message; in-flight messages finish on the config they started with;
//! nothing reconnects.

use std::sync::Arc;

use tollgate_auth::Consumer;

use crate::{chain::AuthMode, config::ConfigError, events, jwks::RemoteKeys, trust::LiveTrust};

use super::{
    RouterSettings,
    live::{Current, Fixed, Live, LiveParts},
};

/// Reloads a running router; cheap to clone.
#[derive(Clone)]
pub struct RouterHandle {
    pub(super) current: Current,
    pub(super) fixed: Fixed,
    pub(super) remote: Arc<RemoteKeys>,
    /// Whether the router started a central auth client.
    pub(super) central: bool,
    /// The trust state, whose consumer changes stay on the new consumers.
    pub(super) trust: Option<Arc<LiveTrust>>,
}

impl RouterHandle {
    /// Swaps in what `settings` (built from the new config with
    /// [`Config::router_settings`](crate::config::Config::router_settings),
    /// so already validated) says of the consumers, the policy, the auth
    /// modes (and `strip_credential`), the mappings and the limits: each
    /// message handled after this returns sees all of them, one that started
    /// before sees none. Everything else in `settings` is ignored (the
    /// router keeps its names, keys, verifier settings, prefetch and
    /// timeouts; compare configs with
    /// [`Config::restart_only_changes`](crate::config::Config::restart_only_changes)).
    /// Consumers with a new or changed `jwks_url` have their set fetched
    /// before this returns; unchanged ones keep their keys. The revocations
    /// are kept, and so are the trust state's consumer changes (applied on
    /// top of the new consumers).
    ///
    /// Errors, leaving the running config as it was, when the new consumers
    /// cannot be installed (e.g. a `kid` that a remote key set holds).
    pub async fn reload(&self, settings: RouterSettings) -> Result<(), Vec<ConfigError>> {
        if settings.modes.uses(AuthMode::Central) && !self.central {
            tracing::warn!(
                setting = "routes",
                "A central-mode route needs a restart: this router started without one; its messages are refused until then."
            );
        }
        let consumers: Vec<Consumer> = settings
            .verifier
            .store()
            .consumers()
            .iter()
            .map(|c| Consumer::clone(c))
            .collect();
        let count = consumers.len();
        let live = Live::build(
            &self.fixed,
            LiveParts {
                policy: settings.policy,
                translator: settings.translator,
                limits: settings.limits,
                modes: settings.modes,
                strip_credential: settings.strip_credential,
                identity_headers: settings.identity_headers,
            },
        );
        let install = || match &self.trust {
            Some(trust) => trust.rebase(consumers),
            None => self.remote.install_consumers(consumers),
        };
        if let Err(e) = self.current.swap(install, live) {
            events::reload("refused");
            tracing::error!(error = %e, "Config reload refused; the running config stays.");
            return Err(vec![ConfigError::new("auth.consumers", e.to_string())]);
        }
        self.remote.sync().await;
        events::reload("applied");
        tracing::info!(consumers = count, "Config reloaded.");
        Ok(())
    }
}
