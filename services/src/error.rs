//! The errors of the SDK: [`HandlerError`] is what a handler returns,
//! [`ServiceError`] what building or running a service fails with, and
//! [`CallError`] what a caller gets instead of a reply.
//!
//! Every error has a stable snake_case `code()`, for logs and error replies.

use std::time::Duration;

use tollgate_bus::{TransportError, translate::TranslateError};

/// A handler's refusal: becomes an error reply `{"error":{"code","stage":"service","message"}}`.
///
/// The request is still acked: a handler error is an answer, never a retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({code})")]
pub struct HandlerError {
    code: String,
    message: String,
}

/// Why a service could not be built or stopped running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The service name is not a valid service name (lowercase letters, digits, `-`, `_`).
    #[error("`{0}` is not a valid service name")]
    InvalidName(String),
    /// A method name is empty or contains `*`, `#` or whitespace.
    #[error("`{0}` is not a valid method name")]
    InvalidMethod(String),
    /// Two handlers were registered for one method.
    #[error("method `{0}` has two handlers")]
    DuplicateMethod(String),
    /// The service has no handler.
    #[error("the service has no handler")]
    NoHandlers,
    /// Neither a bus key nor a verifier was given, so no message could be admitted.
    #[error("the service needs a bus key (gateway mode) or a verifier (service mode)")]
    NoAuthentication,
    /// The service has no credential to register with.
    #[error("the service needs a credential to register with the router")]
    MissingCredential,
    /// The content type has no codec.
    #[error("content type `{0}` is not supported")]
    UnsupportedContentType(String),
    /// The assertion leeway is above [`tollgate_auth::MAX_ASSERTION_LEEWAY`].
    #[error("an assertion leeway of {0:?} is above the maximum of 300 s")]
    LeewayOutOfRange(Duration),
    /// The broker failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// No router admitted the service within the admission bound (see
    /// [`ServiceBuilder::admission_timeout`](crate::ServiceBuilder::admission_timeout)).
    #[error("no router admitted the service within {after:?}{}", last_refusal.as_ref().map(|r| format!("; last refusal: {r}")).unwrap_or_else(|| "; no router answered".into()))]
    NotAdmitted {
        /// How long the service tried.
        after: Duration,
        /// The last refusal heard (`code: reason`), if any router answered.
        last_refusal: Option<String>,
    },
    /// The service queue's consumer ended (the queue was deleted) and the
    /// queue could not be declared and consumed again.
    #[error("cannot consume {queue} again after {attempts} attempts: {last}")]
    ConsumerLost {
        /// The service queue.
        queue: String,
        /// How many times the instance tried.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        last: TransportError,
    },
    /// A task of the running service ended abnormally.
    #[error("a task of the service failed: {0}")]
    TaskFailed(String),
}

/// Why a request got no reply, or an error reply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The router or the service refused the request (an error reply).
    #[error("{message} ({code} at {stage})")]
    Rejected {
        /// Stable machine code (`forbidden`, `token_expired`, `out_of_stock`, …).
        code: String,
        /// Who refused (`authenticate`, `authorize`, …, `service`).
        stage: String,
        /// Human-readable reason.
        message: String,
    },
    /// No reply came in time. The request may still be processed.
    #[error("no reply within {after:?}")]
    Timeout {
        /// How long the caller waited.
        after: Duration,
    },
    /// The broker failed; the request may not have been sent.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The request body could not be encoded.
    #[error("cannot encode the request: {0}")]
    Encode(#[source] TranslateError),
    /// The reply body could not be decoded into the expected type.
    #[error("cannot decode the reply: {0}")]
    Decode(#[source] TranslateError),
    /// The content type has no codec.
    #[error("content type `{0}` is not supported")]
    UnsupportedContentType(String),
    /// The caller's reply consumer stopped (transport closed or caller closed).
    #[error("the caller is closed")]
    Closed,
}

// === HandlerError ===

impl HandlerError {
    /// An error with a machine `code` (snake_case, e.g. `out_of_stock`) and a
    /// human `message`. Both reach the caller: keep secrets out of them.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }

    /// `invalid_request`: the request is well-formed but not acceptable.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(crate::handler::INVALID_REQUEST, message)
    }

    /// `not_found`: what the request names does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new("not_found", message)
    }

    /// `forbidden`: the service's own rules refuse this caller.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new("forbidden", message)
    }

    /// `handler_failed`: the handler could not do its work.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(crate::handler::HANDLER_FAILED, message)
    }

    /// The machine code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The human message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

// === ServiceError ===

impl ServiceError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidName(_) => "invalid_service_name",
            Self::InvalidMethod(_) => "invalid_method",
            Self::DuplicateMethod(_) => "duplicate_method",
            Self::NoHandlers => "no_handlers",
            Self::NoAuthentication => "no_authentication",
            Self::MissingCredential => "missing_credential",
            Self::UnsupportedContentType(_) => "unsupported_content_type",
            Self::LeewayOutOfRange(_) => "leeway_out_of_range",
            Self::Transport(e) => e.code(),
            Self::NotAdmitted { .. } => "not_admitted",
            Self::ConsumerLost { .. } => "consumer_lost",
            Self::TaskFailed(_) => "task_failed",
        }
    }
}

// === CallError ===

impl CallError {
    /// A stable snake_case code: the rejection's own code for [`CallError::Rejected`].
    pub fn code(&self) -> &str {
        match self {
            Self::Rejected { code, .. } => code,
            Self::Timeout { .. } => "timeout",
            Self::Transport(e) => e.code(),
            Self::Encode(_) => "encode_failed",
            Self::Decode(_) => "decode_failed",
            Self::UnsupportedContentType(_) => "unsupported_content_type",
            Self::Closed => "closed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_errors_keep_code_and_message() {
        let e = HandlerError::new("out_of_stock", "no more widgets");
        assert_eq!(e.code(), "out_of_stock");
        assert_eq!(e.to_string(), "no more widgets (out_of_stock)");
        assert_eq!(HandlerError::internal("x").code(), "handler_failed");
    }

    #[test]
    fn a_rejection_keeps_its_own_code() {
        let e = CallError::Rejected {
            code: "forbidden".into(),
            stage: "authorize".into(),
            message: "no".into(),
        };
        assert_eq!(e.code(), "forbidden");
        assert_eq!(e.to_string(), "no (forbidden at authorize)");
    }
}

/// Why the central auth service's session store failed (not the caller's
/// fault: introspection answers with an error reply, and routers retry).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Redis did not answer or refused the command.
    #[error("session store unavailable: {0}")]
    Unavailable(#[from] redis::RedisError),
    /// A stored session could not be read.
    #[error("corrupt session record: {0}")]
    Corrupt(#[from] serde_json::Error),
}

impl StoreError {
    /// A stable machine code.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "store_unavailable",
            Self::Corrupt(_) => "store_corrupt",
        }
    }
}

/// Why the central auth service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CentralAuthError {
    /// `[central_auth]` lacks something the service needs.
    #[error("central_auth.{field}: {message}")]
    Config {
        /// The missing or bad field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The users file or the consumers could not be loaded.
    #[error(transparent)]
    Load(#[from] tollgate_auth::LoadError),
    /// The session store could not be reached at start.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The service could not be built or run.
    #[error(transparent)]
    Service(Box<ServiceError>),
    /// The trust state (`[trust]`) cannot be followed: a bad store URL, or
    /// the control queue could not be consumed.
    #[error("trust state: {0}")]
    Trust(String),
}

impl From<ServiceError> for CentralAuthError {
    fn from(e: ServiceError) -> Self {
        Self::Service(Box::new(e))
    }
}

impl CentralAuthError {
    /// A stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config { .. } => "config",
            Self::Load(_) => "load",
            Self::Store(e) => e.code(),
            Self::Service(e) => e.code(),
            Self::Trust(_) => "trust_store_unavailable",
        }
    }
}
