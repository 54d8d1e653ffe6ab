//! Why a message was refused: a stable machine code, the stage, and a reason.

use std::fmt;

/// Stable machine codes of refusals. Callers match on [`RejectCode::as_str`];
/// the strings never change once published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectCode {
    /// No credential was presented where one is required.
    TokenMissing,
    /// The credential is larger than allowed.
    TokenTooLarge,
    /// The credential is invalid: malformed, wrong algorithm, unknown key, bad
    /// signature, not yet valid, or bad claims (the precise reason is logged, not told).
    InvalidToken,
    /// The credential has expired.
    TokenExpired,
    /// The credential was revoked or its consumer disabled.
    TokenRevoked,
    /// More than one credential was presented.
    AmbiguousCredential,
    /// A central-mode route: the central auth service did not answer in
    /// time (after retries), so nobody could say who the caller is.
    AuthUnavailable,
    /// The caller may not call this route.
    Forbidden,
    /// No service serves this route.
    NoRoute,
    /// The payload cannot be decoded or translated.
    BadPayload,
    /// The message exceeds a size or header limit.
    TooLarge,
    /// The `reply_to` names a queue the caller may not write to.
    BadReplyTo,
    /// The message did not pass the router (missing or bad bus assertion).
    NotFromBus,
    /// The service's handler failed.
    HandlerFailed,
    /// The broker dead-lettered the message (delivery limit, expiry, a full
    /// queue, or a consumer's reject without requeue) before anyone refused it.
    DeadLettered,
    /// A request waited for its service longer than the bus re-admits
    /// (`[router] readmit_max_age_secs`).
    Stale,
    /// The message's AMQP properties cannot be read (a short string that is
    /// not UTF-8, which RabbitMQ passes through): nothing about it can be
    /// checked, so it is refused unread.
    Unreadable,
}

/// The step of the pipeline that refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// Size and header limits, before anything is parsed.
    Limits,
    /// Credential verification.
    Authenticate,
    /// Access policy.
    Authorize,
    /// Codec and schema translation.
    Translate,
    /// Registry lookup.
    Route,
    /// The service itself.
    Service,
    /// The broker, which dead-lettered the message on its own.
    Broker,
}

/// A refused message: the message's fault, never retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} ({})", .code.as_str())]
pub struct Rejection {
    /// Stable machine code.
    pub code: RejectCode,
    /// Where it was refused.
    pub stage: Stage,
    /// Human-readable reason, free of secrets.
    pub reason: String,
}

// === RejectCode ===

impl RejectCode {
    /// The stable snake_case code.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TokenMissing => "token_missing",
            Self::TokenTooLarge => "token_too_large",
            Self::InvalidToken => "invalid_token",
            Self::TokenExpired => "token_expired",
            Self::TokenRevoked => "token_revoked",
            Self::AmbiguousCredential => "ambiguous_credential",
            Self::AuthUnavailable => "auth_unavailable",
            Self::Forbidden => "forbidden",
            Self::NoRoute => "no_route",
            Self::BadPayload => "bad_payload",
            Self::TooLarge => "too_large",
            Self::BadReplyTo => "bad_reply_to",
            Self::NotFromBus => "not_from_bus",
            Self::HandlerFailed => "handler_failed",
            Self::DeadLettered => "dead_lettered",
            Self::Stale => "stale",
            Self::Unreadable => "unreadable",
        }
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === Stage ===

impl Stage {
    /// The stable snake_case name of the stage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Limits => "limits",
            Self::Authenticate => "authenticate",
            Self::Authorize => "authorize",
            Self::Translate => "translate",
            Self::Route => "route",
            Self::Service => "service",
            Self::Broker => "broker",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === Rejection ===

impl Rejection {
    /// A rejection with `code` at `stage`.
    pub fn new(code: RejectCode, stage: Stage, reason: impl Into<String>) -> Self {
        Self {
            code,
            stage,
            reason: reason.into(),
        }
    }

    /// The caller may not call this route.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::new(RejectCode::Forbidden, Stage::Authorize, reason)
    }

    /// No service serves this route.
    pub fn no_route(reason: impl Into<String>) -> Self {
        Self::new(RejectCode::NoRoute, Stage::Route, reason)
    }

    /// The payload cannot be decoded or translated.
    pub fn bad_payload(reason: impl Into<String>) -> Self {
        Self::new(RejectCode::BadPayload, Stage::Translate, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_shows_reason_then_code() {
        let r = Rejection::forbidden("consumer `a` may not call `orders.create`");
        assert_eq!(
            r.to_string(),
            "consumer `a` may not call `orders.create` (forbidden)"
        );
        assert_eq!(r.stage.as_str(), "authorize");
    }
}
