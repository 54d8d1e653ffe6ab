//! What an introspection answer means for the message: the identity, or the
//! refusal the caller sees (the precise code goes to the audit log).

use std::sync::Arc;

use tollgate_auth::{Identity, Inactive, IntrospectAnswer};

use crate::rejection::{RejectCode, Rejection, Stage};

/// Why an attempt got no usable answer (retried, then `auth_unavailable`).
#[derive(Debug, thiserror::Error)]
pub(super) enum AskError {
    /// The question could not be sent or its reply queue opened.
    #[error("cannot ask the auth service: {0}")]
    Transport(#[from] crate::error::TransportError),
    /// The bus could not sign the question.
    #[error("cannot sign the introspection request: {0}")]
    Signing(#[from] tollgate_auth::IssueError),
    /// No answer within the attempt's bound.
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The reply queue closed while waiting.
    #[error("the reply queue closed")]
    Closed,
    /// An error reply (the service or its store failed, or it refused us).
    #[error("the auth service answered with an error: {0}")]
    ErrorReply(String),
    /// A reply that is no introspection answer.
    #[error("malformed introspection answer: {0}")]
    Malformed(String),
}

/// The identity an answer carries, or the refusal it means.
pub(super) fn judge(
    answer: IntrospectAnswer,
) -> Result<Result<Arc<Identity>, Rejection>, AskError> {
    match (answer.active, answer.identity) {
        (true, Some(identity)) => Ok(Ok(Arc::new(identity))),
        (true, None) => Err(AskError::Malformed("active without an identity".into())),
        (false, _) => {
            let code = answer.code.unwrap_or_default();
            tracing::info!(auth.code = %code, "Central auth: credential inactive.");
            let (reject, reason) = match Inactive::from_code(&code) {
                Some(Inactive::SessionIdle | Inactive::SessionExpired | Inactive::TokenExpired) => {
                    (RejectCode::TokenExpired, "credential expired")
                }
                Some(Inactive::UserDisabled | Inactive::TokenRevoked) => {
                    (RejectCode::TokenRevoked, "credential revoked")
                }
                _ => (RejectCode::InvalidToken, "credential invalid"),
            };
            Ok(Err(Rejection::new(reject, Stage::Authenticate, reason)))
        }
    }
}

/// The refusal when no attempt got an answer.
pub(super) fn unavailable(attempts: u32) -> Rejection {
    Rejection::new(
        RejectCode::AuthUnavailable,
        Stage::Authenticate,
        format!("the central auth service did not answer ({attempts} attempts)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inactive_codes_fold_into_the_gateway_codes() {
        let refused = |why| {
            judge(IntrospectAnswer::inactive(why))
                .unwrap()
                .unwrap_err()
                .code
        };
        assert_eq!(refused(Inactive::SessionIdle), RejectCode::TokenExpired);
        assert_eq!(refused(Inactive::SessionExpired), RejectCode::TokenExpired);
        assert_eq!(refused(Inactive::UserDisabled), RejectCode::TokenRevoked);
        assert_eq!(refused(Inactive::UnknownSession), RejectCode::InvalidToken);
        let active = judge(IntrospectAnswer::active(Identity::new("ann"))).unwrap();
        assert_eq!(active.unwrap().consumer, "ann");
        let hollow = IntrospectAnswer {
            active: true,
            identity: None,
            code: None,
        };
        assert!(judge(hollow).is_err());
        assert_eq!(unavailable(3).code.as_str(), "auth_unavailable");
    }
}
