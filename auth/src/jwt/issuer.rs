//! Signing tokens for a consumer with its own key (the gateway's "sign" endpoint).

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Header;
use serde_json::{Map, Value};

use crate::clock::{Clock, SystemClock};
use crate::error::IssueError;
use crate::store::ConsumerStore;

/// Claims the issuer sets itself and that extra claims may not override.
const RESERVED: [&str; 3] = ["exp", "iat", "jti"];

/// Signs tokens for consumers with their own keys; `tollgate token sign` uses it.
#[derive(Debug)]
pub struct Issuer {
    store: Arc<ConsumerStore>,
    clock: Arc<dyn Clock>,
    consumer_claim: String,
    issuer: Option<String>,
    audience: Option<String>,
}

impl Issuer {
    /// An issuer over `store`, on the system clock, naming consumers in the `key` claim.
    pub fn new(store: Arc<ConsumerStore>) -> Self {
        Self {
            store,
            clock: Arc::new(SystemClock),
            consumer_claim: "key".into(),
            issuer: None,
            audience: None,
        }
    }

    /// Replaces the clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Names the consumer in `claim` instead of `key` (match the verifier's setting).
    pub fn with_consumer_claim(mut self, claim: impl Into<String>) -> Self {
        self.consumer_claim = claim.into();
        self
    }

    /// Sets `iss` on every token that does not set it in its extra claims.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Sets `aud` on every token that does not set it in its extra claims: the
    /// purpose the token is for (the router's caller or registration audience).
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// A token for the consumer called `consumer`, valid for `ttl` from now.
    ///
    /// Sets the consumer claim, `iat`, `exp` and a random `jti`, plus `extra_claims`
    /// (which may set `sub`, `aud`, `scope`, `nbf`, … but not `exp`, `iat`, `jti` or the
    /// consumer claim). Signs with the consumer's newest credential that can sign, and
    /// puts its `kid` in the header. Errors if the consumer is unknown, has no signing
    /// key, or `ttl` is zero or over ten years.
    pub fn sign(
        &self,
        consumer: &str,
        ttl: Duration,
        extra_claims: Map<String, Value>,
    ) -> Result<String, IssueError> {
        if ttl.is_zero() || ttl.as_secs() > 10 * 365 * 86_400 {
            return Err(IssueError::InvalidTtl(format!("{ttl:?}")));
        }
        let owner = self
            .store
            .get(consumer)
            .ok_or_else(|| IssueError::UnknownConsumer(consumer.into()))?;
        let credential = owner
            .credentials
            .iter()
            .rev()
            .find(|c| c.can_sign())
            .ok_or_else(|| IssueError::NoSigningKey(consumer.into()))?;
        let key = credential
            .encoding_key()
            .ok_or_else(|| IssueError::NoSigningKey(consumer.into()))?;
        if let Some(name) = extra_claims
            .keys()
            .find(|k| RESERVED.contains(&k.as_str()) || **k == self.consumer_claim)
        {
            return Err(IssueError::ReservedClaim(name.clone()));
        }
        let now = self.clock.now();
        let mut claims = extra_claims;
        claims.insert(self.consumer_claim.clone(), owner.key.clone().into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), now.saturating_add(ttl.as_secs()).into());
        claims.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
        if let Some(iss) = &self.issuer {
            claims.entry("iss").or_insert_with(|| iss.clone().into());
        }
        if let Some(aud) = &self.audience {
            claims.entry("aud").or_insert_with(|| aud.clone().into());
        }
        let mut header = Header::new(credential.algorithm().to_jwt());
        header.kid = credential.kid().map(str::to_owned);
        let token = jsonwebtoken::encode(&header, &claims, key).map_err(IssueError::Signing)?;
        tracing::info!(consumer, ttl.secs = ttl.as_secs(), "Issued a token.");
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::Consumer;
    use crate::credential::Credential;
    use crate::jwt::algorithm::Algorithm;

    fn issuer() -> Issuer {
        let key = Credential::hmac(Algorithm::HS256, &[3; 32])
            .expect("valid")
            .with_kid("k1");
        let store = ConsumerStore::with_consumers(vec![
            Consumer::new("alice").with_credential(key),
            Consumer::new("bob"),
        ])
        .expect("valid");
        Issuer::new(Arc::new(store))
    }

    #[test]
    fn refuses_reserved_claims_unknown_consumers_and_keyless_consumers() {
        let issuer = issuer();
        let ttl = Duration::from_secs(60);
        let mut extra = Map::new();
        extra.insert("exp".into(), 1.into());
        assert!(matches!(
            issuer.sign("alice", ttl, extra),
            Err(IssueError::ReservedClaim(_))
        ));
        let mut extra = Map::new();
        extra.insert("key".into(), "bob".into());
        assert!(matches!(
            issuer.sign("alice", ttl, extra),
            Err(IssueError::ReservedClaim(_))
        ));
        assert!(matches!(
            issuer.sign("nobody", ttl, Map::new()),
            Err(IssueError::UnknownConsumer(_))
        ));
        assert!(matches!(
            issuer.sign("bob", ttl, Map::new()),
            Err(IssueError::NoSigningKey(_))
        ));
        assert!(matches!(
            issuer.sign("alice", Duration::ZERO, Map::new()),
            Err(IssueError::InvalidTtl(_))
        ));
    }

    #[test]
    fn sets_the_audience_unless_the_extra_claims_do() {
        let issuer = issuer().with_audience("bus-registration");
        let aud = |extra: Map<String, Value>| {
            let token = issuer
                .sign("alice", Duration::from_secs(60), extra)
                .expect("signed");
            let (_, rest) = token.split_once('.').expect("three segments");
            let (claims, _) = rest.split_once('.').expect("three segments");
            let claims: Value = serde_json::from_slice(
                &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims)
                    .expect("base64url"),
            )
            .expect("json");
            claims["aud"].clone()
        };
        assert_eq!(aud(Map::new()), "bus-registration");
        let mut extra = Map::new();
        extra.insert("aud".into(), "other".into());
        assert_eq!(aud(extra), "other");
    }

    #[test]
    fn signs_with_the_kid_in_the_header() {
        let token = issuer()
            .sign("alice", Duration::from_secs(60), Map::new())
            .expect("signed");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
    }
}
