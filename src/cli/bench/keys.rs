//! The keys of a bench bus, made fresh for each run: the bus's assertion
//! key, an HMAC secret, an RSA and an Ed25519 key pair for the callers, and
//! the service account's secret.

use std::{sync::Arc, time::Duration};

use anyhow::{Context as _, anyhow};
use aws_lc_rs::{
    encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der},
    signature::KeyPair as _,
};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use tollgate_auth::{Algorithm, Consumer, ConsumerStore, Credential, Issuer};

/// A PEM key pair: PKCS#8 private, SPKI public.
pub(crate) struct PemPair {
    /// The private key (PKCS#8 PEM).
    pub(crate) private: String,
    /// The public key (SPKI PEM).
    pub(crate) public: String,
}

/// One consumer of a bench bus and how its key is written into the config.
pub(crate) struct BenchConsumer {
    /// The consumer's name (and `key` claim).
    pub(crate) name: &'static str,
    /// The algorithm its one credential is pinned to.
    pub(crate) algorithm: Algorithm,
    /// The HMAC secret (HS256) or the key pair (RS256, EdDSA).
    pub(crate) key: ConsumerKey,
}

/// A consumer's key.
pub(crate) enum ConsumerKey {
    /// An HMAC secret.
    Secret(String),
    /// An asymmetric key pair; the router's config gets only the public half.
    Pair(PemPair),
}

/// Every key of a bench bus.
pub(crate) struct BenchKeys {
    /// The bus's Ed25519 assertion key (the router signs, services verify).
    pub(crate) assertion: PemPair,
    /// The callers (one per algorithm) and the service account.
    pub(crate) consumers: Vec<BenchConsumer>,
}

/// The caller whose key is an HMAC secret.
pub(crate) const CALLER_HS256: &str = "caller-hs256";
/// The caller whose key is an RSA key pair.
pub(crate) const CALLER_RS256: &str = "caller-rs256";
/// The caller whose key is an Ed25519 key pair.
pub(crate) const CALLER_EDDSA: &str = "caller-eddsa";
/// The service account that registers the bench's services.
pub(crate) const SERVICE_ACCOUNT: &str = "bench-svc";

/// How long the bench's tokens live: longer than any run.
const TOKEN_TTL: Duration = Duration::from_secs(6 * 3600);

impl BenchKeys {
    /// Fresh keys (an RSA-2048 key takes a moment).
    pub(crate) fn generate() -> anyhow::Result<Arc<Self>> {
        let ed25519 = || {
            let (private, public) = tollgate_auth::generate_assertion_key()?;
            anyhow::Ok(PemPair { private, public })
        };
        let secret = || ConsumerKey::Secret(random_secret());
        let consumer = |name, algorithm, key| BenchConsumer {
            name,
            algorithm,
            key,
        };
        Ok(Arc::new(Self {
            assertion: ed25519()?,
            consumers: vec![
                consumer(CALLER_HS256, Algorithm::HS256, secret()),
                consumer(
                    CALLER_RS256,
                    Algorithm::RS256,
                    ConsumerKey::Pair(rsa_pair()?),
                ),
                consumer(
                    CALLER_EDDSA,
                    Algorithm::EdDSA,
                    ConsumerKey::Pair(ed25519()?),
                ),
                consumer(SERVICE_ACCOUNT, Algorithm::HS256, secret()),
            ],
        }))
    }

    /// An issuer that signs for every bench consumer with its private key.
    pub(crate) fn issuer(&self) -> anyhow::Result<Issuer> {
        let consumers = self
            .consumers
            .iter()
            .map(|c| {
                let credential = match &c.key {
                    ConsumerKey::Secret(secret) => Credential::hmac(c.algorithm, secret.as_bytes()),
                    ConsumerKey::Pair(pair) => {
                        Credential::public_pem(c.algorithm, pair.public.as_bytes())
                            .and_then(|k| k.with_private_pem(pair.private.as_bytes()))
                    }
                }
                .with_context(|| format!("the key of {}", c.name))?;
                anyhow::Ok(Consumer::new(c.name).with_credential(credential.with_kid(kid(c.name))))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Issuer::new(Arc::new(ConsumerStore::with_consumers(
            consumers,
        )?)))
    }
}

/// A token for `consumer` from `issuer`, valid for the whole run.
pub(crate) fn token(issuer: &Issuer, consumer: &str) -> anyhow::Result<String> {
    Ok(issuer.sign(consumer, TOKEN_TTL, serde_json::Map::new())?)
}

/// A registration token for the service account `account` from `issuer` (`aud` is
/// the default registration audience, which the bench's router config keeps).
pub(crate) fn registration_token(issuer: &Issuer, account: &str) -> anyhow::Result<String> {
    let mut claims = serde_json::Map::new();
    claims.insert(
        "aud".into(),
        tollgate_bus::config::DEFAULT_REGISTRATION_AUDIENCE.into(),
    );
    Ok(issuer.sign(account, TOKEN_TTL, claims)?)
}

/// The key id of `consumer`'s one credential.
pub(crate) fn kid(consumer: &str) -> String {
    format!("{consumer}-1")
}

/// 64 random hex characters.
fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A fresh RSA-2048 key pair.
fn rsa_pair() -> anyhow::Result<PemPair> {
    let failed = |what: &str| anyhow!("RSA key {what} failed");
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|_| failed("generation"))?;
    let private: Pkcs8V1Der<'_> = pair.as_der().map_err(|_| failed("encoding"))?;
    let public: PublicKeyX509Der<'_> =
        pair.public_key().as_der().map_err(|_| failed("encoding"))?;
    Ok(PemPair {
        private: pem("PRIVATE KEY", private.as_ref()),
        public: pem("PUBLIC KEY", public.as_ref()),
    })
}

/// `der` as PEM text under `label`.
fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}
