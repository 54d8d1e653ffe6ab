//! Opaque session tokens for the central auth service: at least 128 random
//! bits (here 256), handed to the user once and stored only as a hash.
//!
//! A session has an idle timeout (it ends when unused that long) and an
//! absolute lifetime (it ends then however busy it is). The same hash keys
//! the store, the routers' introspection caches and the logout broadcast, so
//! the token itself never leaves the login reply and the caller's messages.

use std::{fmt, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod hash;

pub use hash::CredentialHash;

/// What every session token starts with, so a router or a log reader tells
/// it from a JWT without parsing (a JWT starts with `ey`).
pub const SESSION_TOKEN_PREFIX: &str = "tgs_";
/// Random bytes of a session token (256 bits).
const TOKEN_BYTES: usize = 32;

/// A freshly drawn session token. Its `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after login, however busy.
    pub absolute_lifetime: Duration,
}

/// One session, as the store keeps it (under the token's hash, never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The user it belongs to.
    pub user: String,
    /// Login time, seconds since the Unix epoch.
    pub created_at: u64,
    /// Last use, seconds since the Unix epoch.
    pub last_seen: u64,
    /// The end of its absolute lifetime, seconds since the Unix epoch.
    pub expires_at: u64,
}

/// Why a session no longer admits its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// Unused longer than the idle timeout.
    Idle,
    /// Past its absolute lifetime.
    Expired,
}

// === SessionToken ===

impl SessionToken {
    /// A new token from the operating system's random generator.
    pub fn generate() -> Self {
        let bytes: [u8; TOKEN_BYTES] = rand::random();
        Self(format!(
            "{SESSION_TOKEN_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    /// The token as the user presents it (`Bearer <token>`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hash it is stored and cached under.
    pub fn hash(&self) -> CredentialHash {
        CredentialHash::of(&self.0)
    }

    /// Whether `token` has the shape of a session token (not whether it is live).
    pub fn is_session_token(token: &str) -> bool {
        token
            .strip_prefix(SESSION_TOKEN_PREFIX)
            .is_some_and(|rest| {
                URL_SAFE_NO_PAD
                    .decode(rest)
                    .is_ok_and(|bytes| bytes.len() == TOKEN_BYTES)
            })
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(…)")
    }
}

// === SessionLimits ===

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_lifetime: Duration::from_secs(8 * 3600),
        }
    }
}

// === Session ===

impl Session {
    /// A session for `user` starting at `now`.
    pub fn start(user: impl Into<String>, now: u64, limits: SessionLimits) -> Self {
        Self {
            user: user.into(),
            created_at: now,
            last_seen: now,
            expires_at: now.saturating_add(limits.absolute_lifetime.as_secs()),
        }
    }

    /// Whether the session still admits its holder at `now`.
    pub fn check(&self, now: u64, limits: SessionLimits) -> Result<(), SessionEnd> {
        if now >= self.expires_at {
            return Err(SessionEnd::Expired);
        }
        if now >= self.last_seen.saturating_add(limits.idle_timeout.as_secs()) {
            return Err(SessionEnd::Idle);
        }
        Ok(())
    }

    /// When the session ends if unused from `last_seen` on: the earlier of the
    /// idle deadline and the absolute one (what the store's TTL is set to).
    pub fn ends_at(&self, limits: SessionLimits) -> u64 {
        self.last_seen
            .saturating_add(limits.idle_timeout.as_secs())
            .min(self.expires_at)
    }
}

// === SessionEnd ===

impl SessionEnd {
    /// The stable code introspection answers with.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Idle => "session_idle",
            Self::Expired => "session_expired",
        }
    }
}

/// SHA-256 of `token`, base64url: a token of 256 random bits needs no salt
/// nor slow hash, since nobody can guess it from its hash.
pub(crate) fn sha256_b64(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SessionLimits {
        SessionLimits {
            idle_timeout: Duration::from_secs(60),
            absolute_lifetime: Duration::from_secs(600),
        }
    }

    #[test]
    fn tokens_are_long_random_and_new_each_time() {
        let (a, b) = (SessionToken::generate(), SessionToken::generate());
        assert_ne!(a, b);
        assert!(SessionToken::is_session_token(a.as_str()));
        assert!(a.as_str().len() >= SESSION_TOKEN_PREFIX.len() + 43);
        assert!(!SessionToken::is_session_token("tgs_short"));
        assert!(!SessionToken::is_session_token("eyJhbGciOi.x.y"));
        assert_eq!(format!("{a:?}"), "SessionToken(…)");
    }

    #[test]
    fn the_hash_is_not_the_token_and_is_stable() {
        let t = SessionToken::generate();
        assert_eq!(t.hash(), CredentialHash::of(t.as_str()));
        assert!(!t.hash().as_str().contains(&t.as_str()[4..]));
    }

    #[test]
    fn a_session_ends_when_idle_or_past_its_lifetime() {
        let s = Session::start("ann", 1000, limits());
        assert_eq!(s.check(1059, limits()), Ok(()));
        assert_eq!(s.check(1060, limits()), Err(SessionEnd::Idle));
        let busy = Session {
            last_seen: 1590,
            ..s.clone()
        };
        assert_eq!(busy.check(1599, limits()), Ok(()));
        assert_eq!(busy.check(1600, limits()), Err(SessionEnd::Expired));
        assert_eq!(busy.ends_at(limits()), 1600);
        assert_eq!(s.ends_at(limits()), 1060);
    }
}
