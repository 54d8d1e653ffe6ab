//! What the central auth service does, apart from the bus: log in, look a
//! credential up, log out, disable a user.

use std::sync::Arc;

use tollgate_auth::{
    AuthError, CredentialHash, Inactive, IntrospectAnswer, Session, SessionLimits, SessionToken,
    User, Verifier,
};
use tollgate_bus::{time::unix_now, trust::LiveTrust};

use crate::error::HandlerError;

use super::{
    announce::SessionsAnnouncer,
    store::{SessionStore, Touched},
    throttle::LoginThrottle,
    users::Users,
    wire::{
        DisableUserReply, LOGIN_FAILED, LOGIN_THROTTLED, LoginReply, LoginRequest, LogoutReply,
        STORE_UNAVAILABLE,
    },
};

/// The central auth service's state and rules.
pub struct AuthCore {
    /// The users (argon2id hashes).
    pub users: Users,
    /// Where sessions live.
    pub store: Arc<dyn SessionStore>,
    /// Idle timeout and absolute lifetime of sessions.
    pub limits: SessionLimits,
    /// Back-off of failed logins.
    pub throttle: LoginThrottle,
    /// Verifies JWTs presented to `introspect` (the bus's callers), if any.
    pub jwt: Option<Arc<Verifier>>,
    /// Tells the routers that sessions ended.
    pub announcer: Option<SessionsAnnouncer>,
    /// Checked for unknown users, so their logins take as long as real ones.
    pub decoy_hash: String,
    /// The trust state applied to `jwt` (with `[trust] redis_url`), followed
    /// while the core lives.
    pub trust: Option<Arc<LiveTrust>>,
}

impl AuthCore {
    /// A core with `users`, sessions in memory, the default session limits
    /// and login back-off (`[central_auth]`'s defaults), no JWT verifier, and
    /// `announcer` (for the demo and the benchmarks).
    ///
    /// Errors when the decoy hash cannot be made.
    pub fn in_memory(
        users: tollgate_auth::UsersFile,
        announcer: Option<SessionsAnnouncer>,
    ) -> Result<Self, crate::error::CentralAuthError> {
        let defaults = tollgate_bus::config::CentralAuthSection::default();
        Ok(Self {
            users: Users::fixed(users),
            store: Arc::new(super::MemorySessionStore::new()),
            limits: SessionLimits::default(),
            throttle: LoginThrottle::new(
                std::time::Duration::from_millis(defaults.login_backoff_base_ms),
                std::time::Duration::from_secs(defaults.login_backoff_max_secs),
            ),
            jwt: None,
            announcer,
            decoy_hash: super::decoy()?,
            trust: None,
        })
    }

    /// `auth.login` by `caller` (the consumer the bus verified).
    ///
    /// Errors: `login_throttled` (with the wait) before checking anything when
    /// the account or source failed too often just now; `login_failed` for an
    /// unknown user, a wrong password or a disabled user alike;
    /// `store_unavailable` when the session cannot be stored.
    pub async fn login(
        &self,
        caller: &str,
        request: LoginRequest,
    ) -> Result<LoginReply, HandlerError> {
        let account = format!("user:{}", request.user);
        let source = format!(
            "source:{caller}/{}",
            request.source.as_deref().unwrap_or("-")
        );
        let keys = [account.as_str(), source.as_str()];
        if let Err(wait) = self.throttle.check(&keys) {
            tracing::info!(user = %request.user, %source, "Login throttled.");
            return Err(HandlerError::new(
                LOGIN_THROTTLED,
                // Rounded up: a caller that waits as told is not refused again.
                format!(
                    "too many failed logins; retry in {} ms",
                    wait.as_micros().div_ceil(1000).max(1)
                ),
            ));
        }
        let users = self.users.current();
        let user = users.get(&request.user).cloned();
        let hash = user
            .as_ref()
            .map_or_else(|| self.decoy_hash.clone(), |u| u.password_hash.clone());
        let password = request.password;
        let matches = tokio::task::spawn_blocking(move || {
            tollgate_auth::verify_password(&password, &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let user = match user {
            Some(user) if matches && !user.disabled => user,
            _ => {
                self.throttle.failed(&keys);
                tracing::info!(target: "tollgate::audit", user = %request.user, %source, "Login failed.");
                return Err(HandlerError::new(
                    LOGIN_FAILED,
                    "wrong user name or password",
                ));
            }
        };
        self.throttle.succeeded(&keys);
        self.start_session(&user).await
    }

    async fn start_session(&self, user: &User) -> Result<LoginReply, HandlerError> {
        let token = SessionToken::generate();
        let session = Session::start(user.name.as_str(), unix_now(), self.limits);
        self.store
            .create(&token.hash(), &session, self.limits)
            .await
            .map_err(store_error)?;
        tracing::info!(target: "tollgate::audit", user = %user.name, "Session started.");
        Ok(LoginReply {
            token: token.as_str().to_owned(),
            expires_at: session.expires_at,
            idle_timeout_secs: self.limits.idle_timeout.as_secs(),
        })
    }

    /// `auth.introspect`: who holds `token` (a session token or a JWT).
    ///
    /// Errors only when the store cannot answer (`store_unavailable`): the
    /// router then retries, and refuses `auth_unavailable` in the end.
    pub async fn introspect(&self, token: &str) -> Result<IntrospectAnswer, HandlerError> {
        if !SessionToken::is_session_token(token) {
            return Ok(self.introspect_jwt(token));
        }
        let hash = CredentialHash::of(token);
        let now = unix_now();
        let session = match self
            .store
            .touch(&hash, now, self.limits)
            .await
            .map_err(store_error)?
        {
            Touched::Live(session) => session,
            Touched::Ended(end) => {
                return Ok(IntrospectAnswer::inactive(match end {
                    tollgate_auth::SessionEnd::Idle => Inactive::SessionIdle,
                    tollgate_auth::SessionEnd::Expired => Inactive::SessionExpired,
                }));
            }
            Touched::Unknown => return Ok(IntrospectAnswer::inactive(Inactive::UnknownSession)),
        };
        let users = self.users.current();
        match users.get(&session.user) {
            Some(user) if !user.disabled => {
                Ok(IntrospectAnswer::active(user.identity(session.expires_at)))
            }
            // Disabled (or removed) since: the session ends now.
            _ => {
                self.store.remove(&hash).await.map_err(store_error)?;
                Ok(IntrospectAnswer::inactive(Inactive::UserDisabled))
            }
        }
    }

    fn introspect_jwt(&self, token: &str) -> IntrospectAnswer {
        let Some(verifier) = &self.jwt else {
            return IntrospectAnswer::inactive(Inactive::InvalidToken);
        };
        match verifier.verify(token) {
            Ok(identity) => IntrospectAnswer::active(Arc::unwrap_or_clone(identity)),
            Err(AuthError::TokenExpired) => IntrospectAnswer::inactive(Inactive::TokenExpired),
            Err(AuthError::TokenRevoked | AuthError::ConsumerDisabled) => {
                IntrospectAnswer::inactive(Inactive::TokenRevoked)
            }
            Err(_) => IntrospectAnswer::inactive(Inactive::InvalidToken),
        }
    }

    /// `auth.logout`: ends the session of `token` at once, in the store and
    /// (announced before answering) in every router's cache.
    pub async fn logout(&self, token: &str) -> Result<LogoutReply, HandlerError> {
        let hash = CredentialHash::of(token);
        let ended = self.store.remove(&hash).await.map_err(store_error)?;
        self.announce(vec![hash], None).await?;
        if let Some(session) = &ended {
            tracing::info!(target: "tollgate::audit", user = %session.user, "Session ended (logout).");
        }
        Ok(LogoutReply {
            ended: ended.is_some(),
        })
    }

    /// `auth.disable_user`: marks `user` disabled (in the users file) and
    /// ends every session of theirs, announced to every router.
    pub async fn disable_user(&self, user: &str) -> Result<DisableUserReply, HandlerError> {
        if self.users.current().get(user).is_none() {
            return Err(HandlerError::not_found(format!("no user `{user}`")));
        }
        self.users
            .update(|file| {
                file.set_disabled(user, true);
            })
            .map_err(|e| {
                tracing::error!(error = %e, "Cannot write the users file.");
                HandlerError::internal("cannot write the users file")
            })?;
        let hashes = self.store.remove_user(user).await.map_err(store_error)?;
        let sessions_ended = hashes.len();
        self.announce(hashes, Some(user.to_owned())).await?;
        tracing::info!(target: "tollgate::audit", %user, sessions_ended, "User disabled.");
        Ok(DisableUserReply { sessions_ended })
    }

    /// Tells the routers; a failure is the caller's to retry (the session is
    /// already gone from the store, so a retried logout answers `ended: false`
    /// and announces again).
    async fn announce(
        &self,
        hashes: Vec<CredentialHash>,
        user: Option<String>,
    ) -> Result<(), HandlerError> {
        let Some(announcer) = &self.announcer else {
            return Ok(());
        };
        announcer.ended(hashes, user).await.map_err(|e| {
            tracing::error!(error = %e, "Cannot announce ended sessions to the routers.");
            HandlerError::new(
                "announce_failed",
                "the session ended, but the routers could not be told; retry",
            )
        })
    }
}

fn store_error(e: crate::error::StoreError) -> HandlerError {
    tracing::warn!(error = %e, code = e.code(), "Session store failed.");
    HandlerError::new(STORE_UNAVAILABLE, "the session store is unavailable")
}

#[cfg(test)]
mod tests;
