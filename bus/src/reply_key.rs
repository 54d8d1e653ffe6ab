//! A caller's proof that the reply queue it names is its own.
//!
//! A caller draws a 256-bit secret and names its reply queue after the
//! secret's SHA-256 (`<ns>.caller.<base64url(sha256(secret))>`); each request
//! carries the secret in [`REPLY_KEY`](crate::headers::REPLY_KEY). The router
//! writes a reply, or an error reply, only into a queue whose name the
//! request's secret opens. Anyone may learn a queue's name (the management
//! UI lists them), nobody but its caller knows the secret: no request can make
//! the router write into another caller's queue, authenticated or not. The
//! secret never leaves the router (it is stripped with the other reserved
//! headers), so a service never learns it.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use crate::{envelope::Envelope, headers, names::BusNames};

/// Bytes of a reply key's secret.
const SECRET_LEN: usize = 32;

/// One caller's reply-queue secret and the queue id it opens.
#[derive(Clone)]
pub struct ReplyKey {
    secret: String,
    id: String,
}

impl ReplyKey {
    /// A fresh secret from the operating system's random generator.
    pub fn generate() -> Self {
        let secret: [u8; SECRET_LEN] = rand::random();
        Self {
            secret: URL_SAFE_NO_PAD.encode(secret),
            id: commitment(&secret),
        }
    }

    /// The queue id this key opens (the last segment of the caller queue).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The caller queue this key opens on the bus named by `names`.
    pub fn queue(&self, names: &BusNames) -> String {
        names.caller_queue(&self.id)
    }

    /// The secret as the request header carries it (base64url).
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Points `envelope`'s reply at this key's queue, with the proof.
    pub fn attach(&self, names: &BusNames, envelope: &mut Envelope) {
        envelope.reply_to = Some(self.queue(names));
        envelope
            .headers
            .insert(headers::REPLY_KEY, self.secret.as_str());
    }

    /// Whether `secret` (a request's header, base64url) opens the queue `id`.
    pub fn opens(id: &str, secret: &str) -> bool {
        // Both sides are public once compared (the id is a queue name), so a
        // plain comparison leaks nothing.
        Self::decode_secret(secret).is_some_and(|bytes| commitment(&bytes) == id)
    }

    /// The secret's bytes, when `secret` (a request's header) is a well-formed
    /// key: 32 bytes in base64url without padding.
    pub fn decode_secret(secret: &str) -> Option<Vec<u8>> {
        URL_SAFE_NO_PAD
            .decode(secret)
            .ok()
            .filter(|bytes| bytes.len() == SECRET_LEN)
    }
}

impl fmt::Debug for ReplyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn commitment(secret: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_opens_its_own_queue_only() {
        let key = ReplyKey::generate();
        let other = ReplyKey::generate();
        assert!(ReplyKey::opens(key.id(), key.secret()));
        assert!(!ReplyKey::opens(other.id(), key.secret()));
        assert!(!ReplyKey::opens(key.id(), key.id()));
        assert!(!ReplyKey::opens(key.id(), ""));
        assert!(!ReplyKey::opens(key.id(), "not base64 !"));
        assert_eq!(
            key.queue(&BusNames::new("tg")),
            format!("tg.caller.{}", key.id())
        );
    }

    #[test]
    fn attach_sets_the_queue_and_the_proof() {
        let key = ReplyKey::generate();
        let mut envelope = Envelope::new("{}");
        key.attach(&BusNames::new("tg"), &mut envelope);
        assert_eq!(
            envelope.reply_to.as_deref(),
            Some(key.queue(&BusNames::new("tg")).as_str())
        );
        assert_eq!(
            envelope.headers.get_str(headers::REPLY_KEY),
            Some(key.secret())
        );
        assert!(!format!("{key:?}").contains(key.secret()));
    }
}
