//! The central auth service's wire format, shared by the service and the
//! routers that ask it (the router knows nothing else of the service).

use serde::{Deserialize, Serialize};

use crate::Identity;

/// The method of the central auth service that answers [`IntrospectRequest`].
pub const INTROSPECT_METHOD: &str = "introspect";
/// The consumer name of the routers' own introspection calls (signed with
/// the bus key, so only a router can be it).
pub const ROUTER_CONSUMER: &str = "tollgate-router";

/// `auth.introspect`: which credential to look up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectRequest {
    /// A session token or a JWT, without `Bearer `.
    pub token: String,
}

/// The answer to [`IntrospectRequest`]: the identity, or why not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntrospectAnswer {
    /// Whether the credential admits its holder now.
    pub active: bool,
    /// Who the holder is (when active).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// Why not (when inactive): [`Inactive::code`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// Why a credential is inactive; the stable codes of an [`IntrospectAnswer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inactive {
    /// No session has this token (never issued, logged out, or ended).
    UnknownSession,
    /// The session was unused longer than its idle timeout.
    SessionIdle,
    /// The session is past its absolute lifetime.
    SessionExpired,
    /// The user is disabled.
    UserDisabled,
    /// A JWT that has expired.
    TokenExpired,
    /// A JWT that was revoked, or whose consumer is disabled.
    TokenRevoked,
    /// Neither a live session nor a valid JWT.
    InvalidToken,
}

// === IntrospectAnswer ===

impl IntrospectAnswer {
    /// An active credential held by `identity`.
    pub fn active(identity: Identity) -> Self {
        Self {
            active: true,
            identity: Some(identity),
            code: None,
        }
    }

    /// An inactive credential.
    pub fn inactive(why: Inactive) -> Self {
        Self {
            active: false,
            identity: None,
            code: Some(why.code().to_owned()),
        }
    }
}

// === Inactive ===

impl Inactive {
    /// The stable snake_case code.
    pub const fn code(self) -> &'static str {
        match self {
            Self::UnknownSession => "unknown_session",
            Self::SessionIdle => "session_idle",
            Self::SessionExpired => "session_expired",
            Self::UserDisabled => "user_disabled",
            Self::TokenExpired => "token_expired",
            Self::TokenRevoked => "token_revoked",
            Self::InvalidToken => "invalid_token",
        }
    }

    /// The reason for `code`, if it is one of these codes.
    pub fn from_code(code: &str) -> Option<Self> {
        [
            Self::UnknownSession,
            Self::SessionIdle,
            Self::SessionExpired,
            Self::UserDisabled,
            Self::TokenExpired,
            Self::TokenRevoked,
            Self::InvalidToken,
        ]
        .into_iter()
        .find(|i| i.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_roundtrip_as_json() {
        let active = IntrospectAnswer::active(Identity::new("ann").with_groups(["staff"]));
        let json = serde_json::to_string(&active).unwrap();
        assert_eq!(
            serde_json::from_str::<IntrospectAnswer>(&json).unwrap(),
            active
        );
        let idle = IntrospectAnswer::inactive(Inactive::SessionIdle);
        assert_eq!(
            serde_json::to_string(&idle).unwrap(),
            r#"{"active":false,"code":"session_idle"}"#
        );
        assert_eq!(
            Inactive::from_code("session_idle"),
            Some(Inactive::SessionIdle)
        );
        assert_eq!(Inactive::from_code("nope"), None);
    }
}
