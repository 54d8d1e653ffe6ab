//! Good and bad tokens for the demo, minted from the demo's consumers.

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use tollgate_auth::{Clock, ConsumerStore, Issuer};
use tollgate_bus::config::{Config, TokenPurpose};

/// A clock an hour in the past, to mint a token that has already expired.
#[derive(Debug)]
struct AnHourAgo;

impl Clock for AnHourAgo {
    fn now(&self) -> u64 {
        tollgate_bus::time::unix_now().saturating_sub(3600)
    }
}

/// Mints the demo's tokens.
pub(super) struct Tokens {
    store: Arc<ConsumerStore>,
    registration_audience: String,
}

impl Tokens {
    pub(super) fn new(store: ConsumerStore, config: &Config) -> Self {
        let registration = config.audience_for(TokenPurpose::Registration);
        Self {
            store: Arc::new(store),
            registration_audience: registration.unwrap_or_default().to_owned(),
        }
    }

    /// A ten-minute registration token for the service account `account`.
    pub(super) fn registration(&self, account: &str) -> anyhow::Result<String> {
        let issuer =
            Issuer::new(Arc::clone(&self.store)).with_audience(self.registration_audience.clone());
        Ok(issuer.sign(account, Duration::from_secs(600), Map::new())?)
    }

    /// A valid ten-minute token for `consumer` with `claims`.
    pub(super) fn valid(&self, consumer: &str, claims: Value) -> anyhow::Result<String> {
        let claims: Map<String, Value> = claims.as_object().cloned().unwrap_or_default();
        Ok(
            Issuer::new(Arc::clone(&self.store)).sign(
                consumer,
                Duration::from_secs(600),
                claims,
            )?,
        )
    }

    /// A token of `consumer` that expired 55 minutes ago.
    pub(super) fn expired(&self, consumer: &str) -> anyhow::Result<String> {
        let issuer = Issuer::new(Arc::clone(&self.store)).with_clock(Arc::new(AnHourAgo));
        Ok(issuer.sign(consumer, Duration::from_secs(300), Map::new())?)
    }

    /// A valid token whose signature was replaced: what a forger without the key sends.
    pub(super) fn forged(&self, consumer: &str) -> anyhow::Result<String> {
        let token = self.valid(consumer, json!({"scope": "orders.write billing.read"}))?;
        let (signed, _) = token.rsplit_once('.').unwrap_or((&token, ""));
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode([7u8; 32])))
    }

    /// An unsigned token (`alg: none`) claiming to be `consumer`.
    pub(super) fn alg_none(&self, consumer: &str) -> String {
        let now = tollgate_bus::time::unix_now();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD
            .encode(json!({"key": consumer, "iat": now, "exp": now + 600}).to_string());
        format!("{header}.{claims}.")
    }
}
