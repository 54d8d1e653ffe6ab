//! The error reply a refused request gets: `{"error":{"code","stage","message"}}`.

use serde::{Deserialize, Serialize};

use crate::{envelope::Envelope, headers, rejection::Rejection};

/// Content type of error replies.
pub const ERROR_CONTENT_TYPE: &str = "application/json";

/// Body of an error reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong, in stable terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine code (`forbidden`, `token_expired`, …).
    pub code: String,
    /// Stage that refused (`authenticate`, `authorize`, …, `service`).
    pub stage: String,
    /// Human-readable reason, free of secrets.
    pub message: String,
}

impl ErrorBody {
    /// The body for `rejection`.
    pub fn from_rejection(rejection: &Rejection) -> Self {
        Self {
            error: ErrorDetail {
                code: rejection.code.as_str().to_owned(),
                stage: rejection.stage.as_str().to_owned(),
                message: rejection.reason.clone(),
            },
        }
    }

    /// The error reply to `request`: same correlation id (or the request's id
    /// when it has none), JSON body, the `x-tollgate-error` header; transient,
    /// like every reply.
    pub fn reply_to(&self, request: &Envelope) -> Envelope {
        let body = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        let correlation = request
            .correlation_id
            .clone()
            .unwrap_or_else(|| request.id.clone());
        let mut reply = Envelope::new(body)
            .with_content_type(ERROR_CONTENT_TYPE)
            .with_correlation_id(correlation)
            .for_hop(crate::Hop::Reply);
        reply
            .headers
            .insert(headers::ERROR, self.error.code.as_str());
        reply
    }

    /// Reads an error reply; `None` when `envelope` is not one.
    pub fn from_envelope(envelope: &Envelope) -> Option<Self> {
        envelope.headers.get_str(headers::ERROR)?;
        serde_json::from_slice(&envelope.payload).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_reply_roundtrips_and_keeps_the_correlation_id() {
        let request = Envelope::new("x").with_correlation_id("c-1");
        let reply = ErrorBody::from_rejection(&Rejection::forbidden("no")).reply_to(&request);
        assert_eq!(reply.correlation_id.as_deref(), Some("c-1"));
        assert_eq!(reply.delivery_mode, crate::DeliveryMode::Transient);
        assert_eq!(reply.headers.get_str(headers::ERROR), Some("forbidden"));
        let body = ErrorBody::from_envelope(&reply).unwrap();
        assert_eq!(body.error.stage, "authorize");
        let json: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(json["error"]["code"], "forbidden");
    }

    #[test]
    fn a_plain_reply_is_not_an_error() {
        assert_eq!(ErrorBody::from_envelope(&Envelope::new("{}")), None);
    }
}
