//! `TOLLGATE_*` overrides, read through [`EnvSource`] so tests never touch the
//! process environment.

use std::{collections::HashMap, path::PathBuf};

use crate::{chain::AuthMode, topology::QueueKind};

use super::{Config, ConfigError};

/// Where environment variables come from.
pub trait EnvSource {
    /// The value of `key`, if set.
    fn get(&self, key: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).cloned()
    }
}

impl Config {
    /// Applies every `TOLLGATE_*` override present in `env`; reports all bad values.
    pub fn apply_env(&mut self, env: &dyn EnvSource) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        if let Some(v) = env.get("TOLLGATE_AMQP_URL") {
            self.amqp_url = v;
        }
        if let Some(v) = env.get("TOLLGATE_NAMESPACE") {
            self.namespace = v;
        }
        if let Some(v) = env.get("TOLLGATE_QUEUE_TYPE") {
            match v.parse::<QueueKind>() {
                Ok(kind) => self.queue_type = kind,
                Err(e) => errors.push(ConfigError::new("TOLLGATE_QUEUE_TYPE", e)),
            }
        }
        if let Some(v) = env.get("TOLLGATE_INSTANCE") {
            self.instance = Some(v);
        }
        if let Some(v) = env.get("TOLLGATE_METRICS_ADDR") {
            self.metrics_addr = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = env.get("TOLLGATE_HTTP_LISTEN") {
            self.http.listen = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = env.get("TOLLGATE_CONSUMERS_FILE") {
            self.auth.consumers_file = Some(PathBuf::from(v));
        }
        if let Some(v) = env.get("TOLLGATE_ASSERTION_KEY_FILE") {
            self.auth.assertion_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = env.get("TOLLGATE_REDIS_URL") {
            self.central_auth.redis_url = v;
        }
        if let Some(v) = env.get("TOLLGATE_TRUST_REDIS_URL") {
            self.trust.redis_url = Some(v);
        }
        if let Some(v) = env.get("TOLLGATE_PREFETCH") {
            match v.parse() {
                Ok(n) => self.router.prefetch = n,
                Err(_) => errors.push(ConfigError::new(
                    "TOLLGATE_PREFETCH",
                    format!("`{v}` is not a number 1–65535"),
                )),
            }
        }
        if let Some(v) = env.get("TOLLGATE_HOLD_CALLS") {
            match v.parse() {
                Ok(n) => self.router.hold_calls = Some(n),
                Err(_) => errors.push(ConfigError::new(
                    "TOLLGATE_HOLD_CALLS",
                    format!("`{v}` is not a number 0–65535"),
                )),
            }
        }
        if let Some(v) = env.get("TOLLGATE_ROUTER_THREADS") {
            match v.parse() {
                Ok(n) => self.router.threads = n,
                Err(_) => errors.push(ConfigError::new(
                    "TOLLGATE_ROUTER_THREADS",
                    format!("`{v}` is not a number 1–{}", super::MAX_ROUTER_THREADS),
                )),
            }
        }
        if let Some(v) = env.get("TOLLGATE_DEFAULT_AUTH") {
            match v.as_str() {
                "gateway" => self.default_auth = AuthMode::Gateway,
                "service" => self.default_auth = AuthMode::Service,
                "central" => self.default_auth = AuthMode::Central,
                _ => errors.push(ConfigError::new(
                    "TOLLGATE_DEFAULT_AUTH",
                    format!("`{v}` is not gateway, service or central"),
                )),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_file_values_and_bad_values_are_all_reported() {
        let mut config = Config::default();
        let env: HashMap<String, String> = [
            ("TOLLGATE_NAMESPACE", "prod"),
            ("TOLLGATE_PREFETCH", "lots"),
            ("TOLLGATE_DEFAULT_AUTH", "nowhere"),
            ("TOLLGATE_QUEUE_TYPE", "quorum"),
            ("TOLLGATE_HOLD_CALLS", "12"),
            ("TOLLGATE_ROUTER_THREADS", "4"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let errors = config.apply_env(&env).unwrap_err();
        assert_eq!(config.namespace, "prod");
        assert_eq!(config.queue_type, QueueKind::Quorum);
        assert_eq!(config.router.hold_calls, Some(12));
        assert_eq!(config.router.threads, 4);
        assert_eq!(errors.len(), 2);
    }
}
