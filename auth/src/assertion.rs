//! The bus assertion: after the gateway verified a caller, the bus tells the service who
//! the caller is in a short-lived signed token bound to one route and one message.
//!
//! A service checks it with the bus's Ed25519 public key, or — when it holds
//! its own [`ServiceSecret`] and says so when it registers — as an HS256
//! token with that secret; a message published straight onto a service
//! queue, around the bus, has no valid assertion and is refused.

use std::{sync::Arc, time::Duration};

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::hmac;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::DecodingKey;
use serde_json::{Map, Value};

use crate::clock::{Clock, SystemClock};
use crate::error::{AuthError, LoadError};
use crate::identity::Identity;
use crate::jwt::VerifierConfig;
use crate::jwt::algorithm::Algorithm;
use crate::jwt::claims;
use crate::jwt::keys;
use crate::jwt::token;

mod service_secret;
mod signer;

pub use service_secret::{AssertionAlg, ServiceSecret};
pub use signer::AssertionSigner;

/// The `typ` of an assertion: no other token is accepted as one, and an assertion is
/// never accepted as a consumer token (its key is no consumer's).
pub const ASSERTION_TYP: &str = "tollgate-assertion+jwt";

/// The default `iss` of assertions.
pub const DEFAULT_ISSUER: &str = "tollgate-bus";

/// The default leeway on an assertion's `exp`, `nbf` and `iat`: how far the
/// router's and a service's clocks may differ.
pub const DEFAULT_ASSERTION_LEEWAY: Duration = Duration::from_secs(5);

/// The largest leeway a verifier accepts (an assertion lives at most 300 s;
/// more leeway than that would accept assertions of any age).
pub const MAX_ASSERTION_LEEWAY: Duration = Duration::from_secs(300);

/// Checks assertions with the bus's public key(s), and HS256 ones with a
/// service's secret.
#[derive(Clone)]
pub struct AssertionVerifier {
    keys: Vec<(Option<String>, DecodingKey)>,
    mac: Option<MacKeys>,
    config: VerifierConfig,
    clock: Arc<dyn Clock>,
}

/// Whose HS256 assertions a verifier checks.
#[derive(Clone)]
enum MacKeys {
    /// One service's, with its secret: assertions for its own routes only.
    Service {
        service: String,
        key: Arc<hmac::Key>,
    },
    /// Every service's, derived from the bus key (a router checking its own).
    Bus(AssertionSigner),
}

/// A verified assertion: the caller, and the route and message it was issued for.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AssertedIdentity {
    /// The caller as the gateway verified it.
    pub identity: Identity,
    /// The route the bus delivered to.
    pub route: String,
    /// The message the assertion is bound to.
    pub message_id: String,
    /// When the assertion expires (seconds since the epoch).
    pub expires_at: u64,
    /// When the bus issued it (`iat`; seconds since the epoch; 0 if absent).
    pub issued_at: u64,
    /// How it was signed.
    pub alg: AssertionAlg,
}

/// The outcome of one assertion check, with the clock reading behind it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AssertionCheck {
    /// The verified assertion, or why it was refused.
    pub outcome: Result<AssertedIdentity, AuthError>,
    /// This verifier's clock minus the assertion's `iat`, in seconds: the
    /// time the message spent between router and service, plus the clock
    /// difference. Negative means the service's clock is behind the
    /// router's. `None` unless the signature was valid (a forged `iat` says
    /// nothing) and the assertion carries an `iat`.
    pub skew_secs: Option<i64>,
}

/// A fresh Ed25519 key pair for the bus, as `(private PKCS#8 PEM, public SPKI PEM)`.
pub fn generate_assertion_key() -> Result<(String, String), LoadError> {
    let fail = |what: &str| LoadError::invalid_key("assertion key", what);
    let pair = Ed25519KeyPair::generate().map_err(|_| fail("generation failed"))?;
    let private = pair
        .to_pkcs8v1()
        .map_err(|_| fail("PKCS#8 encoding failed"))?;
    let public: PublicKeyX509Der<'_> = pair
        .public_key()
        .as_der()
        .map_err(|_| fail("SPKI encoding failed"))?;
    Ok((
        keys::pem_encode("PRIVATE KEY", private.as_ref()),
        keys::pem_encode("PUBLIC KEY", public.as_ref()),
    ))
}

// === AssertionVerifier ===

impl AssertionVerifier {
    /// A verifier trusting the bus's Ed25519 public key (SPKI PEM), with
    /// [`DEFAULT_ASSERTION_LEEWAY`].
    pub fn from_public_pem(public_pem: &[u8]) -> Result<Self, LoadError> {
        let config = Self::default_config();
        let key = keys::public_pem_key("assertion key", Algorithm::EdDSA, public_pem)?;
        Ok(Self {
            keys: vec![(None, key)],
            mac: None,
            config,
            clock: Arc::new(SystemClock),
        })
    }

    /// A verifier of `service`'s HS256 assertions with its `secret`
    /// (`tollgate keys service-secret`), and of no Ed25519 ones; with
    /// [`DEFAULT_ASSERTION_LEEWAY`]. Its service announces
    /// [`AssertionAlg::HS256`] when it registers, so routers sign that way.
    pub fn from_service_secret(service: impl Into<String>, secret: &ServiceSecret) -> Self {
        Self {
            keys: Vec::new(),
            mac: None,
            config: Self::default_config(),
            clock: Arc::new(SystemClock),
        }
        .with_service_secret(service, secret)
    }

    /// Also accepts `service`'s HS256 assertions with its `secret` (while a
    /// service moves from the public key to a secret, it accepts both).
    pub fn with_service_secret(
        mut self,
        service: impl Into<String>,
        secret: &ServiceSecret,
    ) -> Self {
        self.mac = Some(MacKeys::Service {
            service: service.into(),
            key: Arc::new(secret.hmac_key()),
        });
        self
    }

    /// The signature this verifier's service asks routers for: HS256 when it
    /// holds a service secret, else Ed25519.
    pub fn service_alg(&self) -> AssertionAlg {
        match self.mac {
            Some(MacKeys::Service { .. }) => AssertionAlg::HS256,
            Some(MacKeys::Bus(_)) | None => AssertionAlg::EdDSA,
        }
    }

    fn default_config() -> VerifierConfig {
        VerifierConfig {
            issuers: vec![DEFAULT_ISSUER.to_owned()],
            leeway_secs: DEFAULT_ASSERTION_LEEWAY.as_secs(),
            max_lifetime_secs: Some(300),
            max_token_bytes: 16 * 1024,
            ..VerifierConfig::default()
        }
    }

    /// Also trusts `public_pem` for assertions whose header names `kid` (key rotation).
    pub fn with_key(
        mut self,
        kid: impl Into<String>,
        public_pem: &[u8],
    ) -> Result<Self, LoadError> {
        let key = keys::public_pem_key("assertion key", Algorithm::EdDSA, public_pem)?;
        self.keys.push((Some(kid.into()), key));
        Ok(self)
    }

    /// Expects `iss` to be `issuer`.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.config.issuers = vec![issuer.into()];
        self
    }

    /// Accepts assertions whose `exp`, `nbf` and `iat` are off by up to
    /// `leeway` (whole seconds; capped at [`MAX_ASSERTION_LEEWAY`]): set it
    /// above the largest clock difference expected between the routers and
    /// this service.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.config.leeway_secs = leeway.min(MAX_ASSERTION_LEEWAY).as_secs();
        self
    }

    /// The leeway in use.
    pub fn leeway(&self) -> Duration {
        Duration::from_secs(self.config.leeway_secs)
    }

    /// Replaces the clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Verifies `token` as an assertion for `expected_route` and `expected_message_id`.
    ///
    /// Errors: `token_missing`/`token_malformed`/`token_too_large` for shape (including a
    /// `typ` other than [`ASSERTION_TYP`]), `algorithm_not_allowed` unless EdDSA, or
    /// HS256 with a service secret, `unknown_key` for an unknown `kid` (or an HS256
    /// assertion for another service's route), `bad_signature`, `token_expired`,
    /// `token_not_yet_valid`, and `claims_invalid` for a wrong issuer, route or message id.
    pub fn verify(
        &self,
        token: &str,
        expected_route: &str,
        expected_message_id: &str,
    ) -> Result<AssertedIdentity, AuthError> {
        self.check(token, expected_route, expected_message_id)
            .outcome
    }

    /// Like [`AssertionVerifier::verify`], and also says how far the
    /// assertion's `iat` is from this verifier's clock (see
    /// [`AssertionCheck::skew_secs`]), accepted or not.
    pub fn check(
        &self,
        token: &str,
        expected_route: &str,
        expected_message_id: &str,
    ) -> AssertionCheck {
        let mut skew_secs = None;
        let outcome = self.verify_reading(
            token,
            expected_route,
            expected_message_id,
            At::Now(&mut skew_secs),
        );
        AssertionCheck { outcome, skew_secs }
    }

    /// Verifies `token` as an assertion for `expected_route` and
    /// `expected_message_id` as of the moment the bus issued it: the same
    /// checks as [`AssertionVerifier::verify`] except that the assertion may
    /// have expired since. Its [`AssertedIdentity::issued_at`] says how old
    /// it is. For a router re-admitting a request that waited in its
    /// service's queue longer than an assertion lives; an assertion without
    /// `iat` is `claims_invalid`.
    pub fn verify_as_issued(
        &self,
        token: &str,
        expected_route: &str,
        expected_message_id: &str,
    ) -> Result<AssertedIdentity, AuthError> {
        self.verify_reading(token, expected_route, expected_message_id, At::Issued)
    }

    fn verify_reading(
        &self,
        token: &str,
        expected_route: &str,
        expected_message_id: &str,
        at: At<'_>,
    ) -> Result<AssertedIdentity, AuthError> {
        let parsed = token::parse(
            token,
            self.config.max_token_bytes,
            self.config.max_json_depth,
        )?;
        // An HS256 assertion is taken only where a service secret is held: a
        // public key is never used as an HMAC secret.
        let alg = match parsed.alg {
            Algorithm::EdDSA => AssertionAlg::EdDSA,
            Algorithm::HS256 if self.mac.is_some() && parsed.kid.is_none() => AssertionAlg::HS256,
            _ => return Err(AuthError::AlgorithmNotAllowed),
        };
        if parsed.typ.as_deref() != Some(ASSERTION_TYP) {
            tracing::debug!("Refusing an assertion: wrong typ.");
            return Err(AuthError::TokenMalformed);
        }
        match alg {
            AssertionAlg::EdDSA => self.check_eddsa(&parsed)?,
            AssertionAlg::HS256 => self.check_hs256(&parsed, expected_route)?,
        }
        let iat = issued_at(&parsed.claims);
        let now = match at {
            At::Now(skew_secs) => {
                let now = self.clock.now();
                *skew_secs = iat.map(|iat| now as i64 - iat);
                now
            }
            At::Issued => iat
                .and_then(|iat| u64::try_from(iat).ok())
                .ok_or(AuthError::ClaimsInvalid)?,
        };
        let checked = claims::check(&parsed.claims, now, &self.config)?;
        let c = &parsed.claims;
        if str_claim(c, "route")? != expected_route || str_claim(c, "mid")? != expected_message_id {
            tracing::info!("Refusing an assertion: issued for another route or message.");
            return Err(AuthError::ClaimsInvalid);
        }
        let mut identity = Identity::new(str_claim(c, "consumer")?)
            .with_groups(str_list(c, "groups")?)
            .with_scopes(str_list(c, "scopes")?);
        identity.subject = checked.subject;
        identity.token_id = checked.token_id;
        identity.claims = match c.get("claims") {
            Some(Value::Object(map)) => map.clone().into_iter().collect(),
            None | Some(Value::Null) => Default::default(),
            Some(_) => return Err(AuthError::ClaimsInvalid),
        };
        identity.expires_at = Some(checked.expires_at);
        Ok(AssertedIdentity {
            identity,
            route: expected_route.to_owned(),
            message_id: expected_message_id.to_owned(),
            expires_at: checked.expires_at,
            issued_at: checked.issued_at.unwrap_or(0),
            alg,
        })
    }

    /// The Ed25519 signature, with the key named by `kid` (or the unnamed one).
    fn check_eddsa(&self, parsed: &token::Parsed<'_>) -> Result<(), AuthError> {
        let kid = parsed.kid.as_deref();
        let mut candidates = self
            .keys
            .iter()
            .filter(|(k, _)| k.as_deref() == kid)
            .map(|(_, key)| key)
            .peekable();
        if candidates.peek().is_none() {
            return Err(AuthError::UnknownKey);
        }
        let signed = candidates.any(|key| {
            jsonwebtoken::crypto::verify(
                parsed.signature,
                parsed.signing_input.as_bytes(),
                key,
                jsonwebtoken::Algorithm::EdDSA,
            )
            .unwrap_or(false)
        });
        if signed {
            Ok(())
        } else {
            Err(AuthError::BadSignature)
        }
    }

    /// The HMAC-SHA256 tag, with the secret of the service `route` belongs
    /// to: this verifier's own service's, or (a router) derived from the bus
    /// key.
    fn check_hs256(&self, parsed: &token::Parsed<'_>, route: &str) -> Result<(), AuthError> {
        let service = service_secret::route_service(route);
        let key = match &self.mac {
            None => return Err(AuthError::AlgorithmNotAllowed),
            Some(MacKeys::Service { service: own, key }) if own == service => Arc::clone(key),
            Some(MacKeys::Service { .. }) => return Err(AuthError::UnknownKey),
            Some(MacKeys::Bus(signer)) => signer
                .service_key(service)
                .map_err(|_| AuthError::UnknownKey)?,
        };
        let tag = URL_SAFE_NO_PAD
            .decode(parsed.signature)
            .map_err(|_| AuthError::TokenMalformed)?;
        hmac::verify(&key, parsed.signing_input.as_bytes(), &tag)
            .map_err(|_| AuthError::BadSignature)
    }
}

/// The moment an assertion is checked at.
enum At<'a> {
    /// This verifier's clock, recording the skew from `iat`.
    Now(&'a mut Option<i64>),
    /// The assertion's own `iat`.
    Issued,
}

impl std::fmt::Debug for AssertionVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionVerifier")
            .field("keys", &self.keys.len())
            .field("service_alg", &self.service_alg())
            .finish_non_exhaustive()
    }
}

/// The `iat` claim in whole seconds, when it is a number.
fn issued_at(claims: &Map<String, Value>) -> Option<i64> {
    let iat = claims.get("iat")?;
    iat.as_i64().or_else(|| iat.as_f64().map(|f| f as i64))
}

fn str_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<&'a str, AuthError> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .ok_or(AuthError::ClaimsInvalid)
}

fn str_list(claims: &Map<String, Value>, name: &str) -> Result<Vec<String>, AuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or(AuthError::ClaimsInvalid)
            })
            .collect(),
        Some(_) => Err(AuthError::ClaimsInvalid),
    }
}

#[cfg(test)]
mod tests;
