//! Gateway-mode authentication: exactly one bearer credential, verified with
//! `tollgate-auth`, stripped (by default) before the service sees the message.

use std::sync::Arc;

use async_trait::async_trait;
use tollgate_auth::{AuthError, Verifier, bearer_token};

use crate::{
    envelope::Envelope,
    header_map::HeaderValue,
    headers,
    rejection::{RejectCode, Rejection, Stage},
};

use super::{AuthMode, Context, Interceptor};

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
/// precise one goes to the audit log.
fn rejection(e: AuthError) -> Rejection {
    let (code, reason) = match e {
        AuthError::TokenMissing => (RejectCode::TokenMissing, "no credential"),
        AuthError::TokenTooLarge => (RejectCode::TokenTooLarge, "credential too large"),
        AuthError::TokenExpired => (RejectCode::TokenExpired, "credential expired"),
        AuthError::TokenRevoked | AuthError::ConsumerDisabled => {
            (RejectCode::TokenRevoked, "credential revoked")
        }
        _ => (RejectCode::InvalidToken, "credential invalid"),
    };
    tracing::info!(auth.code = e.code(), "Credential refused.");
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

#[async_trait]
impl Interceptor for Authenticate {
    fn stage(&self) -> Stage {
        Stage::Authenticate
    }

    fn name(&self) -> &'static str {
        "authenticate"
    }

    async fn intercept(
        &self,
        mut envelope: Envelope,
        cx: &mut Context,
    ) -> Result<Envelope, Rejection> {
        let presented = credential(&envelope)?;
        if cx.mode == AuthMode::Service {
            // The service verifies; the credential travels on untouched.
            return Ok(envelope);
        }
        if self.strip_credential {
            envelope
                .headers
                .retain(|name, _| !name.eq_ignore_ascii_case(headers::AUTHORIZATION));
        }
        let identity = match presented {
            None if self.allow_anonymous => return Ok(envelope),
            None => return Err(rejection(AuthError::TokenMissing)),
            Some(value) => bearer_token(Some(&value))
                .and_then(|t| self.verifier.verify(t))
                .map_err(rejection)?,
        };
        envelope.identity = Some(identity.clone());
        cx.identity = Some(identity);
        Ok(envelope)
    }
}
