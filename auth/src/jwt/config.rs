//! What the verifier checks, and its defaults.

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
            leeway_secs: 30,
            max_lifetime_secs: Some(24 * 60 * 60),
            max_token_bytes: 8192,
            max_json_depth: 16,
            forward_claims: Vec::new(),
            cache_capacity: 10_000,
        }
    }
}

impl VerifierConfig {
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
}
