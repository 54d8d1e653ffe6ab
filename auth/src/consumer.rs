//! Consumers, in the manner of API-gateway consumers: who may call, and with which keys.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::credential::{self, Credential, CredentialSpec};
use crate::error::LoadError;
use crate::jwt::jwks;
use crate::jwt::remote::JwksSource;

/// An account that may call through the bus: a name, the `key` its tokens name it by,
/// its groups and scopes, and its credentials.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Consumer {
    /// Unique name; becomes [`Identity::consumer`](crate::Identity::consumer).
    pub name: String,
    /// The value of the consumer claim (default `key`) that names this consumer in a token.
    pub key: String,
    /// Groups, for the access policy.
    pub groups: Vec<String>,
    /// Scopes granted to every token of this consumer.
    pub scopes: Vec<String>,
    /// A disabled consumer's tokens are refused with `consumer_disabled`.
    pub enabled: bool,
    /// Whether a token's `scope` claim is taken as is (an identity provider behind a JWKS),
    /// rather than only narrowing the consumer's scopes (the default).
    pub trust_token_scopes: bool,
    /// The keys its tokens may be signed with, each pinned to one algorithm
    /// (with those of its remote JWKS, once fetched).
    pub credentials: Vec<Credential>,
    /// A remote JWKS whose keys also belong to this consumer, fetched and
    /// refreshed by the router.
    pub jwks_source: Option<JwksSource>,
}

/// How a consumer is written in a consumers file (TOML or JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSpec {
    /// Unique name.
    pub name: String,
    /// The value of the consumer claim that names this consumer; defaults to `name`.
    #[serde(default)]
    pub key: Option<String>,
    /// Groups, for the access policy.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Scopes granted to every token of this consumer.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Whether the consumer may call at all; defaults to true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Take a token's `scope` claim as is instead of narrowing `scopes` with it.
    #[serde(default)]
    pub trust_token_scopes: bool,
    /// Keys given one by one.
    #[serde(default)]
    pub credentials: Vec<CredentialSpec>,
    /// A JWKS file (relative to the consumers file) whose keys also belong to this consumer.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// An `http://` or `https://` JWKS (an identity provider's) whose keys also
    /// belong to this consumer: fetched at start, refreshed, refetched on an
    /// unknown `kid`.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Seconds between two fetches of `jwks_url` (default 300).
    #[serde(default)]
    pub jwks_refresh_secs: Option<u64>,
    /// Shortest gap, in seconds, between two fetches of `jwks_url` caused by
    /// tokens naming an unknown `kid` (default 10).
    #[serde(default)]
    pub jwks_min_refetch_secs: Option<u64>,
}

fn yes() -> bool {
    true
}

// === Consumer ===

impl Consumer {
    /// An enabled consumer whose `key` is its name, with no groups, scopes or credentials.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            key: name.clone(),
            name,
            groups: Vec::new(),
            scopes: Vec::new(),
            enabled: true,
            trust_token_scopes: false,
            credentials: Vec::new(),
            jwks_source: None,
        }
    }

    /// Sets the consumer claim value.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// Adds a credential.
    pub fn with_credential(mut self, credential: Credential) -> Self {
        self.credentials.push(credential);
        self
    }

    /// Sets the groups.
    pub fn with_groups<I: IntoIterator<Item = S>, S: Into<String>>(mut self, groups: I) -> Self {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the scopes.
    pub fn with_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets whether the consumer is enabled.
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }
}

// === ConsumerSpec ===

impl ConsumerSpec {
    /// Builds the consumer, reading key and JWKS files relative to `base_dir`.
    pub fn build(&self, base_dir: &Path) -> Result<Consumer, LoadError> {
        if self.name.is_empty() {
            return Err(LoadError::Invalid("a consumer needs a `name`".into()));
        }
        let mut credentials = self
            .credentials
            .iter()
            .map(|spec| spec.build(&self.name, base_dir))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(path) = &self.jwks_file {
            let bytes = credential::read(base_dir, path)?;
            let json = String::from_utf8(bytes)
                .map_err(|_| LoadError::Invalid(format!("{} is not UTF-8", path.display())))?;
            let source = format!("{}:{}", self.name, path.display());
            credentials.extend(jwks::credentials_from_jwks(&source, &json)?);
        }
        let jwks_source = match &self.jwks_url {
            Some(url) => Some(JwksSource::new(
                &self.name,
                url,
                self.jwks_refresh_secs,
                self.jwks_min_refetch_secs,
            )?),
            None if self.jwks_refresh_secs.is_some() || self.jwks_min_refetch_secs.is_some() => {
                return Err(LoadError::Invalid(format!(
                    "consumer {}: jwks_refresh_secs and jwks_min_refetch_secs need a jwks_url",
                    self.name
                )));
            }
            None => None,
        };
        // Keys of a remote JWKS arrive once the router fetched them.
        if credentials.is_empty() && jwks_source.is_none() {
            return Err(LoadError::Invalid(format!(
                "consumer {} has no credential",
                self.name
            )));
        }
        Ok(Consumer {
            name: self.name.clone(),
            key: self.key.clone().unwrap_or_else(|| self.name.clone()),
            groups: self.groups.clone(),
            scopes: self.scopes.clone(),
            enabled: self.enabled,
            trust_token_scopes: self.trust_token_scopes,
            credentials,
            jwks_source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::algorithm::Algorithm;

    #[test]
    fn a_consumer_without_credentials_is_refused() {
        let spec = ConsumerSpec {
            name: "alice".into(),
            ..ConsumerSpec::default()
        };
        assert!(spec.build(Path::new(".")).is_err());
    }

    #[test]
    fn the_key_defaults_to_the_name() {
        let spec = ConsumerSpec {
            name: "alice".into(),
            enabled: true,
            credentials: vec![CredentialSpec {
                algorithm: Some(Algorithm::HS256),
                secret: Some("s".repeat(32)),
                ..CredentialSpec::default()
            }],
            ..ConsumerSpec::default()
        };
        let consumer = spec.build(Path::new(".")).expect("valid");
        assert_eq!(consumer.key, "alice");
        assert!(consumer.enabled);
    }
}
