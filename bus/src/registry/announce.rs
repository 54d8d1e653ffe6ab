//! The wire format of registry announcements on the control exchange.
//!
//! A service publishes `register` when it starts, `heartbeat` (the same
//! content) every few seconds, and `deregister` when it stops; a router
//! publishes `discover` when it starts so services announce at once. Service
//! announcements carry the service's credential in the `authorization` header
//! and are verified like any message.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tollgate_auth::{AssertionAlg, CredentialHash};

use crate::{envelope::Envelope, headers, trust::SignedChange};

/// Content type of announcements.
pub const ANNOUNCEMENT_CONTENT_TYPE: &str = "application/json";

/// One announcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Announcement {
    /// An instance starts serving.
    Register(Registration),
    /// An instance is still alive (same content as `register`).
    Heartbeat(Registration),
    /// An instance stops serving.
    Deregister {
        /// Service name.
        service: String,
        /// Instance id.
        instance: String,
    },
    /// A router asks every service to announce itself now.
    Discover,
    /// The central auth service ended sessions (a logout, a disabled user):
    /// every router forgets their cached introspection answers at once.
    /// Heeded only from the service account granted `service`, and only when
    /// `service` is the router's central auth service.
    SessionsEnded {
        /// The central auth service's name.
        service: String,
        /// The ended sessions' token hashes.
        #[serde(default)]
        credential_hashes: Vec<CredentialHash>,
        /// The user whose every session ended (a disabled user), if so.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
    },
    /// A router took a trust change (a revocation, a consumer change): every
    /// router applies it if its signature verifies with the key only routers
    /// hold; it carries no credential.
    TrustChanged(SignedChange),
}

/// What an instance of a service announces about itself.
///
/// Unknown fields are ignored, so newer services can announce more to older
/// routers during a rolling upgrade; unknown kinds are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Service name: the first segment of its routes (`orders` for `orders.create`).
    pub service: String,
    /// Unique id of this instance.
    pub instance: String,
    /// Content type the service accepts and replies in.
    pub content_type: String,
    /// Schema version the service speaks.
    pub schema_version: String,
    /// Seconds after the last heartbeat when the instance is considered gone.
    pub ttl_secs: u64,
    /// How the instance checks assertions: `hs256` with its own service
    /// secret, or `eddsa` (the default, left out) with the bus's public key.
    #[serde(default, skip_serializing_if = "AssertionAlg::is_default")]
    pub assertion: AssertionAlg,
}

/// Why an announcement cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("malformed announcement: {0}")]
pub struct AnnouncementError(#[from] serde_json::Error);

impl Announcement {
    /// The announcement as a message, with `credential` (a bearer token) when given.
    pub fn to_envelope(&self, credential: Option<&str>) -> Result<Envelope, AnnouncementError> {
        let mut envelope =
            Envelope::new(serde_json::to_vec(self)?).with_content_type(ANNOUNCEMENT_CONTENT_TYPE);
        if let Some(token) = credential {
            envelope
                .headers
                .insert(headers::AUTHORIZATION, format!("Bearer {token}"));
        }
        Ok(envelope)
    }

    /// Reads an announcement from a message body.
    pub fn from_bytes(body: &[u8]) -> Result<Self, AnnouncementError> {
        Ok(serde_json::from_slice(body)?)
    }

    /// The service it is about, if any.
    pub fn service(&self) -> Option<&str> {
        match self {
            Self::Register(r) | Self::Heartbeat(r) => Some(&r.service),
            Self::Deregister { service, .. } | Self::SessionsEnded { service, .. } => Some(service),
            Self::Discover | Self::TrustChanged(_) => None,
        }
    }
}

impl Registration {
    /// How long the instance stays registered without a heartbeat.
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_secs)
    }

    /// Whether `service` is a valid service name: lowercase ASCII letters,
    /// digits, `-` and `_`, 1 to 64 bytes (no `.`, `*` or `#`).
    pub fn is_valid_service_name(service: &str) -> bool {
        (1..=64).contains(&service.len())
            && service
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration() -> Registration {
        Registration {
            service: "orders".into(),
            instance: "i-1".into(),
            content_type: "application/json".into(),
            schema_version: "2".into(),
            ttl_secs: 15,
            assertion: Default::default(),
        }
    }

    #[test]
    fn announcements_roundtrip_through_an_envelope() {
        for a in [
            Announcement::Register(registration()),
            Announcement::Heartbeat(registration()),
            Announcement::Deregister {
                service: "orders".into(),
                instance: "i-1".into(),
            },
            Announcement::Discover,
            Announcement::SessionsEnded {
                service: "auth".into(),
                credential_hashes: vec![CredentialHash::of("tgs_x")],
                user: None,
            },
        ] {
            let env = a.to_envelope(Some("tok")).unwrap();
            assert_eq!(
                env.headers.get_str(headers::AUTHORIZATION),
                Some("Bearer tok")
            );
            assert_eq!(Announcement::from_bytes(&env.payload).unwrap(), a);
        }
    }

    #[test]
    fn unknown_kinds_are_refused_and_unknown_fields_ignored() {
        assert!(Announcement::from_bytes(br#"{"kind":"takeover","service":"x"}"#).is_err());
        assert!(Announcement::from_bytes(b"not json").is_err());
        assert!(Announcement::from_bytes(br#"{"kind":"register","service":"x"}"#).is_err());
        let newer = br#"{"kind":"discover","since":"v2"}"#;
        assert_eq!(
            Announcement::from_bytes(newer).unwrap(),
            Announcement::Discover
        );
    }

    #[test]
    fn service_names_are_restricted() {
        assert!(Registration::is_valid_service_name("billing-legacy"));
        assert!(!Registration::is_valid_service_name("orders.create"));
        assert!(!Registration::is_valid_service_name("#"));
        assert!(!Registration::is_valid_service_name(""));
        assert!(!Registration::is_valid_service_name("Orders"));
    }
}
