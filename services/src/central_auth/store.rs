//! Where sessions live: a trait with a Redis implementation (shared by
//! every instance of the service) and an in-memory one (the demo, tests).
//!
//! Sessions are stored under their token's hash, never the token; each
//! expires on its own at the earlier of its idle and absolute deadlines.

use async_trait::async_trait;
use tollgate_auth::{CredentialHash, Session, SessionEnd, SessionLimits};

use crate::error::StoreError;

mod memory;
mod redis;

pub use memory::MemorySessionStore;
pub use redis::RedisSessionStore;

/// What reading a session for use found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    /// The session is live; its use is recorded (its idle deadline moved).
    Live(Session),
    /// The session ended now (and is removed).
    Ended(SessionEnd),
    /// No such session (never issued, logged out, or expired and gone).
    Unknown,
}

/// A store of sessions keyed by token hash.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session, expiring at `session.ends_at(limits)`.
    async fn create(
        &self,
        hash: &CredentialHash,
        session: &Session,
        limits: SessionLimits,
    ) -> Result<(), StoreError>;

    /// Reads the session for a use at `now`: live ones get `last_seen = now`
    /// and a new expiry; ended ones are removed.
    async fn touch(
        &self,
        hash: &CredentialHash,
        now: u64,
        limits: SessionLimits,
    ) -> Result<Touched, StoreError>;

    /// Removes the session; returns it if it existed.
    async fn remove(&self, hash: &CredentialHash) -> Result<Option<Session>, StoreError>;

    /// Removes every session of `user`; returns their hashes.
    async fn remove_user(&self, user: &str) -> Result<Vec<CredentialHash>, StoreError>;
}

/// What a use of `session` at `now` finds, before the store records it.
fn judge(session: Session, now: u64, limits: SessionLimits) -> Touched {
    match session.check(now, limits) {
        Ok(()) => Touched::Live(Session {
            last_seen: now,
            ..session
        }),
        Err(end) => Touched::Ended(end),
    }
}
