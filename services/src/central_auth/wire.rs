//! The bodies of the central auth service's routes (JSON). Introspection's
//! are in `tollgate-auth` (the routers speak it too).

use serde::{Deserialize, Serialize};

/// Code of a refused login: unknown user, wrong password or disabled user
/// alike (the caller does not learn which).
pub const LOGIN_FAILED: &str = "login_failed";
/// Code of a login refused unchecked because the account or the source
/// failed too often just now; the message says how long to wait.
pub const LOGIN_THROTTLED: &str = "login_throttled";
/// Code of an answer the session store could not give (Redis down).
pub const STORE_UNAVAILABLE: &str = "store_unavailable";

/// `auth.login`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The user's name.
    pub user: String,
    /// The password (never logged).
    pub password: String,
    /// Where the user connects from, as the calling application knows it (an
    /// IP address): failures are also counted per calling consumer and
    /// source. Without it, the calling consumer is the source.
    #[serde(default)]
    pub source: Option<String>,
}

/// The answer to a successful login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginReply {
    /// The session token: present it as `authorization: Bearer <token>`.
    pub token: String,
    /// The end of its absolute lifetime, seconds since the Unix epoch.
    pub expires_at: u64,
    /// It ends when unused this long.
    pub idle_timeout_secs: u64,
}

/// `auth.logout`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// The session token to end.
    pub token: String,
}

/// The answer to a logout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutReply {
    /// Whether a live session ended (false: there was none).
    pub ended: bool,
}

/// `auth.disable_user`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DisableUserRequest {
    /// The user to disable.
    pub user: String,
}

/// The answer to disabling a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisableUserReply {
    /// How many of the user's sessions ended.
    pub sessions_ended: usize,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("user", &self.user)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}
