//! The bus-signed context a request carries to its service and back, so the
//! router can translate and forward the reply without keeping any state —
//! and no service or stray publisher can make it write to another queue.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::time::unix_now;

/// How long a reply may take before its context is refused (a day).
pub const CONTEXT_LIFETIME_SECS: u64 = 24 * 60 * 60;

/// Where and how a reply goes back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyContext {
    /// The caller's reply queue.
    #[serde(rename = "r")]
    pub caller_reply_to: String,
    /// The caller's content type.
    #[serde(rename = "c")]
    pub caller_content_type: String,
    /// The caller's schema version.
    #[serde(rename = "v")]
    pub caller_version: String,
    /// The service replying.
    #[serde(rename = "s")]
    pub service: String,
    /// The service's content type.
    #[serde(rename = "sc")]
    pub service_content_type: String,
    /// The service's schema version.
    #[serde(rename = "sv")]
    pub service_version: String,
    /// Seconds since the Unix epoch after which the context is refused.
    #[serde(rename = "e")]
    pub expires_at: u64,
}

/// Why a reply context was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyContextError {
    /// Not `payload.mac` in base64url, or not a context.
    #[error("reply context is malformed")]
    Malformed,
    /// The MAC does not match: forged or altered.
    #[error("reply context signature does not verify")]
    BadSignature,
    /// Past its lifetime.
    #[error("reply context expired")]
    Expired,
}

/// The HMAC-SHA256 key shared by every router instance of a bus.
#[derive(Clone)]
pub struct ReplyContextKey([u8; 32]);

impl ReplyContextKey {
    /// Derives the key from secret material every router instance shares
    /// (the bus's assertion private key), with domain separation.
    pub fn derive(secret: &[u8]) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"tollgate reply context v1\0");
        hash.update(secret);
        Self(hash.finalize().into())
    }

    /// `base64url(json).base64url(mac)`.
    pub fn sign(&self, context: &ReplyContext) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(context).unwrap_or_default());
        let mac = URL_SAFE_NO_PAD.encode(self.mac(body.as_bytes()));
        format!("{body}.{mac}")
    }

    /// Checks the MAC (in constant time) and the lifetime.
    pub fn verify(&self, token: &str) -> Result<ReplyContext, ReplyContextError> {
        let (body, mac) = token.split_once('.').ok_or(ReplyContextError::Malformed)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| ReplyContextError::Malformed)?;
        let mut check = self.hmac();
        check.update(body.as_bytes());
        check
            .verify_slice(&mac)
            .map_err(|_| ReplyContextError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| ReplyContextError::Malformed)?;
        let context: ReplyContext =
            serde_json::from_slice(&json).map_err(|_| ReplyContextError::Malformed)?;
        if context.expires_at < unix_now() {
            return Err(ReplyContextError::Expired);
        }
        Ok(context)
    }

    fn hmac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; 32 bytes cannot fail.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }

    fn mac(&self, body: &[u8]) -> Vec<u8> {
        let mut mac = self.hmac();
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }
}

impl std::fmt::Debug for ReplyContextKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyContextKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(expires_at: u64) -> ReplyContext {
        ReplyContext {
            caller_reply_to: "tg.caller.x".into(),
            caller_content_type: "application/json".into(),
            caller_version: "2".into(),
            service: "billing".into(),
            service_content_type: "application/msgpack".into(),
            service_version: "1".into(),
            expires_at,
        }
    }

    #[test]
    fn a_signed_context_verifies() {
        let key = ReplyContextKey::derive(b"secret");
        let token = key.sign(&context(unix_now() + 60));
        assert_eq!(key.verify(&token).unwrap(), context(unix_now() + 60));
    }

    #[test]
    fn an_altered_or_foreign_context_is_refused() {
        let key = ReplyContextKey::derive(b"secret");
        let token = key.sign(&context(unix_now() + 60));
        let mut forged = context(unix_now() + 60);
        forged.caller_reply_to = "tg.svc.billing".into();
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let (_, mac) = token.split_once('.').unwrap();
        assert_eq!(
            key.verify(&format!("{body}.{mac}")),
            Err(ReplyContextError::BadSignature)
        );
        assert_eq!(
            ReplyContextKey::derive(b"other").verify(&token),
            Err(ReplyContextError::BadSignature)
        );
        assert_eq!(key.verify("garbage"), Err(ReplyContextError::Malformed));
        assert_eq!(key.verify(""), Err(ReplyContextError::Malformed));
    }

    #[test]
    fn an_expired_context_is_refused() {
        let key = ReplyContextKey::derive(b"secret");
        let token = key.sign(&context(unix_now() - 1));
        assert_eq!(key.verify(&token), Err(ReplyContextError::Expired));
    }
}
