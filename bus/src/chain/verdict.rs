//! What a step of the gate answers: pass on a value that proves the progress,
//! refuse the message (its fault, never retried), or fail (the
//! infrastructure's fault: the message is requeued).

use tollgate_auth::IssueError;

use crate::{error::TransportError, rejection::Rejection};

/// The outcome of a step that may fail for the message's or for the
/// infrastructure's fault.
#[derive(Debug)]
#[must_use]
pub enum Verdict<T> {
    /// Passed: the proof of progress (an identity, a permit, a target).
    Pass(T),
    /// The message's fault: an error reply and a dead-letter copy, then acked.
    Refused(Rejection),
    /// The infrastructure's fault: requeued and retried after a back-off.
    Failed(InfraError),
}

/// A failure that is not the message's fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InfraError {
    /// The broker did not take the message (connection lost, nack, timeout).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The bus could not sign the assertion (its key is unusable).
    #[error("cannot sign the bus assertion: {0}")]
    Signing(#[source] IssueError),
    /// The bus could not seal the reply context (no randomness for its nonce).
    #[error("cannot seal the reply context")]
    Sealing,
}

impl InfraError {
    /// A stable machine code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Transport(e) => e.code(),
            Self::Signing(_) => "assertion_signing",
            Self::Sealing => "reply_context_sealing",
        }
    }
}
