//! Gateway-mode authentication: exactly one bearer credential, verified with
//! `tollgate-auth`, stripped (by default) before the service sees the message.

use std::sync::Arc;

use tollgate_auth::{AuthError, Identity, Verifier, bearer_token};

use crate::{
    envelope::Envelope,
    header_map::HeaderValue,
    headers,
    rejection::{RejectCode, Rejection, Stage},
};

use super::AuthMode;

/// Who sent a message, as far as the gate knows after authentication.
#[derive(Debug, Clone)]
pub enum Authenticated {
    /// The credential was verified: this is the caller.
    Verified(Arc<Identity>),
    /// No credential, and the bus admits anonymous callers (the policy decides).
    Anonymous,
    /// A service-mode route: the service verifies the credential itself.
    Deferred,
    /// A central-mode route: the central auth service vouched for the caller.
    Central(Arc<Identity>),
}

/// What the central auth service said about a central-mode message's
/// credential, asked before the gate runs (the gate never awaits).
pub type Introspected = Result<Arc<Identity>, Rejection>;

/// Verifies the caller's credential (gateway-mode routes only).
pub struct Authenticate {
    verifier: Arc<Verifier>,
    strip_credential: bool,
    allow_anonymous: bool,
}

impl Authenticate {
    /// `allow_anonymous`: a message without credential passes on without
    /// identity (the policy then decides with its anonymous rules).
    pub fn new(verifier: Arc<Verifier>, strip_credential: bool, allow_anonymous: bool) -> Self {
        Self {
            verifier,
            strip_credential,
            allow_anonymous,
        }
    }
}

/// Folds the verifier's precise codes into the few the caller sees; the
/// precise one (`auth.code`) is logged beside the message's id.
fn rejection(e: AuthError, message_id: &str) -> Rejection {
    let (code, reason) = match e {
        AuthError::TokenMissing => (RejectCode::TokenMissing, "no credential"),
        AuthError::TokenTooLarge => (RejectCode::TokenTooLarge, "credential too large"),
        AuthError::TokenExpired => (RejectCode::TokenExpired, "credential expired"),
        AuthError::TokenRevoked | AuthError::ConsumerDisabled => {
            (RejectCode::TokenRevoked, "credential revoked")
        }
        _ => (RejectCode::InvalidToken, "credential invalid"),
    };
    tracing::info!(msg.id = %message_id, auth.code = e.code(), "Credential refused.");
    Rejection::new(code, Stage::Authenticate, reason)
}

/// The one credential of the message: every header named `authorization` in
/// any letter case must be a single string; more than one is ambiguous.
fn credential(envelope: &Envelope) -> Result<Option<String>, Rejection> {
    let mut found = envelope
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(headers::AUTHORIZATION));
    let ambiguous = || {
        Rejection::new(
            RejectCode::AmbiguousCredential,
            Stage::Authenticate,
            "more than one credential",
        )
    };
    let Some((_, value)) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(ambiguous());
    }
    match value {
        HeaderValue::String(s) if s.matches(',').count() == 0 => Ok(Some(s.clone())),
        HeaderValue::String(_) | HeaderValue::Array(_) => Err(ambiguous()),
        _ => Err(Rejection::new(
            RejectCode::InvalidToken,
            Stage::Authenticate,
            "credential invalid",
        )),
    }
}

impl Authenticate {
    /// The verifier of callers' credentials.
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    /// The bearer token of a message, to ask the central auth service (or a
    /// remote key set) about before the gate runs; refuses what gateway mode would
    /// (none, ambiguous, malformed, too large).
    pub fn central_token(&self, envelope: &Envelope) -> Result<String, Rejection> {
        let id = envelope.id.as_str();
        let presented =
            credential(envelope)?.ok_or_else(|| rejection(AuthError::TokenMissing, id))?;
        let token = bearer_token(Some(&presented)).map_err(|e| rejection(e, id))?;
        if token.len() > self.verifier.config().max_token_bytes {
            return Err(rejection(AuthError::TokenTooLarge, id));
        }
        Ok(token.to_owned())
    }

    /// Reads the one credential of the message and, on a gateway-mode route,
    /// verifies it and removes it (when configured to). A service-mode route
    /// passes the credential on untouched: its service verifies it. A
    /// central-mode route takes what the central auth service answered
    /// (`introspected`, asked before) and removes the credential likewise.
    ///
    /// Refuses an ambiguous credential on every route, and a missing or
    /// invalid one on gateway and central routes (unless anonymous callers
    /// are allowed on gateway routes).
    pub fn check(
        &self,
        envelope: &mut Envelope,
        mode: AuthMode,
        introspected: Option<Introspected>,
    ) -> Result<Authenticated, Rejection> {
        let presented = credential(envelope)?;
        if mode == AuthMode::Service {
            return Ok(Authenticated::Deferred);
        }
        if self.strip_credential {
            envelope
                .headers
                .retain(|name, _| !name.eq_ignore_ascii_case(headers::AUTHORIZATION));
        }
        if mode == AuthMode::Central {
            return match introspected {
                Some(answer) => answer.map(Authenticated::Central),
                // The driver asks before the gate; nobody asked: nobody vouched.
                None => Err(crate::central::unasked()),
            };
        }
        let id = envelope.id.as_str();
        match presented {
            None if self.allow_anonymous => Ok(Authenticated::Anonymous),
            None => Err(rejection(AuthError::TokenMissing, id)),
            Some(value) => bearer_token(Some(&value))
                .and_then(|t| self.verifier.verify(t))
                .map(Authenticated::Verified)
                .map_err(|e| rejection(e, id)),
        }
    }
}
