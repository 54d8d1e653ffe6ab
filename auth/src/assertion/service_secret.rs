//! Per-service assertion secrets: a service that holds one is sent HS256
//! assertions instead of Ed25519 ones.
//!
//! Checking an Ed25519 signature costs a service ~40 µs per message and
//! making one costs the router ~11 µs; an HMAC-SHA256 costs ~1 µs each. The
//! price is a shared secret, so each service gets its own: the routers derive
//! it from the bus's key and the service's name (HKDF-SHA256), and a service
//! holding it can mint assertions for its own routes only — which it could
//! serve itself anyway. Another service's secret, or the bus key, it never
//! sees. Which kind a service checks it says when it registers
//! ([`AssertionAlg`]); an older service says nothing and keeps Ed25519.

use std::fmt;

use aws_lc_rs::hmac;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use crate::error::LoadError;

/// Which signature a service checks on its assertions, as it announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
pub enum AssertionAlg {
    /// Ed25519 with the bus's public key (the default: a service needs no secret).
    #[default]
    #[serde(rename = "eddsa")]
    EdDSA,
    /// HMAC-SHA256 with the service's own [`ServiceSecret`].
    #[serde(rename = "hs256")]
    HS256,
}

impl AssertionAlg {
    /// The name on the wire (`eddsa`, `hs256`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "eddsa",
            Self::HS256 => "hs256",
        }
    }

    /// Whether this is the default, Ed25519 (left out of registrations).
    pub fn is_default(&self) -> bool {
        *self == Self::EdDSA
    }
}

/// One service's 32-byte assertion secret; its text form is unpadded base64url.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceSecret([u8; 32]);

impl ServiceSecret {
    /// The secret from its text form (surrounding whitespace ignored, so a
    /// file with a trailing newline reads as it was written).
    pub fn from_text(text: &str) -> Result<Self, LoadError> {
        let fail = |why: &str| LoadError::invalid_key("service assertion secret", why);
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| fail("not unpadded base64url"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| fail("not 32 bytes (43 base64url characters)"))?;
        Ok(Self(bytes))
    }

    /// The text form, for `tollgate keys service-secret`.
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub(crate) fn hmac_key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.0)
    }
}

impl fmt::Debug for ServiceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceSecret(..)")
    }
}

/// The HKDF info a service's secret is derived with: a fixed label, a NUL
/// (service names never hold one) and the service's name.
pub(crate) fn derivation_info(service: &str) -> Vec<u8> {
    let mut info = b"tollgate assertion hs256 v1\0".to_vec();
    info.extend_from_slice(service.as_bytes());
    info
}

/// The service a route belongs to: its first segment (`orders` for `orders.create`).
pub(crate) fn route_service(route: &str) -> &str {
    route.split_once('.').map_or(route, |(service, _)| service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_round_trips_through_its_text_and_hides_in_debug() {
        let secret = ServiceSecret::from_bytes([7; 32]);
        let text = secret.to_text();
        assert_eq!(text.len(), 43);
        assert_eq!(
            ServiceSecret::from_text(&format!("{text}\n")).unwrap(),
            secret
        );
        assert_eq!(format!("{secret:?}"), "ServiceSecret(..)");
    }

    #[test]
    fn a_secret_of_the_wrong_length_or_alphabet_is_refused() {
        for bad in ["", "c2hvcnQ", "not base64 at all!", &"A".repeat(44)] {
            let err = ServiceSecret::from_text(bad).unwrap_err();
            assert!(
                err.to_string().contains("service assertion secret"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_service_is_the_first_segment_of_a_route() {
        assert_eq!(route_service("orders.create"), "orders");
        assert_eq!(route_service("orders.v2.create"), "orders");
        assert_eq!(route_service("orders"), "orders");
    }
}
