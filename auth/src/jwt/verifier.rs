//! The verifier: from a bearer token to an [`Identity`], or a coded refusal.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::cache::{CacheStats, Generation, TokenCache};
use crate::clock::{Clock, SystemClock};
use crate::consumer::Consumer;
use crate::credential::Credential;
use crate::error::AuthError;
use crate::identity::Identity;
use crate::jwt::bearer;
use crate::jwt::claims::{self, Checked};
use crate::jwt::config::VerifierConfig;
use crate::jwt::token::{self, Parsed};
use crate::revocation::{Revocations, TokenFacts};
use crate::store::{ConsumerStore, ConsumerTable};

/// The longest `kid` looked up; longer ones are refused as `unknown_key` unread.
const MAX_KID_BYTES: usize = 256;

/// A token that names a `kid` no consumer holds: a remote key set may have
/// rotated to it ([`Verifier::unknown_kid`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMiss {
    /// The unknown key id.
    pub kid: String,
    /// The consumer claim's value, when the token has one (unverified).
    pub consumer_key: Option<String>,
}

/// Verifies JWTs against the consumer store, the revocations and the clock.
///
/// One verifier serves every message of a router: it is `Send + Sync`, and a
/// token seen before is answered from the cache without checking its signature
/// again. A cached answer is given only while the token is unexpired and nothing
/// in the consumer store or the revocations has changed since it was verified.
#[derive(Debug)]
pub struct Verifier {
    store: Arc<ConsumerStore>,
    revocations: Arc<Revocations>,
    config: VerifierConfig,
    clock: Arc<dyn Clock>,
    cache: TokenCache,
}

impl Verifier {
    /// A verifier over `store` and `revocations`, on the system clock.
    pub fn new(
        store: Arc<ConsumerStore>,
        revocations: Arc<Revocations>,
        config: VerifierConfig,
    ) -> Self {
        let cache = TokenCache::new(config.cache_capacity);
        Self {
            store,
            revocations,
            config,
            clock: Arc::new(SystemClock),
            cache,
        }
    }

    /// Replaces the clock (tests move a manual clock instead of sleeping).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Verifies `token` (the compact JWS, without a `Bearer ` prefix).
    ///
    /// Checks, in order: size, shape, header (`alg` is one of ours and never `none`;
    /// `crit` refused; `jku`/`x5u`/`jwk`/`x5c` never followed), the key (by `kid`, else
    /// by the consumer claim), that `alg` is the key's pinned algorithm, the
    /// signature, the registered claims, that the consumer is enabled, and
    /// revocation. Errors carry only a code; the detail is logged at `debug`.
    /// The identity is shared with the cache (no copy per message).
    pub fn verify(&self, token: &str) -> Result<Arc<Identity>, AuthError> {
        let now = self.clock.now();
        // Read before the store and the revocations, so that an entry verified while
        // either changed is tagged with the older generation and never served.
        let generation = self.generation();
        if let Some(identity) = self.cache.get(token, now, generation) {
            return Ok(identity);
        }
        let identity = Arc::new(self.verify_uncached(token, now)?);
        if let Some(expires_at) = identity.expires_at {
            self.cache
                .insert(token, Arc::clone(&identity), expires_at, generation);
        }
        Ok(identity)
    }

    /// Verifies the token in an `Authorization`-style header value (see
    /// [`bearer_token`](crate::bearer_token): exactly `Bearer <token>`);
    /// `token_missing` if there is none, `token_malformed` if it is not of that shape.
    pub fn verify_bearer(&self, header: Option<&str>) -> Result<Arc<Identity>, AuthError> {
        self.verify(bearer::bearer_token(header)?)
    }

    /// Whether `token` (compact JWS) names a `kid` that no consumer holds, so
    /// that fetching a remote key set again might help; `None` for a token
    /// without `kid`, with a known one, or not even well-formed. Nothing in
    /// the token is trusted here: it only says which key set to ask.
    pub fn unknown_kid(&self, token: &str) -> Option<KeyMiss> {
        let parsed = token::parse(
            token,
            self.config.max_token_bytes,
            self.config.max_json_depth,
        )
        .ok()?;
        let kid = parsed.kid?;
        if kid.len() > MAX_KID_BYTES || self.store.snapshot().by_kid(&kid).is_some() {
            return None;
        }
        let consumer_key = parsed
            .claims
            .get(&self.config.consumer_claim)
            .and_then(Value::as_str)
            .map(str::to_owned);
        Some(KeyMiss { kid, consumer_key })
    }

    /// The cache's counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// The consumer store this verifier reads.
    pub fn store(&self) -> &Arc<ConsumerStore> {
        &self.store
    }

    /// Whether `who`, verified earlier by a token that may have expired since,
    /// is still trusted now: its consumer exists and is enabled, and no
    /// revocation covers it. The token's `iat` is not known here, so a
    /// consumer's issued-before cut-off covers every earlier identity.
    /// Errors: `unknown_key`, `consumer_disabled`, `token_revoked`.
    pub fn still_trusted(&self, who: &Identity) -> Result<(), AuthError> {
        let table = self.store.snapshot();
        let consumer = table
            .by_name(&who.consumer)
            .ok_or_else(|| unknown("no such consumer"))?;
        if !consumer.enabled {
            return Err(AuthError::ConsumerDisabled);
        }
        self.revocations.check(TokenFacts {
            consumer: &consumer.name,
            subject: who.subject.as_deref(),
            token_id: who.token_id.as_deref(),
            issued_at: None,
        })
    }

    /// The revocations this verifier honours.
    pub fn revocations(&self) -> &Arc<Revocations> {
        &self.revocations
    }

    /// The settings.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    fn generation(&self) -> Generation {
        (self.store.generation(), self.revocations.generation())
    }

    fn verify_uncached(&self, token: &str, now: u64) -> Result<Identity, AuthError> {
        let parsed = token::parse(
            token,
            self.config.max_token_bytes,
            self.config.max_json_depth,
        )?;
        let table = self.store.snapshot();
        let (consumer, candidates) = self.select_keys(&table, &parsed)?;
        let verified = candidates
            .iter()
            .any(|key| key.verifies(parsed.signing_input.as_bytes(), parsed.signature));
        if !verified {
            tracing::debug!(consumer = %consumer.name, "Refusing a token: bad signature.");
            return Err(AuthError::BadSignature);
        }
        let checked = claims::check(&parsed.claims, now, &self.config)?;
        if !consumer.enabled {
            tracing::info!(consumer = %consumer.name, "Refusing a token: consumer disabled.");
            return Err(AuthError::ConsumerDisabled);
        }
        self.revocations.check(TokenFacts {
            consumer: &consumer.name,
            subject: checked.subject.as_deref(),
            token_id: checked.token_id.as_deref(),
            issued_at: checked.issued_at,
        })?;
        self.identity(consumer, &parsed.claims, checked)
    }

    /// The token's consumer and the keys that may have signed it: the one named by
    /// `kid`, else every key of the consumer named by the consumer claim; then only
    /// those pinned to the header's `alg`.
    fn select_keys<'a>(
        &self,
        table: &'a ConsumerTable,
        parsed: &Parsed<'_>,
    ) -> Result<(&'a Arc<Consumer>, Vec<&'a Credential>), AuthError> {
        let claimed = match parsed.claims.get(&self.config.consumer_claim) {
            None => None,
            Some(Value::String(key)) => Some(key.as_str()),
            Some(_) => return Err(unknown("consumer claim is not a string")),
        };
        let (consumer, keys) = match (&parsed.kid, claimed) {
            (Some(kid), _) if kid.len() > MAX_KID_BYTES => return Err(unknown("kid too long")),
            (Some(kid), claimed) => {
                let Some((consumer, key)) = table.by_kid(kid) else {
                    return Err(missing_kid(table, claimed));
                };
                if claimed.is_some_and(|c| c != consumer.key) {
                    return Err(unknown("kid belongs to another consumer"));
                }
                (consumer, vec![key])
            }
            (None, Some(key)) => {
                let consumer = table
                    .by_key(key)
                    .ok_or_else(|| unknown("no such consumer"))?;
                if consumer.credentials.is_empty() && consumer.jwks_source.is_some() {
                    return Err(keys_unavailable(consumer));
                }
                (consumer, consumer.credentials.iter().collect())
            }
            (None, None) => return Err(unknown("neither kid nor consumer claim")),
        };
        let pinned: Vec<_> = keys
            .into_iter()
            .filter(|k| k.algorithm() == parsed.alg)
            .collect();
        if pinned.is_empty() {
            tracing::debug!(
                consumer = %consumer.name,
                alg = %parsed.alg,
                "Refusing a token: alg is not the key's pinned algorithm."
            );
            return Err(AuthError::AlgorithmNotAllowed);
        }
        Ok((consumer, pinned))
    }

    fn identity(
        &self,
        consumer: &Consumer,
        claims: &Map<String, Value>,
        checked: Checked,
    ) -> Result<Identity, AuthError> {
        let scopes = match claims::scopes(claims)? {
            None => consumer.scopes.clone(),
            Some(asked) if consumer.trust_token_scopes => asked,
            Some(asked) => asked
                .into_iter()
                .filter(|s| consumer.scopes.contains(s))
                .collect(),
        };
        let forwarded = self
            .config
            .forward_claims
            .iter()
            .filter_map(|name| claims.get(name).map(|v| (name.clone(), v.clone())))
            .collect();
        let mut identity = Identity::new(consumer.name.clone())
            .with_groups(consumer.groups.iter().cloned())
            .with_scopes(scopes);
        identity.subject = checked.subject;
        identity.expires_at = Some(checked.expires_at);
        identity.token_id = checked.token_id;
        identity.claims = forwarded;
        Ok(identity)
    }
}

/// An unknown `kid`: `keys_unavailable` when the token's consumer claim names
/// a consumer whose remote key set was never fetched, else `unknown_key`.
fn missing_kid(table: &ConsumerTable, claimed: Option<&str>) -> AuthError {
    match claimed.and_then(|key| table.by_key(key)) {
        Some(c) if c.credentials.is_empty() && c.jwks_source.is_some() => keys_unavailable(c),
        _ => unknown("no such kid"),
    }
}

fn keys_unavailable(consumer: &Consumer) -> AuthError {
    tracing::info!(
        consumer = %consumer.name,
        auth.code = "keys_unavailable",
        "Refusing a token: the consumer's remote key set has not been fetched."
    );
    AuthError::KeysUnavailable
}

fn unknown(why: &'static str) -> AuthError {
    tracing::debug!(auth.code = "unknown_key", reason = why, "Refusing a token.");
    AuthError::UnknownKey
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Verifier>();
};
