//! A consumer's credential: one key, pinned to exactly one algorithm.

use std::fmt;
use std::path::{Path, PathBuf};

use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};

use crate::error::LoadError;
use crate::jwt::algorithm::Algorithm;
use crate::jwt::keys;

/// One key of a consumer. A token verified with it must say exactly its
/// algorithm in `alg`, whatever else the header claims.
#[derive(Clone)]
pub struct Credential {
    kid: Option<String>,
    algorithm: Algorithm,
    verify: DecodingKey,
    sign: Option<EncodingKey>,
}

/// How a credential is written in a consumers file.
///
/// Exactly one of `secret`, `secret_base64`, `public_key` or `public_key_file`
/// gives the verification key. An asymmetric credential may also carry a
/// private key, which only the issuer uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialSpec {
    /// Key id. A token whose header carries this `kid` selects this credential.
    #[serde(default)]
    pub kid: Option<String>,
    /// The one algorithm accepted for this key.
    pub algorithm: Option<Algorithm>,
    /// HMAC secret, as raw text (at least 32 bytes; 48 for HS384, 64 for HS512).
    #[serde(default)]
    pub secret: Option<String>,
    /// HMAC secret, base64 (standard or URL-safe alphabet).
    #[serde(default)]
    pub secret_base64: Option<String>,
    /// Public key, PEM text.
    #[serde(default)]
    pub public_key: Option<String>,
    /// Public key, path to a PEM file (relative to the consumers file).
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// Private key, PEM text; lets the issuer sign for this consumer.
    #[serde(default)]
    pub private_key: Option<String>,
    /// Private key, path to a PEM file (relative to the consumers file).
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
}

// === Credential ===

impl Credential {
    /// An HMAC credential. Errors if `alg` is not HS* or the secret is too short.
    pub fn hmac(alg: Algorithm, secret: &[u8]) -> Result<Self, LoadError> {
        let (verify, sign) = keys::hmac_keys(alg.as_str(), alg, secret)?;
        Ok(Self {
            kid: None,
            algorithm: alg,
            verify,
            sign: Some(sign),
        })
    }

    /// An asymmetric credential from a PEM public key. Errors if the PEM does not
    /// hold a key of `alg`'s type and size.
    pub fn public_pem(alg: Algorithm, pem: &[u8]) -> Result<Self, LoadError> {
        let verify = keys::public_pem_key(alg.as_str(), alg, pem)?;
        Ok(Self {
            kid: None,
            algorithm: alg,
            verify,
            sign: None,
        })
    }

    /// A credential from an already checked decoding key (used for JWKS keys).
    pub(crate) fn from_parts(kid: String, alg: Algorithm, verify: DecodingKey) -> Self {
        Self {
            kid: Some(kid),
            algorithm: alg,
            verify,
            sign: None,
        }
    }

    /// Sets the key id.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Adds the PEM private key the issuer signs with. Errors if it does not parse for the
    /// credential's algorithm.
    pub fn with_private_pem(mut self, pem: &[u8]) -> Result<Self, LoadError> {
        self.sign = Some(keys::private_pem_key(
            self.label().as_str(),
            self.algorithm,
            pem,
        )?);
        Ok(self)
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm accepted for this key.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Whether the issuer can sign with this credential.
    pub fn can_sign(&self) -> bool {
        self.sign.is_some()
    }

    pub(crate) fn encoding_key(&self) -> Option<&EncodingKey> {
        self.sign.as_ref()
    }

    /// Whether `signature` (base64url, the token's third segment) is a valid signature of
    /// `signing_input` (the first two segments) by this key under its pinned algorithm.
    pub(crate) fn verifies(&self, signing_input: &[u8], signature: &str) -> bool {
        jsonwebtoken::crypto::verify(
            signature,
            signing_input,
            &self.verify,
            self.algorithm.to_jwt(),
        )
        .unwrap_or(false)
    }

    fn label(&self) -> String {
        match &self.kid {
            Some(kid) => format!("{kid} ({})", self.algorithm),
            None => self.algorithm.to_string(),
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("can_sign", &self.can_sign())
            .finish_non_exhaustive()
    }
}

// === CredentialSpec ===

impl CredentialSpec {
    /// Builds the credential, reading key files relative to `base_dir`. `owner` names the
    /// consumer in error messages.
    pub fn build(&self, owner: &str, base_dir: &Path) -> Result<Credential, LoadError> {
        let name = match &self.kid {
            Some(kid) => format!("{owner}/{kid}"),
            None => owner.to_owned(),
        };
        let alg = self
            .algorithm
            .ok_or_else(|| LoadError::invalid_key(&name, "no `algorithm` given"))?;
        let sources = [
            self.secret.is_some(),
            self.secret_base64.is_some(),
            self.public_key.is_some(),
            self.public_key_file.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(LoadError::invalid_key(
                &name,
                "give exactly one of secret, secret_base64, public_key, public_key_file",
            ));
        }
        let credential = if let Some(secret) = &self.secret {
            Credential::hmac(alg, secret.as_bytes())
        } else if let Some(b64) = &self.secret_base64 {
            Credential::hmac(alg, &keys::decode_base64_secret(&name, b64)?)
        } else {
            let pem = match (&self.public_key, &self.public_key_file) {
                (Some(pem), _) => pem.clone().into_bytes(),
                (None, Some(path)) => read(base_dir, path)?,
                (None, None) => Vec::new(),
            };
            Credential::public_pem(alg, &pem)
        }
        .map_err(|e| rename(e, &name))?;
        let credential = match &self.kid {
            Some(kid) => credential.with_kid(kid.clone()),
            None => credential,
        };
        let private = match (&self.private_key, &self.private_key_file) {
            (Some(pem), None) => Some(pem.clone().into_bytes()),
            (None, Some(path)) => Some(read(base_dir, path)?),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(LoadError::invalid_key(
                    &name,
                    "give private_key or private_key_file",
                ));
            }
        };
        match private {
            Some(_) if alg.is_symmetric() => Err(LoadError::invalid_key(
                &name,
                "an HMAC credential takes no private key",
            )),
            Some(pem) => credential
                .with_private_pem(&pem)
                .map_err(|e| rename(e, &name)),
            None => Ok(credential),
        }
    }
}

pub(crate) fn read(base_dir: &Path, path: &Path) -> Result<Vec<u8>, LoadError> {
    let full = base_dir.join(path);
    std::fs::read(&full).map_err(|source| LoadError::Io { path: full, source })
}

fn rename(e: LoadError, name: &str) -> LoadError {
    match e {
        LoadError::InvalidKey { reason, .. } => LoadError::invalid_key(name, reason),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(alg: Algorithm) -> CredentialSpec {
        CredentialSpec {
            algorithm: Some(alg),
            ..CredentialSpec::default()
        }
    }

    #[test]
    fn builds_an_hmac_credential_from_a_raw_secret() {
        let spec = CredentialSpec {
            kid: Some("k1".into()),
            secret: Some("a".repeat(32)),
            ..spec(Algorithm::HS256)
        };
        let credential = spec.build("alice", Path::new(".")).expect("valid");
        assert_eq!(credential.kid(), Some("k1"));
        assert_eq!(credential.algorithm(), Algorithm::HS256);
        assert!(credential.can_sign());
    }

    #[test]
    fn refuses_a_short_secret_and_names_the_consumer() {
        let spec = CredentialSpec {
            secret: Some("short".into()),
            ..spec(Algorithm::HS256)
        };
        let err = spec
            .build("alice", Path::new("."))
            .expect_err("too short")
            .to_string();
        assert!(err.contains("alice"), "{err}");
        assert!(err.contains("at least 32"), "{err}");
    }

    #[test]
    fn refuses_two_key_sources() {
        let spec = CredentialSpec {
            secret: Some("a".repeat(32)),
            public_key: Some("pem".into()),
            ..spec(Algorithm::HS256)
        };
        assert!(spec.build("alice", Path::new(".")).is_err());
    }

    #[test]
    fn refuses_a_missing_algorithm() {
        let spec = CredentialSpec {
            secret: Some("a".repeat(32)),
            ..CredentialSpec::default()
        };
        assert!(spec.build("alice", Path::new(".")).is_err());
    }

    #[test]
    fn reports_a_missing_key_file() {
        let spec = CredentialSpec {
            public_key_file: Some("does-not-exist.pem".into()),
            ..spec(Algorithm::RS256)
        };
        let err = spec
            .build("alice", Path::new("/nonexistent"))
            .expect_err("missing");
        assert!(matches!(err, LoadError::Io { .. }));
    }
}
