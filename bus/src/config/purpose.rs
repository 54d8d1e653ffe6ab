//! Tokens per purpose: a caller's token calls routes, a service account's
//! registration token registers a service, and neither does the other's job.
//!
//! The purpose travels in `aud`. A registration token must name the
//! registration audience (`[auth] registration_audience`, default
//! `tollgate-registration`); a caller token must not name it (and must name
//! one of `[auth.verifier] audiences` when that list is set). So a default
//! configuration keeps the purposes apart, and a token leaked from a
//! service's announcements cannot call a route.

use serde::{Deserialize, Serialize};
use tollgate_auth::VerifierConfig;

use super::Config;

/// The default `aud` of registration tokens.
pub const DEFAULT_REGISTRATION_AUDIENCE: &str = "tollgate-registration";

/// What a token is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenPurpose {
    /// Calling routes through the router (the default).
    #[default]
    Caller,
    /// Registering a service with the routers (announcements).
    Registration,
}

impl Config {
    /// The verifier settings for tokens of `purpose`: `[auth.verifier]`, with the
    /// registration audience required (registration) or refused (caller).
    pub fn verifier_config(&self, purpose: TokenPurpose) -> VerifierConfig {
        let base = self.auth.verifier.clone();
        let registration = self.auth.registration_audience.clone();
        match purpose {
            TokenPurpose::Caller => {
                let mut refused = base.refused_audiences.clone();
                refused.push(registration);
                base.with_refused_audiences(refused)
            }
            TokenPurpose::Registration => base
                .with_audiences([registration])
                .with_refused_audiences(Vec::<String>::new()),
        }
    }

    /// The `aud` a token of `purpose` is issued with: the registration audience, or
    /// the first caller audience when `[auth.verifier] audiences` is set.
    pub fn audience_for(&self, purpose: TokenPurpose) -> Option<&str> {
        match purpose {
            TokenPurpose::Caller => self.auth.verifier.audiences.first().map(String::as_str),
            TokenPurpose::Registration => Some(&self.auth.registration_audience),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_config_keeps_the_purposes_apart() {
        let config = Config::default();
        let caller = config.verifier_config(TokenPurpose::Caller);
        let registration = config.verifier_config(TokenPurpose::Registration);
        assert_eq!(caller.refused_audiences, [DEFAULT_REGISTRATION_AUDIENCE]);
        assert!(caller.audiences.is_empty());
        assert_eq!(registration.audiences, [DEFAULT_REGISTRATION_AUDIENCE]);
        assert!(registration.refused_audiences.is_empty());
        assert_eq!(
            config.audience_for(TokenPurpose::Registration),
            Some(DEFAULT_REGISTRATION_AUDIENCE)
        );
        assert_eq!(config.audience_for(TokenPurpose::Caller), None);
    }

    #[test]
    fn caller_tokens_are_issued_for_the_first_caller_audience() {
        let mut config = Config::default();
        config.auth.verifier = VerifierConfig::default().with_audiences(["bus", "legacy"]);
        assert_eq!(config.audience_for(TokenPurpose::Caller), Some("bus"));
    }
}
