//! `[central_auth]`: the central auth service, as the routers ask it and as
//! `tollgate auth-service` runs it (one section, so both read one file).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError};
use crate::registry::Registration;

/// Longest time a router may cache a positive introspection answer.
pub const MAX_CACHE_TTL_MS: u64 = 5_000;

/// Where the central auth service keeps its sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStoreKind {
    /// Redis (shared by every instance; survives restarts of the service).
    #[default]
    Redis,
    /// In the process (one instance; the demo and tests).
    Memory,
}

/// `[central_auth]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CentralAuthSection {
    /// The auth service's name: routes `<service>.login`, `.introspect`,
    /// `.logout`, `.disable_user` (default `auth`).
    pub service: String,
    /// Router: how long one introspection attempt may take, in ms (default 500).
    pub timeout_ms: u64,
    /// Router: attempts before refusing with `auth_unavailable` (1–10, default 3).
    pub attempts: u32,
    /// Router: wait before the second attempt, in ms; doubled for each next
    /// one (default 50).
    pub retry_backoff_ms: u64,
    /// Router: how long a positive answer is cached, in ms (0 = no cache;
    /// at most 5000; default 2000). A logout empties it at once.
    pub cache_ttl_ms: u64,
    /// Router: most cached answers (default 10,000).
    pub cache_max_entries: usize,
    /// Service: the users file (`tollgate users add`), relative to this file.
    pub users_file: Option<PathBuf>,
    /// Service: a file holding its service account's registration token
    /// (re-read on every heartbeat). `TOLLGATE_SERVICE_TOKEN` overrides it.
    pub token_file: Option<PathBuf>,
    /// Service: the bus's public assertion key (`bus-assertion.pub.pem`).
    pub bus_public_key_file: Option<PathBuf>,
    /// Service: where sessions live (`redis` or `memory`).
    pub store: SessionStoreKind,
    /// Service: Redis URL (`TOLLGATE_REDIS_URL`).
    pub redis_url: String,
    /// Service: prefix of every Redis key it writes.
    pub key_prefix: String,
    /// Service: a session unused this long ends, in seconds (default 1800).
    pub idle_timeout_secs: u64,
    /// Service: a session ends this long after login, in seconds (default 28,800).
    pub absolute_lifetime_secs: u64,
    /// Service: delay after the first failed login of an account or a source,
    /// in ms, doubled for each further failure (default 500).
    pub login_backoff_base_ms: u64,
    /// Service: the longest such delay, in seconds (default 15): the longest
    /// a correct password waits behind someone else's wrong ones.
    pub login_backoff_max_secs: u64,
}

impl Default for CentralAuthSection {
    fn default() -> Self {
        Self {
            service: "auth".to_owned(),
            timeout_ms: 500,
            attempts: 3,
            retry_backoff_ms: 50,
            cache_ttl_ms: 2_000,
            cache_max_entries: 10_000,
            users_file: None,
            token_file: None,
            bus_public_key_file: None,
            store: SessionStoreKind::Redis,
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            key_prefix: "tollgate:auth:".to_owned(),
            idle_timeout_secs: 1_800,
            absolute_lifetime_secs: 28_800,
            login_backoff_base_ms: 500,
            login_backoff_max_secs: 15,
        }
    }
}

impl Config {
    /// Checks what `tollgate auth-service` needs of the config (the basics
    /// and `[central_auth]`; not the bus's private key, which the service
    /// never holds); lists every problem.
    pub fn validate_central(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        self.check_basics(&mut errors);
        self.check_central(&mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Problems of `[central_auth]`.
    pub(super) fn check_central(&self, errors: &mut Vec<ConfigError>) {
        let c = &self.central_auth;
        let mut bad = |field: &str, message: &str| {
            errors.push(ConfigError::new(format!("central_auth.{field}"), message));
        };
        if !Registration::is_valid_service_name(&c.service) {
            bad("service", "not a valid service name");
        }
        if !(1..=60_000).contains(&c.timeout_ms) {
            bad("timeout_ms", "must be 1–60000");
        }
        if !(1..=10).contains(&c.attempts) {
            bad("attempts", "must be 1–10");
        }
        if c.retry_backoff_ms > 10_000 {
            bad("retry_backoff_ms", "must be at most 10000");
        }
        if c.cache_ttl_ms > MAX_CACHE_TTL_MS {
            bad("cache_ttl_ms", "must be at most 5000");
        }
        if c.cache_max_entries == 0 {
            bad("cache_max_entries", "must be at least 1");
        }
        if c.idle_timeout_secs == 0 || c.absolute_lifetime_secs < c.idle_timeout_secs {
            bad(
                "absolute_lifetime_secs",
                "idle_timeout_secs must be at least 1 and at most absolute_lifetime_secs",
            );
        }
        // A cache hit is no use of the session (the service does not see it):
        // an idle timeout within the cache's lifetime would end busy sessions.
        if c.idle_timeout_secs.saturating_mul(1000) <= c.cache_ttl_ms {
            bad(
                "idle_timeout_secs",
                "must be longer than cache_ttl_ms (a cached answer does not count as a use)",
            );
        }
        if c.login_backoff_base_ms == 0 || c.login_backoff_max_secs == 0 {
            bad(
                "login_backoff_base_ms",
                "the login back-off must be at least 1",
            );
        }
        if c.key_prefix.is_empty() {
            bad(
                "key_prefix",
                "must not be empty (keep the service's keys apart)",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_every_bad_value_is_reported() {
        let mut config = Config::default();
        let mut errors = Vec::new();
        config.check_central(&mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        config.central_auth = CentralAuthSection {
            service: "Auth.x".into(),
            cache_ttl_ms: 6_000,
            attempts: 0,
            idle_timeout_secs: 5,
            absolute_lifetime_secs: 4,
            key_prefix: String::new(),
            ..CentralAuthSection::default()
        };
        config.check_central(&mut errors);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "central_auth.service",
                "central_auth.attempts",
                "central_auth.cache_ttl_ms",
                "central_auth.absolute_lifetime_secs",
                "central_auth.idle_timeout_secs",
                "central_auth.key_prefix",
            ]
        );
    }
}
