//! The errors of this crate: [`AuthError`] for callers; [`LoadError`] and [`IssueError`]
//! for operators and tools.
//!
//! An [`AuthError`] is what a caller may see: a stable snake_case code and a
//! fixed message, never the detail of why. The detail goes to `tracing` at the
//! point of failure. A [`LoadError`] is raised while loading consumers, keys or
//! policy, before any message flows, and carries full detail for the operator.

use std::path::PathBuf;

/// Why a credential, an assertion or an access was refused.
///
/// The codes returned by [`AuthError::code`] are stable: clients, dashboards
/// and the dead-letter queue key on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No credential was presented.
    #[error("no credential was presented")]
    TokenMissing,
    /// The token is not a well-formed JWS compact serialization.
    #[error("the token is malformed")]
    TokenMalformed,
    /// The token is larger than the configured maximum; it was not parsed.
    #[error("the token is too large")]
    TokenTooLarge,
    /// The token's `alg` is not the one pinned for its key (or is `none`).
    #[error("the token's algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// No key is known for the token's `kid` or consumer.
    #[error("the token's key is unknown")]
    UnknownKey,
    /// The signature does not verify with the selected key.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// The token's `exp` is in the past (beyond the leeway).
    #[error("the token has expired")]
    TokenExpired,
    /// The token's `nbf` or `iat` is in the future (beyond the leeway).
    #[error("the token is not yet valid")]
    TokenNotYetValid,
    /// A claim is missing, of the wrong type, or fails a configured check.
    #[error("the token's claims are invalid")]
    ClaimsInvalid,
    /// The token, its subject or its consumer was revoked.
    #[error("the token was revoked")]
    TokenRevoked,
    /// The token's consumer is disabled.
    #[error("the consumer is disabled")]
    ConsumerDisabled,
    /// The access policy denied the call.
    #[error("access is forbidden")]
    Forbidden,
    /// The token's consumer takes its keys from a remote JWKS that has not
    /// been fetched yet (or never successfully).
    #[error("the consumer's keys are not available yet")]
    KeysUnavailable,
}

impl AuthError {
    /// The stable, machine-readable code of this error, e.g. `"token_expired"`.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::TokenMissing => "token_missing",
            Self::TokenMalformed => "token_malformed",
            Self::TokenTooLarge => "token_too_large",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::TokenExpired => "token_expired",
            Self::TokenNotYetValid => "token_not_yet_valid",
            Self::ClaimsInvalid => "claims_invalid",
            Self::TokenRevoked => "token_revoked",
            Self::ConsumerDisabled => "consumer_disabled",
            Self::Forbidden => "forbidden",
            Self::KeysUnavailable => "keys_unavailable",
        }
    }

    /// Every error, in declaration order; for documentation and exhaustive tests.
    pub const ALL: [AuthError; 13] = [
        Self::TokenMissing,
        Self::TokenMalformed,
        Self::TokenTooLarge,
        Self::AlgorithmNotAllowed,
        Self::UnknownKey,
        Self::BadSignature,
        Self::TokenExpired,
        Self::TokenNotYetValid,
        Self::ClaimsInvalid,
        Self::TokenRevoked,
        Self::ConsumerDisabled,
        Self::Forbidden,
        Self::KeysUnavailable,
    ];
}

/// Why consumers, keys, a key set or a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A TOML document did not parse.
    #[error("cannot parse {path} as TOML: {source}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: toml::de::Error,
    },
    /// A JSON document did not parse.
    #[error("cannot parse {what} as JSON: {source}")]
    Json {
        /// The file, or what was parsed.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A key could not be used.
    #[error("invalid key {key}: {reason}")]
    InvalidKey {
        /// The consumer and key id, or where the key came from.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A consumer, credential or rule is inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl LoadError {
    pub(crate) fn invalid_key(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidKey {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The password is empty or longer than allowed.
    #[error("a password must be 1 to {max} bytes")]
    BadLength {
        /// The longest password accepted, in bytes.
        max: usize,
    },
    /// A stored hash is not an argon2id hash in PHC form.
    #[error("not an argon2id password hash")]
    NotArgon2id,
    /// A stored hash uses weaker parameters than the minimum.
    #[error("password hash parameters below m = {min_kib} KiB, t = {min_t}, p = 1")]
    TooWeak {
        /// Least memory, in KiB.
        min_kib: u32,
        /// Least passes.
        min_t: u32,
    },
    /// The hashing library failed.
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

impl PasswordError {
    /// A stable machine code.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::BadLength { .. } => "password_length",
            Self::NotArgon2id => "password_hash_format",
            Self::TooWeak { .. } => "password_hash_weak",
            Self::Hashing(_) => "password_hashing",
        }
    }
}

/// Why the issuer could not sign a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// No consumer has that name.
    #[error("no consumer called {0}")]
    UnknownConsumer(String),
    /// The consumer has no credential the issuer can sign with (no secret, no private key).
    #[error("consumer {0} has no key to sign with")]
    NoSigningKey(String),
    /// The extra claims try to set a claim the issuer owns.
    #[error("claim {0} is set by the issuer")]
    ReservedClaim(String),
    /// The time to live is zero or too long.
    #[error("invalid time to live: {0}")]
    InvalidTtl(String),
    /// The crypto backend failed.
    #[error("signing failed: {0}")]
    Signing(#[source] jsonwebtoken::errors::Error),
    /// A service's assertion key could not be derived from the bus key.
    #[error("cannot derive a service's assertion key: {0}")]
    KeyDerivation(String),
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_code_is_unique_snake_case() {
        let codes: HashSet<_> = AuthError::ALL.iter().map(AuthError::code).collect();
        assert_eq!(codes.len(), AuthError::ALL.len());
        for code in codes {
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
        }
    }

    #[test]
    fn messages_carry_no_detail_beyond_the_code() {
        assert_eq!(
            AuthError::BadSignature.to_string(),
            "the token's signature is invalid"
        );
    }
}
