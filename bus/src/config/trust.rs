//! `[trust]`: where revocations and consumer changes are kept (Redis), and
//! how long a revocation must be kept.

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use tollgate_auth::{Consumer, Revocations};

use super::{Config, ConfigError};
use crate::trust::{BroadcastKey, TrustSettings, TrustStore, TrustStoreError};

/// `[trust]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustSection {
    /// Redis URL of the trust state (`TOLLGATE_TRUST_REDIS_URL`); unset: the
    /// `tollgate.trust.*` routes answer `trust_store_unavailable` and the
    /// config's consumers are all there is.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key; the bus's namespace and `:` follow it
    /// (default `tollgate:trust:`).
    pub key_prefix: String,
    /// The longest a token can be valid, in seconds (default 86,400): a token
    /// or subject revocation without `until` is kept that long, an
    /// issued-before cut-off that long past the cut-off.
    pub max_token_lifetime_secs: u64,
    /// How often every router re-reads the whole state from Redis, so a
    /// missed broadcast heals (1–3600 s, default 30).
    pub resync_secs: u64,
}

impl Default for TrustSection {
    fn default() -> Self {
        Self {
            redis_url: None,
            key_prefix: "tollgate:trust:".to_owned(),
            max_token_lifetime_secs: 86_400,
            resync_secs: 30,
        }
    }
}

impl TrustSection {
    /// Adds every problem of the section to `errors`.
    pub(super) fn check(&self, errors: &mut Vec<ConfigError>) {
        if let Some(url) = &self.redis_url
            && let Err(e) = redis::Client::open(url.as_str())
        {
            errors.push(ConfigError::new("trust.redis_url", e.to_string()));
        }
        if self.max_token_lifetime_secs == 0 {
            errors.push(ConfigError::new(
                "trust.max_token_lifetime_secs",
                "must be at least 1",
            ));
        }
        if !(1..=3600).contains(&self.resync_secs) {
            errors.push(ConfigError::new("trust.resync_secs", "must be 1–3600"));
        }
    }
}

impl Config {
    /// `[trust]`'s own problems, and a revocation kept shorter than the
    /// verifier lets a token live (it would expire while its token is valid).
    pub(super) fn check_trust(&self, errors: &mut Vec<ConfigError>) {
        self.trust.check(errors);
        if let Some(longest) = self.auth.verifier.max_lifetime_secs
            && self.trust.max_token_lifetime_secs < longest
        {
            errors.push(ConfigError::new(
                "trust.max_token_lifetime_secs",
                format!("must be at least auth.verifier.max_lifetime_secs ({longest})"),
            ));
        }
    }

    /// The trust store `[trust]` names, keys under this bus's namespace;
    /// `None` without `redis_url`.
    pub fn trust_store(&self) -> Option<Result<TrustStore, TrustStoreError>> {
        let url = self.trust.redis_url.as_deref()?;
        Some(TrustStore::new(url, self.trust_key_prefix()))
    }

    /// What a router runs trust state with: changes apply on top of
    /// `baseline`, revocations into `revocations`, broadcasts are signed
    /// with `secret` (derived from the bus key).
    pub(super) fn trust_settings(
        &self,
        baseline: Vec<Consumer>,
        revocations: &Arc<Revocations>,
        secret: &[u8; 32],
    ) -> TrustSettings {
        TrustSettings {
            redis_url: self.trust.redis_url.clone(),
            key_prefix: self.trust_key_prefix(),
            max_lifetime: self.trust.max_token_lifetime_secs,
            leeway: self.auth.verifier.leeway_secs,
            resync: Duration::from_secs(self.trust.resync_secs),
            baseline,
            revocations: Arc::clone(revocations),
            key: BroadcastKey::new(secret, self.namespace.clone()),
        }
    }

    fn trust_key_prefix(&self) -> String {
        format!("{}{}:", self.trust.key_prefix, self.namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_of_the_section_is_reported() {
        let mut errors = Vec::new();
        TrustSection::default().check(&mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let bad = TrustSection {
            redis_url: Some("http://redis".into()),
            max_token_lifetime_secs: 0,
            resync_secs: 0,
            ..TrustSection::default()
        };
        bad.check(&mut errors);
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn a_revocation_must_outlive_the_longest_token() {
        let mut config = Config::default();
        config.auth.verifier.max_lifetime_secs = Some(7 * 86_400);
        let mut errors = Vec::new();
        config.check_trust(&mut errors);
        assert_eq!(errors.len(), 1, "{errors:?}");
        config.trust.max_token_lifetime_secs = 7 * 86_400;
        errors.clear();
        config.check_trust(&mut errors);
        assert!(errors.is_empty(), "{errors:?}");
    }
}
