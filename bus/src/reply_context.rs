//! The sealed context a request carries to its service and back, so the
//! router can translate and forward the reply without keeping any state —
//! and no service or stray publisher can make it write to another queue.
//!
//! The context is encrypted and authenticated (AES-256-GCM-SIV, a random
//! nonce per request) under a key every router of the bus derives from the
//! bus's assertion key: a service sees only opaque bytes, cannot alter them,
//! and cannot use them for another request, since the context names the
//! correlation id its reply must carry and expires with the request.
//!
//! The nonce is the context's id ([`ContextId`]). The router draws it before
//! the gate ([`new_context_id`]), so that a call can be held under it before
//! its context is sealed, and the context can say that it is held.

use aws_lc_rs::aead::{AES_256_GCM_SIV, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use crate::time::unix_now;

/// Default time a service has to answer a request: after it, the reply's
/// context is refused (the caller has long stopped waiting).
pub const DEFAULT_REPLY_TIMEOUT_SECS: u64 = 300;

/// Authenticated with every context, so a context of another format (or
/// another bus key's purpose) never opens.
const AAD: &[u8] = b"tollgate reply context v2";

/// Room for a typical sealed context (id, its JSON, tag) in one allocation.
const SEALED_CAPACITY: usize = 384;

/// Where and how a reply goes back, and which request it answers.
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
    /// The correlation id the reply must carry: the request's, or its message
    /// id when it had none (what a service copies onto its reply).
    #[serde(rename = "k")]
    pub correlation_id: String,
    /// The request's message id.
    #[serde(rename = "m")]
    pub request_id: String,
    /// Seconds since the Unix epoch after which the context is refused.
    #[serde(rename = "e")]
    pub expires_at: u64,
    /// The call is held by the router that sealed the context: its reply is
    /// taken only by that router, while it holds the call, and once (no other
    /// record of the context is kept). A context without it (sealed by an
    /// older router, or for a call delivered durably) is remembered as used.
    #[serde(rename = "h", default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
}

/// Identifies one sealed context (its nonce), to refuse a second reply with it.
pub type ContextId = [u8; NONCE_LEN];

/// A new context id: 96 random bits from the thread's CSPRNG (ChaCha,
/// reseeded from the system), so no two contexts of a bus share a nonce. (The
/// system's generator through aws-lc cost 0.7 µs per call; this one a few ns.)
pub fn new_context_id() -> ContextId {
    rand::random()
}

/// Why a reply context was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyContextError {
    /// Not base64url, too short, or not a context once opened.
    #[error("reply context is malformed")]
    Malformed,
    /// Does not open under the bus key: forged, altered, or another bus's.
    #[error("reply context does not verify")]
    BadSeal,
    /// Past its lifetime: the request's time to be answered is over.
    #[error("reply context expired")]
    Expired,
}

/// The key sealing reply contexts, shared by every router instance of a bus.
pub struct ReplyContextKey(LessSafeKey);

impl ReplyContextKey {
    /// The key from 32 secret bytes every router instance derives alike
    /// (from the bus's assertion key, see `AssertionSigner::derive_key`).
    pub fn new(secret: &[u8; 32]) -> Self {
        // A 32-byte key is exactly what AES-256-GCM-SIV takes.
        let key = UnboundKey::new(&AES_256_GCM_SIV, secret)
            .unwrap_or_else(|_| unreachable!("AES-256 takes a 32-byte key"));
        Self(LessSafeKey::new(key))
    }

    /// `base64url(id ‖ ciphertext ‖ tag)`, sealed with `id` as the nonce (a
    /// [`new_context_id`]: GCM-SIV stays safe even were one ever drawn
    /// twice, short of showing that two contexts were equal); `None` only if
    /// the context cannot be encoded or sealed.
    pub fn seal(&self, id: ContextId, context: &ReplyContext) -> Option<String> {
        let mut sealed = Vec::with_capacity(SEALED_CAPACITY);
        sealed.extend_from_slice(&id);
        serde_json::to_writer(&mut sealed, context).ok()?;
        let tag = self
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(id),
                Aad::from(AAD),
                &mut sealed[NONCE_LEN..],
            )
            .ok()?;
        sealed.extend_from_slice(tag.as_ref());
        Some(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// The id of a context this router sealed itself, read without opening
    /// it (its nonce: the first 16 base64url characters hold the 12 bytes);
    /// `None` when `token` is too short to be one. Trust it only for a token
    /// of one's own making; [`ReplyContextKey::open`] authenticates.
    pub fn id_of(token: &str) -> Option<ContextId> {
        let prefix = token.get(..NONCE_LEN * 4 / 3)?;
        let bytes = URL_SAFE_NO_PAD.decode(prefix).ok()?;
        bytes.try_into().ok()
    }

    /// Opens a sealed context and checks its lifetime.
    pub fn open(&self, token: &str) -> Result<(ReplyContext, ContextId), ReplyContextError> {
        let mut sealed = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| ReplyContextError::Malformed)?;
        if sealed.len() <= NONCE_LEN {
            return Err(ReplyContextError::Malformed);
        }
        let mut id: ContextId = [0; NONCE_LEN];
        id.copy_from_slice(&sealed[..NONCE_LEN]);
        let json = self
            .0
            .open_in_place(
                Nonce::assume_unique_for_key(id),
                Aad::from(AAD),
                &mut sealed[NONCE_LEN..],
            )
            .map_err(|_| ReplyContextError::BadSeal)?;
        let context: ReplyContext =
            serde_json::from_slice(json).map_err(|_| ReplyContextError::Malformed)?;
        if context.expires_at < unix_now() {
            return Err(ReplyContextError::Expired);
        }
        Ok((context, id))
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
            correlation_id: "c-1".into(),
            request_id: "m-1".into(),
            expires_at,
            held: false,
        }
    }

    #[test]
    fn a_sealed_context_opens_and_each_seal_is_distinct() {
        let key = ReplyContextKey::new(&[7; 32]);
        let expires = unix_now() + 60;
        let (one, two) = (new_context_id(), new_context_id());
        assert_ne!(one, two, "96 random bits never repeat");
        let first = key.seal(one, &context(expires)).unwrap();
        let second = key.seal(two, &context(expires)).unwrap();
        assert_ne!(first, second);
        let (opened, id) = key.open(&first).unwrap();
        assert_eq!(opened, context(expires));
        assert_eq!(id, one, "the id is the nonce sealed under");
        assert_eq!(key.open(&second).unwrap().1, two);
        assert_eq!(ReplyContextKey::id_of(&first), Some(id));
        assert_eq!(ReplyContextKey::id_of("short"), None);
    }

    #[test]
    fn a_held_context_says_so_and_an_unheld_one_reads_as_before() {
        let key = ReplyContextKey::new(&[7; 32]);
        let held = ReplyContext {
            held: true,
            ..context(unix_now() + 60)
        };
        let sealed = key.seal(new_context_id(), &held).unwrap();
        assert!(key.open(&sealed).unwrap().0.held);
        let plain = serde_json::to_string(&context(1)).unwrap();
        assert!(
            !plain.contains("\"h\""),
            "an unheld context is the JSON older routers read: {plain}"
        );
    }

    #[test]
    fn a_context_is_opaque() {
        let key = ReplyContextKey::new(&[7; 32]);
        let sealed = key
            .seal(new_context_id(), &context(unix_now() + 60))
            .unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in ["tg.caller.x", "billing", "application", "c-1"] {
            assert!(!text.contains(secret), "`{secret}` readable in the context");
        }
    }

    #[test]
    fn an_altered_or_foreign_context_is_refused() {
        let key = ReplyContextKey::new(&[7; 32]);
        let sealed = key
            .seal(new_context_id(), &context(unix_now() + 60))
            .unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(
            key.open(&URL_SAFE_NO_PAD.encode(&bytes)).unwrap_err(),
            ReplyContextError::BadSeal
        );
        assert_eq!(
            ReplyContextKey::new(&[8; 32]).open(&sealed).unwrap_err(),
            ReplyContextError::BadSeal
        );
        assert_eq!(
            key.open("garbage!").unwrap_err(),
            ReplyContextError::Malformed
        );
        assert_eq!(key.open("").unwrap_err(), ReplyContextError::Malformed);
        assert_eq!(key.open("AAAA").unwrap_err(), ReplyContextError::Malformed);
    }

    #[test]
    fn an_expired_context_is_refused() {
        let key = ReplyContextKey::new(&[7; 32]);
        let sealed = key
            .seal(new_context_id(), &context(unix_now() - 1))
            .unwrap();
        assert_eq!(key.open(&sealed).unwrap_err(), ReplyContextError::Expired);
    }
}
