//! A trust change on the control exchange, signed with a key only the
//! routers hold (derived from the bus's assertion key), fresh and
//! bound to one bus: anyone who can publish to the control exchange can put
//! a message there, but only a router can make one that is applied.

use aws_lc_rs::hmac;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use tollgate_auth::TrustEntry;

/// The HKDF purpose the broadcast key is derived from the bus key with.
pub const BROADCAST_KEY_PURPOSE: &[u8] = b"tollgate trust broadcast";

/// How old (or how far ahead, for clock skew) a broadcast may be; an older
/// one is ignored (a replay), and the periodic re-read from Redis heals
/// whatever a router missed.
pub const MAX_BROADCAST_AGE_SECS: u64 = 60;

/// A signed trust change as it travels: the exact signed bytes and their tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedChange {
    /// JSON of the change, its id, time and bus.
    pub body: String,
    /// HMAC-SHA256 of `body`, base64url.
    pub signature: String,
}

/// What is signed.
#[derive(Debug, Serialize, Deserialize)]
struct Body {
    namespace: String,
    id: String,
    issued_at: u64,
    entry: TrustEntry,
}

/// Why a broadcast is ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BroadcastError {
    /// The signature is missing or wrong: not from a router of this bus.
    #[error("the signature does not verify")]
    BadSignature,
    /// Signed, but not readable (a newer router's format).
    #[error("malformed: {0}")]
    Malformed(String),
    /// For another bus (namespace).
    #[error("for namespace `{0}`")]
    OtherBus(String),
    /// Too old, or too far ahead.
    #[error("issued at {issued_at}, now {now}")]
    Stale {
        /// When it was signed.
        issued_at: u64,
        /// Now.
        now: u64,
    },
}

impl BroadcastError {
    /// A stable code for logs: `bad_signature`, `malformed`, `other_bus`, `stale`.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::BadSignature => "bad_signature",
            Self::Malformed(_) => "malformed",
            Self::OtherBus(_) => "other_bus",
            Self::Stale { .. } => "stale",
        }
    }
}

/// Signs and opens broadcasts of one bus.
#[derive(Clone)]
pub struct BroadcastKey {
    key: hmac::Key,
    namespace: String,
}

impl std::fmt::Debug for BroadcastKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BroadcastKey")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl BroadcastKey {
    /// The key of the bus `namespace`, from `secret` (derived from the bus
    /// key with [`BROADCAST_KEY_PURPOSE`]).
    pub fn new(secret: &[u8; 32], namespace: impl Into<String>) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            namespace: namespace.into(),
        }
    }

    /// Signs `entry` as of `now`, with the unique `id`.
    pub fn seal(&self, entry: &TrustEntry, id: &str, now: u64) -> SignedChange {
        let body = Body {
            namespace: self.namespace.clone(),
            id: id.to_owned(),
            issued_at: now,
            entry: entry.clone(),
        };
        // A struct of strings, numbers and a derived enum: serializing cannot fail.
        let body = serde_json::to_string(&body).unwrap_or_default();
        let tag = hmac::sign(&self.key, body.as_bytes());
        SignedChange {
            signature: URL_SAFE_NO_PAD.encode(tag.as_ref()),
            body,
        }
    }

    /// The id and entry of `signed`, if a router of this bus signed it within
    /// [`MAX_BROADCAST_AGE_SECS`] of `now`.
    pub fn open(
        &self,
        signed: &SignedChange,
        now: u64,
    ) -> Result<(String, TrustEntry), BroadcastError> {
        let tag = URL_SAFE_NO_PAD
            .decode(&signed.signature)
            .map_err(|_| BroadcastError::BadSignature)?;
        hmac::verify(&self.key, signed.body.as_bytes(), &tag)
            .map_err(|_| BroadcastError::BadSignature)?;
        let body: Body = serde_json::from_str(&signed.body)
            .map_err(|e| BroadcastError::Malformed(e.to_string()))?;
        if body.namespace != self.namespace {
            return Err(BroadcastError::OtherBus(body.namespace));
        }
        if body.issued_at.abs_diff(now) > MAX_BROADCAST_AGE_SECS {
            return Err(BroadcastError::Stale {
                issued_at: body.issued_at,
                now,
            });
        }
        Ok((body.id, body.entry))
    }
}

#[cfg(test)]
mod tests {
    use tollgate_auth::TrustChange;

    use super::*;

    fn entry() -> TrustEntry {
        TrustEntry {
            change: TrustChange::RevokeConsumer {
                consumer: "web".into(),
            },
            expires_at: None,
        }
    }

    #[test]
    fn a_sealed_change_opens_with_the_same_key_only() {
        let key = BroadcastKey::new(&[1; 32], "ns");
        let signed = key.seal(&entry(), "id-1", 1000);
        assert_eq!(key.open(&signed, 1010), Ok(("id-1".into(), entry())));
        let other = BroadcastKey::new(&[2; 32], "ns");
        assert_eq!(other.open(&signed, 1010), Err(BroadcastError::BadSignature));
    }

    #[test]
    fn altered_unsigned_stale_and_foreign_broadcasts_are_refused() {
        let key = BroadcastKey::new(&[1; 32], "ns");
        let mut altered = key.seal(&entry(), "id-1", 1000);
        altered.body = altered.body.replace("web", "ops");
        assert_eq!(key.open(&altered, 1000), Err(BroadcastError::BadSignature));
        let unsigned = SignedChange {
            signature: String::new(),
            ..key.seal(&entry(), "id-2", 1000)
        };
        assert_eq!(key.open(&unsigned, 1000), Err(BroadcastError::BadSignature));
        let signed = key.seal(&entry(), "id-3", 1000);
        assert_eq!(key.open(&signed, 1061).unwrap_err().code(), "stale");
        let foreign = BroadcastKey::new(&[1; 32], "other").seal(&entry(), "id-4", 1000);
        assert_eq!(key.open(&foreign, 1000).unwrap_err().code(), "other_bus");
    }
}
