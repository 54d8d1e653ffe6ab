//! Sessions in Redis, shared by every instance of the auth service.
//!
//! * `<prefix>session:<hash>`: the session as JSON, expiring (`PXAT`) a
//!   minute after the earlier of its idle and absolute deadlines (the service
//!   checks the deadlines exactly; the minute lets it say which one passed);
//!   each use moves it.
//! * `<prefix>user:<name>`: the set of the user's session hashes (to end
//!   them all when the user is disabled), expiring with the user's newest
//!   session's absolute lifetime.
//!
//! The connection is [`tollgate_bus::redis_connection`]'s: a command on a broken
//! connection fails (the caller sees `store_unavailable`) and the manager
//! reconnects in the background, so a restarted Redis is used again without
//! restarting the service.

use async_trait::async_trait;
use redis::{AsyncCommands, aio::ConnectionManager};
use tollgate_auth::{CredentialHash, Session, SessionLimits};
use tollgate_bus::redis_connection;

use super::{SessionStore, Touched, judge};
use crate::error::StoreError;

/// How long an ended session's record outlives its end, so a use just after
/// it is told why (`session_idle`, `session_expired`) rather than
/// `unknown_session`; the service checks the exact deadlines itself.
const ENDED_GRACE_SECS: u64 = 60;

/// A [`SessionStore`] in Redis.
#[derive(Clone)]
pub struct RedisSessionStore {
    connection: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessionStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisSessionStore {
    /// Connects to `url`; every key starts with `prefix`.
    ///
    /// Errors when the URL is invalid or Redis does not answer now (later
    /// outages are survived: see the module docs).
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let connection = redis_connection::connect(client, 3).await?;
        Ok(Self {
            connection,
            prefix: prefix.into(),
        })
    }

    fn session_key(&self, hash: &CredentialHash) -> String {
        format!("{}session:{hash}", self.prefix)
    }

    fn user_key(&self, user: &str) -> String {
        format!("{}user:{user}", self.prefix)
    }
}

/// `at` (seconds since the epoch) in milliseconds, for `PXAT`/`PEXPIREAT`.
fn millis(at: u64) -> u64 {
    at.saturating_mul(1000)
}

/// When the record of a session ending at `ends_at` leaves Redis.
fn record_expiry(ends_at: u64) -> u64 {
    millis(ends_at.saturating_add(ENDED_GRACE_SECS))
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn create(
        &self,
        hash: &CredentialHash,
        session: &Session,
        limits: SessionLimits,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(session)?;
        let user_key = self.user_key(&session.user);
        let mut c = self.connection.clone();
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.session_key(hash))
            .arg(json)
            .arg("PXAT")
            .arg(record_expiry(session.ends_at(limits)))
            .ignore()
            .sadd(&user_key, hash.as_str())
            .ignore()
            .cmd("PEXPIREAT")
            .arg(&user_key)
            .arg(record_expiry(session.expires_at))
            .arg("GT")
            .ignore()
            // GT does not set an expiry on a key without one: a new set.
            .cmd("PEXPIREAT")
            .arg(&user_key)
            .arg(record_expiry(session.expires_at))
            .arg("NX")
            .ignore()
            .query_async::<()>(&mut c)
            .await?;
        Ok(())
    }

    async fn touch(
        &self,
        hash: &CredentialHash,
        now: u64,
        limits: SessionLimits,
    ) -> Result<Touched, StoreError> {
        let key = self.session_key(hash);
        let mut c = self.connection.clone();
        let Some(json): Option<String> = c.get(&key).await? else {
            return Ok(Touched::Unknown);
        };
        let touched = judge(serde_json::from_str(&json)?, now, limits);
        match &touched {
            Touched::Live(session) => {
                // XX: a logout between the read and this write wins.
                let written: Option<String> = redis::cmd("SET")
                    .arg(&key)
                    .arg(serde_json::to_string(session)?)
                    .arg("PXAT")
                    .arg(record_expiry(session.ends_at(limits)))
                    .arg("XX")
                    .query_async(&mut c)
                    .await?;
                if written.is_none() {
                    return Ok(Touched::Unknown);
                }
            }
            _ => {
                c.del::<_, ()>(&key).await?;
            }
        }
        Ok(touched)
    }

    async fn remove(&self, hash: &CredentialHash) -> Result<Option<Session>, StoreError> {
        let mut c = self.connection.clone();
        let json: Option<String> = redis::cmd("GETDEL")
            .arg(self.session_key(hash))
            .query_async(&mut c)
            .await?;
        let Some(json) = json else {
            return Ok(None);
        };
        let session: Session = serde_json::from_str(&json)?;
        c.srem::<_, _, ()>(self.user_key(&session.user), hash.as_str())
            .await?;
        Ok(Some(session))
    }

    async fn remove_user(&self, user: &str) -> Result<Vec<CredentialHash>, StoreError> {
        let user_key = self.user_key(user);
        let mut c = self.connection.clone();
        let hashes: Vec<String> = c.smembers(&user_key).await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for hash in &hashes {
            pipe.del(format!("{}session:{hash}", self.prefix)).ignore();
        }
        pipe.del(&user_key).ignore();
        pipe.query_async::<()>(&mut c).await?;
        Ok(hashes
            .iter()
            .filter_map(|h| CredentialHash::parse(h))
            .collect())
    }
}
