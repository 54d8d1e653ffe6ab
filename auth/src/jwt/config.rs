//! What the verifier checks, and its defaults.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The verifier's settings. Every field has a production default; see `DOCS.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct VerifierConfig {
    /// The claim whose value names the token's consumer (its `key`) when the header has
    /// no `kid`. Default `key`.
    pub consumer_claim: String,
    /// Accepted `iss` values; when non-empty, a token must carry one of them.
    pub issuers: Vec<String>,
    /// Accepted `aud` values; when non-empty, a token's `aud` must contain one of them.
    pub audiences: Vec<String>,
    /// `aud` values that make a token unacceptable here: a token whose `aud` contains
    /// one of them was minted for another purpose (a service's registration token
    /// offered as a caller's) and is refused as `claims_invalid`. Default none.
    pub refused_audiences: Vec<String>,
    /// Registered claims a token must carry (`claims_invalid` when one is missing),
    /// besides `exp`, which is always required. Default none.
    pub required_claims: Vec<RegisteredClaim>,
    /// The oldest a token may be, in seconds counted from its `iat`; an older one is
    /// refused as `token_expired`. Setting it makes `iat` required. Default none.
    pub max_token_age_secs: Option<u64>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds. Default 30.
    pub leeway_secs: u64,
    /// The furthest into the future `exp` may be, in seconds from now; `None` for no
    /// limit. Default one day.
    pub max_lifetime_secs: Option<u64>,
    /// Tokens longer than this many bytes are refused before any parsing. Default 8192.
    pub max_token_bytes: usize,
    /// The deepest nesting of arrays and objects allowed in the header and claims.
    /// Default 16.
    pub max_json_depth: usize,
    /// Claims copied into [`Identity::claims`](crate::Identity::claims) when present.
    pub forward_claims: Vec<String>,
    /// How many verified tokens to remember; 0 turns the cache off. Default 10 000.
    pub cache_capacity: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            consumer_claim: "key".to_owned(),
            issuers: Vec::new(),
            audiences: Vec::new(),
            refused_audiences: Vec::new(),
            required_claims: Vec::new(),
            max_token_age_secs: None,
            leeway_secs: 30,
            max_lifetime_secs: Some(24 * 60 * 60),
            max_token_bytes: 8192,
            max_json_depth: 16,
            forward_claims: Vec::new(),
            cache_capacity: 10_000,
        }
    }
}

/// A registered claim (RFC 7519 §4.1) that [`VerifierConfig::required_claims`] can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RegisteredClaim {
    /// `exp`, the expiry (always required anyway).
    Exp,
    /// `nbf`, not before.
    Nbf,
    /// `iat`, issued at.
    Iat,
    /// `sub`, the subject.
    Sub,
    /// `jti`, the token id.
    Jti,
    /// `iss`, the issuer.
    Iss,
    /// `aud`, the audience.
    Aud,
}

impl RegisteredClaim {
    /// Every registered claim, in the order they are checked for presence.
    pub const ALL: [RegisteredClaim; 7] = [
        Self::Exp,
        Self::Nbf,
        Self::Iat,
        Self::Sub,
        Self::Jti,
        Self::Iss,
        Self::Aud,
    ];

    /// The claim's name in a token.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Exp => "exp",
            Self::Nbf => "nbf",
            Self::Iat => "iat",
            Self::Sub => "sub",
            Self::Jti => "jti",
            Self::Iss => "iss",
            Self::Aud => "aud",
        }
    }
}

impl fmt::Display for RegisteredClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl VerifierConfig {
    /// Every inconsistency in these settings, as `(field, problem)`; empty when they are
    /// usable. Checked at load, before any token is seen.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.max_token_age_secs == Some(0) {
            problems.push(("max_token_age_secs", "must be at least 1 second".to_owned()));
        }
        if let (Some(age), Some(lifetime)) = (self.max_token_age_secs, self.max_lifetime_secs)
            && age > lifetime
        {
            problems.push((
                "max_token_age_secs",
                format!(
                    "{age} is longer than max_lifetime_secs ({lifetime}): it would never apply"
                ),
            ));
        }
        if let Some(both) = self
            .audiences
            .iter()
            .find(|a| self.refused_audiences.contains(a))
        {
            problems.push((
                "audiences",
                format!("`{both}` is both accepted and refused"),
            ));
        }
        if self.max_token_bytes == 0 {
            problems.push(("max_token_bytes", "must be at least 1".to_owned()));
        }
        if self.consumer_claim.is_empty() {
            problems.push(("consumer_claim", "must not be empty".to_owned()));
        }
        problems
    }

    /// Whether `claim` must be present: listed in `required_claims`, `exp` (always), or
    /// `iat` when a maximum token age is set.
    pub fn requires(&self, claim: RegisteredClaim) -> bool {
        claim == RegisteredClaim::Exp
            || (claim == RegisteredClaim::Iat && self.max_token_age_secs.is_some())
            || self.required_claims.contains(&claim)
    }

    /// Requires `claims` to be present in every token.
    pub fn with_required_claims<I: IntoIterator<Item = RegisteredClaim>>(
        mut self,
        claims: I,
    ) -> Self {
        self.required_claims = claims.into_iter().collect();
        self
    }

    /// Refuses tokens issued more than `secs` ago (and tokens without `iat`).
    pub fn with_max_token_age_secs(mut self, secs: u64) -> Self {
        self.max_token_age_secs = Some(secs);
        self
    }

    /// Requires `iss` to be one of `issuers`.
    pub fn with_issuers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, issuers: I) -> Self {
        self.issuers = issuers.into_iter().map(Into::into).collect();
        self
    }

    /// Requires `aud` to contain one of `audiences`.
    pub fn with_audiences<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        audiences: I,
    ) -> Self {
        self.audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// Refuses tokens whose `aud` contains one of `audiences`.
    pub fn with_refused_audiences<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        audiences: I,
    ) -> Self {
        self.refused_audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the leeway in seconds.
    pub fn with_leeway_secs(mut self, leeway: u64) -> Self {
        self.leeway_secs = leeway;
        self
    }

    /// Sets the cache capacity; 0 turns the cache off.
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Sets the claims copied into the identity.
    pub fn with_forward_claims<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        claims: I,
    ) -> Self {
        self.forward_claims = claims.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the maximum token size in bytes.
    pub fn with_max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = max;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_toml_table_gives_the_defaults() {
        let config: VerifierConfig = toml::from_str("").expect("valid");
        assert_eq!(config, VerifierConfig::default());
        assert_eq!(config.leeway_secs, 30);
        assert_eq!(config.consumer_claim, "key");
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(toml::from_str::<VerifierConfig>("leeway = 5").is_err());
    }

    #[test]
    fn required_claims_are_named_as_in_a_token_and_unknown_ones_refused() {
        let config: VerifierConfig =
            toml::from_str(r#"required_claims = ["sub", "jti", "iss", "aud", "nbf", "iat"]"#)
                .expect("valid");
        assert!(config.requires(RegisteredClaim::Aud));
        assert!(config.requires(RegisteredClaim::Exp));
        let err = toml::from_str::<VerifierConfig>(r#"required_claims = ["tenant"]"#)
            .expect_err("not a registered claim")
            .to_string();
        assert!(err.contains("tenant") && err.contains("jti"), "{err}");
    }

    #[test]
    fn a_maximum_age_requires_iat_and_is_checked_for_sense() {
        let config = VerifierConfig::default().with_max_token_age_secs(600);
        assert!(config.requires(RegisteredClaim::Iat));
        assert!(!VerifierConfig::default().requires(RegisteredClaim::Iat));
        assert!(config.problems().is_empty());
        let zero = VerifierConfig::default().with_max_token_age_secs(0);
        assert_eq!(zero.problems()[0].0, "max_token_age_secs");
        let beyond = VerifierConfig::default().with_max_token_age_secs(2 * 86_400);
        assert_eq!(beyond.problems().len(), 1);
    }
}
