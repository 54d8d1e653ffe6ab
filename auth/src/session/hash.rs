//! The hash a credential is stored, cached and invalidated under.

use std::fmt;

use serde::{Deserialize, Serialize};

/// SHA-256 of a credential (base64url). Keys the session store, the routers'
/// introspection caches and the logout broadcast; it cannot be presented as
/// the credential.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CredentialHash(String);

impl CredentialHash {
    /// The hash of `credential` (a session token or a JWT).
    pub fn of(credential: &str) -> Self {
        Self(super::sha256_b64(credential))
    }

    /// A hash as [`CredentialHash::as_str`] wrote it (43 characters of
    /// base64url), e.g. read back from a store; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 43
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Self(text.to_owned()))
    }

    /// The hash as text (43 characters of base64url).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CredentialHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CredentialHash({})", &self.0[..self.0.len().min(8)])
    }
}

impl fmt::Display for CredentialHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
