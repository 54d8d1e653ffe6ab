//! A router's answer to a `register` announcement, sent to the registering
//! instance's private control queue (`<ns>.svc-ctl.<instance>`) through the
//! default exchange, so that a service knows whether it was admitted.
//!
//! Every router answers every registration it judges: with several routers a
//! service hears several answers, and one acceptance admits it (each router
//! builds the same table from the same announcements).

use serde::{Deserialize, Serialize};

use crate::envelope::Envelope;

use super::announce::{ANNOUNCEMENT_CONTENT_TYPE, AnnouncementError};

/// Whether a router admitted a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RegistrationAnswer {
    /// The router routes to the instance's service from now on.
    Accepted {
        /// The registered service.
        service: String,
        /// The registered instance.
        instance: String,
        /// The answering router instance.
        router: String,
    },
    /// The router refused the registration; routing is unchanged.
    Refused {
        /// The service the registration named.
        service: String,
        /// The instance the registration named.
        instance: String,
        /// The answering router instance.
        router: String,
        /// Stable code: an auth code (`claims_invalid`, `token_expired`, …),
        /// `not_granted` or `invalid_registration`.
        code: String,
        /// What was wrong, for the service's operator.
        reason: String,
    },
}

impl RegistrationAnswer {
    /// The answer as a message.
    pub fn to_envelope(&self) -> Result<Envelope, AnnouncementError> {
        Ok(Envelope::new(serde_json::to_vec(self)?).with_content_type(ANNOUNCEMENT_CONTENT_TYPE))
    }

    /// Reads an answer from a message body.
    pub fn from_bytes(body: &[u8]) -> Result<Self, AnnouncementError> {
        Ok(serde_json::from_slice(body)?)
    }

    /// The instance it answers.
    pub fn instance(&self) -> &str {
        match self {
            Self::Accepted { instance, .. } | Self::Refused { instance, .. } => instance,
        }
    }

    /// Whether `instance` may receive an answer: 1 to 128 ASCII letters, digits,
    /// `-` and `_`, so the answer's queue name stays under `<ns>.svc-ctl.`.
    pub fn is_answerable_instance(instance: &str) -> bool {
        (1..=128).contains(&instance.len())
            && instance
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Announcement;

    #[test]
    fn answers_roundtrip_and_are_no_announcements() {
        for answer in [
            RegistrationAnswer::Accepted {
                service: "orders".into(),
                instance: "i-1".into(),
                router: "r-1".into(),
            },
            RegistrationAnswer::Refused {
                service: "orders".into(),
                instance: "i-1".into(),
                router: "r-1".into(),
                code: "claims_invalid".into(),
                reason: "credential refused".into(),
            },
        ] {
            let env = answer.to_envelope().unwrap();
            assert_eq!(
                RegistrationAnswer::from_bytes(&env.payload).unwrap(),
                answer
            );
            assert!(Announcement::from_bytes(&env.payload).is_err());
        }
        let discover = Announcement::Discover.to_envelope(None).unwrap();
        assert!(RegistrationAnswer::from_bytes(&discover.payload).is_err());
    }

    #[test]
    fn only_plain_instance_ids_are_answered() {
        assert!(RegistrationAnswer::is_answerable_instance("0f3a9c-b_1"));
        for bad in ["", "a.b", "a*", "#", "a b", &"x".repeat(129)] {
            assert!(!RegistrationAnswer::is_answerable_instance(bad), "{bad}");
        }
    }
}
