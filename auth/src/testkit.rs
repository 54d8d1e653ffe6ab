//! Test kit: fresh keys of every algorithm, a clock moved by hand, and helpers to mint
//! good tokens and hand-crafted bad ones. Behind the `test-support` feature.
//!
//! ```
//! # use tollgate_auth::{Algorithm, testkit::TestKit};
//! let kit = TestKit::new();
//! let key = kit.consumer("alice", Algorithm::ES256);
//! let token = key.sign(&kit.claims("alice"));
//! assert_eq!(kit.verifier().verify(&token).map(|i| i.consumer.clone()), Ok("alice".to_owned()));
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::consumer::Consumer;
use crate::credential::Credential;
use crate::jwt::algorithm::Algorithm;
use crate::jwt::issuer::Issuer;
use crate::jwt::keys::pem_encode;
use crate::jwt::{Verifier, VerifierConfig};
use crate::revocation::Revocations;
use crate::store::ConsumerStore;

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct TestClock(AtomicU64);

/// A freshly generated key of one algorithm, with what a test needs to sign with it.
#[derive(Clone)]
pub struct TestKey {
    /// The algorithm the key is pinned to.
    pub alg: Algorithm,
    /// The key id.
    pub kid: String,
    /// The HMAC secret (HS* only).
    pub secret: Option<Vec<u8>>,
    /// PKCS#8 PEM private key (asymmetric only).
    pub private_pem: Option<String>,
    /// SPKI PEM public key (asymmetric only).
    pub public_pem: Option<String>,
    encoding: EncodingKey,
}

/// A consumer store, revocations and a clock, wired together, for tests that mint tokens.
#[derive(Debug)]
pub struct TestKit {
    /// The clock every verifier and issuer of this kit reads.
    pub clock: Arc<TestClock>,
    /// The consumers.
    pub store: Arc<ConsumerStore>,
    /// The revocations.
    pub revocations: Arc<Revocations>,
}

// === TestClock ===

impl TestClock {
    /// A clock reading `now`.
    pub fn new(now: u64) -> Self {
        Self(AtomicU64::new(now))
    }

    /// Sets the time.
    pub fn set(&self, now: u64) {
        self.0.store(now, Ordering::SeqCst);
    }

    /// Moves the time forward by `secs`.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

// === TestKey ===

impl TestKey {
    /// A fresh key for `alg` (RSA keys are 2048 bits; HMAC secrets 64 random bytes).
    pub fn generate(alg: Algorithm, kid: impl Into<String>) -> Self {
        let kid = kid.into();
        if alg.is_symmetric() {
            let mut secret = vec![0; 64];
            aws_lc_rs::rand::fill(&mut secret).expect("random");
            let encoding = EncodingKey::from_secret(&secret).expect("secret");
            return Self {
                alg,
                kid,
                secret: Some(secret),
                private_pem: None,
                public_pem: None,
                encoding,
            };
        }
        let (private_der, public_der) = generate_pair(alg);
        let private_pem = pem_encode("PRIVATE KEY", &private_der);
        let public_pem = pem_encode("PUBLIC KEY", &public_der);
        let encoding = crate::jwt::keys::private_pem_key(&kid, alg, private_pem.as_bytes())
            .expect("generated key parses");
        Self {
            alg,
            kid,
            secret: None,
            private_pem: Some(private_pem),
            public_pem: Some(public_pem),
            encoding,
        }
    }

    /// The credential a consumer holds for this key, with its `kid` and signing key.
    pub fn credential(&self) -> Credential {
        let credential = match (&self.secret, &self.public_pem, &self.private_pem) {
            (Some(secret), _, _) => Credential::hmac(self.alg, secret).expect("valid secret"),
            (None, Some(public), Some(private)) => {
                Credential::public_pem(self.alg, public.as_bytes())
                    .and_then(|c| c.with_private_pem(private.as_bytes()))
                    .expect("valid key pair")
            }
            _ => unreachable!("a test key has a secret or a key pair"),
        };
        credential.with_kid(self.kid.clone())
    }

    /// A token with a standard header (`alg`, `typ`, `kid`) and `claims`, signed by this key.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": self.alg.as_str(), "typ": "JWT", "kid": self.kid});
        self.sign_raw(&header.to_string(), &claims.to_string())
    }

    /// Like [`sign`](Self::sign) but without `kid`, so the consumer claim selects the key.
    pub fn sign_without_kid(&self, claims: &Value) -> String {
        let header = json!({"alg": self.alg.as_str(), "typ": "JWT"});
        self.sign_raw(&header.to_string(), &claims.to_string())
    }

    /// A token made of exactly `header` and `claims` (any bytes, as given), signed by this
    /// key under its own algorithm whatever the header says.
    pub fn sign_raw(&self, header: &str, claims: &str) -> String {
        self.sign_bytes(header.as_bytes(), claims.as_bytes())
    }

    /// Like [`sign_raw`](Self::sign_raw) for header and claims that need not be UTF-8.
    pub fn sign_bytes(&self, header: &[u8], claims: &[u8]) -> String {
        self.sign_bytes_as(self.alg, header, claims)
    }

    /// Signs `header` and `claims` with this key's material under another algorithm of
    /// the same family (an RSA key under RS512, a secret under HS384): a valid signature,
    /// but not under the algorithm the key is pinned to.
    pub fn sign_raw_as(&self, alg: Algorithm, header: &str, claims: &str) -> String {
        self.sign_bytes_as(alg, header.as_bytes(), claims.as_bytes())
    }

    fn sign_bytes_as(&self, alg: Algorithm, header: &[u8], claims: &[u8]) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding, alg.to_jwt())
            .expect("sign");
        format!("{input}.{signature}")
    }

    /// The public key as a JWK with `kid` and `alg` (for HMAC keys: the secret as `oct`).
    pub fn jwk(&self) -> Value {
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&self.encoding, self.alg.to_jwt())
            .expect("jwk");
        let mut value = serde_json::to_value(jwk).expect("serialize");
        value["kid"] = self.kid.clone().into();
        value["alg"] = self.alg.as_str().into();
        value
    }
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish()
    }
}

fn generate_pair(alg: Algorithm) -> (Vec<u8>, Vec<u8>) {
    use Algorithm as A;
    match alg {
        A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .expect("rsa keygen");
            let private: Pkcs8V1Der<'_> = pair.as_der().expect("pkcs8");
            let public: PublicKeyX509Der<'_> = pair.public_key().as_der().expect("spki");
            (private.as_ref().to_vec(), public.as_ref().to_vec())
        }
        A::ES256 | A::ES384 => {
            let curve = if alg == A::ES256 {
                &ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &ECDSA_P384_SHA384_FIXED_SIGNING
            };
            let pair = EcdsaKeyPair::generate(curve).expect("ec keygen");
            let private = pair.to_pkcs8v1().expect("pkcs8");
            let public: PublicKeyX509Der<'_> = pair.public_key().as_der().expect("spki");
            (private.as_ref().to_vec(), public.as_ref().to_vec())
        }
        A::EdDSA => {
            let pair = Ed25519KeyPair::generate().expect("ed25519 keygen");
            let private = pair.to_pkcs8v1().expect("pkcs8");
            let public: PublicKeyX509Der<'_> = pair.public_key().as_der().expect("spki");
            (private.as_ref().to_vec(), public.as_ref().to_vec())
        }
        A::HS256 | A::HS384 | A::HS512 => unreachable!("HMAC has no key pair"),
    }
}

// === TestKit ===

impl TestKit {
    /// The time every kit starts at: 2023-11-14T22:13:20Z.
    pub const NOW: u64 = 1_700_000_000;

    /// An empty kit at [`NOW`](Self::NOW).
    pub fn new() -> Self {
        Self {
            clock: Arc::new(TestClock::new(Self::NOW)),
            store: Arc::new(ConsumerStore::new()),
            revocations: Arc::new(Revocations::new()),
        }
    }

    /// Adds an enabled consumer `name` (whose `key` is its name) holding one fresh key of
    /// `alg` with kid `"{name}-{alg}"`, and returns the key.
    pub fn consumer(&self, name: &str, alg: Algorithm) -> TestKey {
        let key = TestKey::generate(alg, format!("{name}-{alg}"));
        self.store
            .upsert(Consumer::new(name).with_credential(key.credential()))
            .expect("unique consumer");
        key
    }

    /// Adds a fresh key of `alg` with `kid` to the existing consumer `name`.
    pub fn add_key(&self, name: &str, alg: Algorithm, kid: &str) -> TestKey {
        let key = TestKey::generate(alg, kid);
        self.store
            .add_credential(name, key.credential())
            .expect("consumer exists");
        key
    }

    /// A verifier with the default settings on this kit's clock.
    pub fn verifier(&self) -> Verifier {
        self.verifier_with(VerifierConfig::default())
    }

    /// A verifier with `config` on this kit's clock.
    pub fn verifier_with(&self, config: VerifierConfig) -> Verifier {
        Verifier::new(
            Arc::clone(&self.store),
            Arc::clone(&self.revocations),
            config,
        )
        .with_clock(self.clock.clone())
    }

    /// An issuer on this kit's clock.
    pub fn issuer(&self) -> Issuer {
        Issuer::new(Arc::clone(&self.store)).with_clock(self.clock.clone())
    }

    /// Good claims for `consumer`: `key`, `sub`, `iat` now, `exp` in five minutes, a `jti`.
    pub fn claims(&self, consumer: &str) -> Value {
        let now = self.clock.now();
        json!({
            "key": consumer,
            "sub": format!("{consumer}-user"),
            "iat": now,
            "exp": now + 300,
            "jti": uuid::Uuid::new_v4().to_string(),
        })
    }
}

impl Default for TestKit {
    fn default() -> Self {
        Self::new()
    }
}

// === Raw tokens ===

/// Base64url without padding, as JWS segments are written.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact token from raw parts: `b64(header).b64(claims).b64(signature)`.
pub fn raw_token(header: &str, claims: &str, signature: &[u8]) -> String {
    format!("{}.{}.{}", b64(header), b64(claims), b64(signature))
}

/// An HMAC signature of `signing_input` under `alg` with `secret`, base64url: how an
/// attacker signs with a public key used as an HMAC secret.
pub fn hmac_sign(alg: Algorithm, secret: &[u8], signing_input: &str) -> String {
    let key = EncodingKey::from_secret(secret).expect("non-empty secret");
    jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, alg.to_jwt()).expect("hmac")
}
