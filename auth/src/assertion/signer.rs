//! Signing assertions: one per delivered message, so the key pair is parsed
//! once, each service's HMAC key derived once and the (fixed) JWS headers
//! encoded once; each assertion costs one claims serialization and one
//! Ed25519 signature or HMAC-SHA256.

use std::{collections::HashMap, sync::Arc, time::Duration};

use aws_lc_rs::{
    encoding::{AsBigEndian, Curve25519SeedBin},
    hkdf::{HKDF_SHA256, Salt},
    hmac,
    signature::Ed25519KeyPair,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use parking_lot::RwLock;
use serde::Serialize;

use crate::clock::{Clock, SystemClock};
use crate::error::{IssueError, LoadError};
use crate::identity::Identity;

use super::service_secret::{AssertionAlg, ServiceSecret, derivation_info, route_service};
use super::{ASSERTION_TYP, DEFAULT_ISSUER};

/// Services whose HMAC keys a signer keeps at most; past it the cache
/// starts over (keys are derived again on use).
const MAX_SERVICE_KEYS: usize = 4096;

/// Bytes reserved for an assertion's claims before they are serialized.
const CLAIMS_CAPACITY: usize = 512;

/// Signs assertions with the bus's Ed25519 key.
#[derive(Clone)]
pub struct AssertionSigner {
    key: Arc<Ed25519KeyPair>,
    kid: Option<String>,
    /// `base64url(header)` of Ed25519 assertions, fixed for this signer.
    header: String,
    /// `base64url(header)` of HS256 assertions.
    hs256_header: String,
    /// Each service's HMAC key, derived on first use.
    service_keys: Arc<RwLock<HashMap<String, Arc<hmac::Key>>>>,
    issuer: String,
    ttl: Duration,
    clock: Arc<dyn Clock>,
}

/// The JWS header of every assertion.
#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
}

/// The claims of one assertion (absent, never null: the verifier refuses a
/// `sub` or `jti` that is not a string).
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: u64,
    exp: u64,
    consumer: &'a str,
    groups: &'a [String],
    scopes: &'a [String],
    claims: &'a std::collections::BTreeMap<String, serde_json::Value>,
    route: &'a str,
    mid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<&'a str>,
}

impl AssertionSigner {
    /// A signer from the bus's Ed25519 private key (PKCS#8 PEM, v1 or v2);
    /// assertions live 30 s.
    pub fn from_pem(private_pem: &[u8]) -> Result<Self, LoadError> {
        let fail = |what: &str| LoadError::invalid_key("assertion key", what);
        let der =
            pem_body(private_pem, "PRIVATE KEY").ok_or_else(|| fail("not a PEM private key"))?;
        let key = Ed25519KeyPair::from_pkcs8(&der)
            .map_err(|_| fail("not an Ed25519 PKCS#8 private key"))?;
        Ok(Self {
            key: Arc::new(key),
            kid: None,
            header: encoded_header("EdDSA", None),
            hs256_header: encoded_header("HS256", None),
            service_keys: Arc::default(),
            issuer: DEFAULT_ISSUER.to_owned(),
            ttl: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
        })
    }

    /// Sets how long assertions live (clamped to 1 s – 5 min).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.clamp(Duration::from_secs(1), Duration::from_secs(300));
        self
    }

    /// Puts `kid` in every assertion's header, for key rotation.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        let kid = kid.into();
        self.header = encoded_header("EdDSA", Some(&kid));
        self.kid = Some(kid);
        self
    }

    /// Sets `iss`.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// Replaces the clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// A verifier of this signer's assertions (its public key, under its
    /// `kid` if it has one, and every service's HS256 secret): for the
    /// router, which checks its own.
    pub fn verifier(&self) -> Result<super::AssertionVerifier, LoadError> {
        use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
        use aws_lc_rs::signature::KeyPair;
        let public: PublicKeyX509Der<'_> = self
            .key
            .public_key()
            .as_der()
            .map_err(|_| LoadError::invalid_key("assertion key", "SPKI encoding failed"))?;
        let pem = crate::jwt::keys::pem_encode("PUBLIC KEY", public.as_ref());
        let mut verifier = super::AssertionVerifier::from_public_pem(pem.as_bytes())?
            .with_issuer(self.issuer.clone())
            .with_clock(Arc::clone(&self.clock));
        verifier.mac = Some(super::MacKeys::Bus(self.clone()));
        match &self.kid {
            Some(kid) => verifier.with_key(kid.clone(), pem.as_bytes()),
            None => Ok(verifier),
        }
    }

    /// A 32-byte key for another purpose of the bus, derived with HKDF-SHA256
    /// from this key's Ed25519 seed and `purpose` (the HKDF info). Every
    /// router holding the same key derives the same bytes, however its PEM
    /// file is laid out (PKCS#8 v1 or v2, line breaks, whitespace).
    pub fn derive_key(&self, purpose: &[u8]) -> Result<[u8; 32], LoadError> {
        let fail = || LoadError::invalid_key("assertion key", "cannot derive a key from it");
        let seed = self.key.seed().map_err(|_| fail())?;
        let seed: Curve25519SeedBin<'_> = seed.as_be_bytes().map_err(|_| fail())?;
        let prk = Salt::new(HKDF_SHA256, b"tollgate bus key v1").extract(seed.as_ref());
        let mut out = [0u8; 32];
        prk.expand(&[purpose], HKDF_SHA256)
            .and_then(|okm| okm.fill(&mut out))
            .map_err(|_| fail())?;
        Ok(out)
    }

    /// The assertion secret of `service`: what it needs to check HS256
    /// assertions (`tollgate keys service-secret`). Derived from this key, so
    /// every router holding it agrees, and a new bus key means new secrets.
    pub fn service_secret(&self, service: &str) -> Result<ServiceSecret, LoadError> {
        self.derive_key(&derivation_info(service))
            .map(ServiceSecret::from_bytes)
    }

    /// An Ed25519 assertion that `who` calls `route` with message
    /// `message_id`, valid for the ttl (never past the caller's own
    /// credential expiry).
    pub fn sign(
        &self,
        who: &Identity,
        route: &str,
        message_id: &str,
    ) -> Result<String, IssueError> {
        let mut token = self.unsigned(&self.header, who, route, message_id)?;
        let signature = self.key.sign(token.as_bytes());
        push_signature(&mut token, signature.as_ref());
        Ok(token)
    }

    /// Like [`AssertionSigner::sign`], signed as the route's service checks
    /// it: Ed25519, or HS256 with the secret of the service the route
    /// belongs to (its first segment).
    pub fn sign_for(
        &self,
        alg: AssertionAlg,
        who: &Identity,
        route: &str,
        message_id: &str,
    ) -> Result<String, IssueError> {
        match alg {
            AssertionAlg::EdDSA => self.sign(who, route, message_id),
            AssertionAlg::HS256 => {
                let key = self.service_key(route_service(route))?;
                let mut token = self.unsigned(&self.hs256_header, who, route, message_id)?;
                let tag = hmac::sign(&key, token.as_bytes());
                push_signature(&mut token, tag.as_ref());
                Ok(token)
            }
        }
    }

    /// The HMAC key of `service`, derived once.
    pub(super) fn service_key(&self, service: &str) -> Result<Arc<hmac::Key>, IssueError> {
        if let Some(key) = self.service_keys.read().get(service) {
            return Ok(Arc::clone(key));
        }
        let key = Arc::new(
            self.service_secret(service)
                .map_err(|e| IssueError::KeyDerivation(e.to_string()))?
                .hmac_key(),
        );
        let mut keys = self.service_keys.write();
        if keys.len() >= MAX_SERVICE_KEYS {
            keys.clear();
        }
        keys.insert(service.to_owned(), Arc::clone(&key));
        Ok(key)
    }

    /// `base64url(header).base64url(claims)` of an assertion, to be signed.
    fn unsigned(
        &self,
        header: &str,
        who: &Identity,
        route: &str,
        message_id: &str,
    ) -> Result<String, IssueError> {
        let now = self.clock.now();
        let mut exp = now.saturating_add(self.ttl.as_secs());
        if let Some(credential_exp) = who.expires_at {
            exp = exp.min(credential_exp);
        }
        let claims = Claims {
            iss: &self.issuer,
            iat: now,
            exp,
            consumer: &who.consumer,
            groups: &who.groups,
            scopes: &who.scopes,
            claims: &who.claims,
            route,
            mid: message_id,
            sub: who.subject.as_deref(),
            jti: who.token_id.as_deref(),
        };
        // Room for a typical identity's claims up front: grown from
        // serde_json's 128 bytes, the buffer was reallocated twice per message.
        let mut json = Vec::with_capacity(CLAIMS_CAPACITY);
        serde_json::to_writer(&mut json, &claims)
            .map_err(|e| IssueError::Signing(jsonwebtoken::errors::Error::from(e)))?;
        let mut token = String::with_capacity(header.len() + json.len() * 4 / 3 + 90);
        token.push_str(header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&json, &mut token);
        Ok(token)
    }
}

/// Appends `.base64url(signature)` to a signed token.
fn push_signature(token: &mut String, signature: &[u8]) {
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, token);
}

impl std::fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionSigner")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn encoded_header(alg: &'static str, kid: Option<&str>) -> String {
    let header = Header {
        alg,
        typ: ASSERTION_TYP,
        kid,
    };
    // Three short strings always serialize.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default())
}

/// The DER inside a PEM block labelled `label`.
fn pem_body(pem: &[u8], label: &str) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let body: String = text[start..stop].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_der_of_a_pem_block() {
        let pem = b"-----BEGIN PRIVATE KEY-----\nAAEC\nAw==\n-----END PRIVATE KEY-----\n";
        assert_eq!(pem_body(pem, "PRIVATE KEY"), Some(vec![0, 1, 2, 3]));
        assert_eq!(pem_body(pem, "PUBLIC KEY"), None);
        assert_eq!(pem_body(b"garbage", "PRIVATE KEY"), None);
    }

    #[test]
    fn derived_keys_depend_on_the_key_and_the_purpose_not_on_the_pem_layout() {
        let (pem, _) = crate::assertion::generate_assertion_key().unwrap();
        let signer = AssertionSigner::from_pem(pem.as_bytes()).unwrap();
        let relaid: String = pem
            .lines()
            .map(|line| format!("  {line}  \r\n\n"))
            .collect();
        let same = AssertionSigner::from_pem(relaid.as_bytes()).unwrap();
        let key = signer.derive_key(b"replies").unwrap();
        assert_eq!(key, same.derive_key(b"replies").unwrap());
        assert_ne!(key, signer.derive_key(b"other").unwrap());
        let (other_pem, _) = crate::assertion::generate_assertion_key().unwrap();
        let other = AssertionSigner::from_pem(other_pem.as_bytes()).unwrap();
        assert_ne!(key, other.derive_key(b"replies").unwrap());
    }

    #[test]
    fn refuses_a_key_that_is_not_ed25519() {
        let pem = b"-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----\n";
        assert!(AssertionSigner::from_pem(pem).is_err());
    }
}
