//! From a [`Config`] to everything the router runs with, reporting every
//! problem at once (MassTransit's `Validate`) before anything connects.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tollgate_auth::{
    AssertionSigner, AssertionVerifier, Consumer, ConsumerStore, Policy, Revocations, Verifier,
    generate_assertion_key, load_consumers,
};

use crate::{
    central::CentralSettings,
    chain::AuthModes,
    registry::{Registration, RegistryGrants},
    reply_context::ReplyContextKey,
    router::RouterSettings,
    translate::Translator,
    trust::BROADCAST_KEY_PURPOSE,
};

use super::{Config, ConfigError, TokenPurpose};

impl Config {
    /// Checks everything `router_settings` would build; lists every problem.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        self.router_settings().map(drop)
    }

    /// Builds the router's settings: loads consumers and keys, compiles the
    /// policy, route modes and mappings. Errors list every problem found.
    pub fn router_settings(&self) -> Result<RouterSettings, Vec<ConfigError>> {
        let mut errors = Vec::new();
        self.check_basics(&mut errors);
        self.check_central(&mut errors);
        self.check_trust(&mut errors);
        let baseline = self.consumer_list(&mut errors);
        let store = ConsumerStore::with_consumers(baseline.clone())
            .map_err(|e| errors.push(ConfigError::new("auth.consumers", e.to_string())))
            .ok();
        let policy = Policy::from_spec(&self.policy)
            .map_err(|e| errors.push(ConfigError::new("policy", e.to_string())))
            .ok();
        let modes = AuthModes::new(self.default_auth, &self.routes)
            .map_err(|e| errors.push(ConfigError::new("routes", e)))
            .ok();
        let translator = Translator::new(&self.translation.mappings)
            .map_err(|problems| {
                errors.extend(
                    problems
                        .into_iter()
                        .map(|p| ConfigError::new("translation.mappings", p.to_string())),
                );
            })
            .ok();
        let keys = self.assertion_keys(&mut errors);
        if let Some(store) = &store {
            self.check_grants(store, &mut errors);
        }
        let (
            Some(store),
            Some(policy),
            Some(modes),
            Some(translator),
            Some((signer, reply_key, assertions, trust_secret)),
            true,
        ) = (store, policy, modes, translator, keys, errors.is_empty())
        else {
            return Err(errors);
        };
        let (store, revocations) = (Arc::new(store), Arc::new(Revocations::new()));
        let trust = self.trust_settings(baseline, &revocations, &trust_secret);
        let verifier = Verifier::new(
            Arc::clone(&store),
            Arc::clone(&revocations),
            self.verifier_config(TokenPurpose::Caller),
        );
        let registration_verifier = Verifier::new(
            store,
            revocations,
            self.verifier_config(TokenPurpose::Registration),
        );
        Ok(RouterSettings {
            names: self.bus_names(),
            instance: self
                .instance
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
            verifier: Arc::new(verifier),
            registration_verifier: Arc::new(registration_verifier),
            policy: Arc::new(policy),
            signer,
            assertions,
            reply_key: Arc::new(reply_key),
            reply_timeout: Duration::from_secs(self.router.reply_timeout_secs),
            readmit_max_age: Duration::from_secs(self.router.readmit_max_age_secs),
            translator: Arc::new(translator),
            grants: RegistryGrants::new(self.registry.grants.clone()),
            limits: self.limits,
            modes,
            strip_credential: self.auth.strip_credential,
            identity_headers: self.auth.identity_headers,
            prefetch: self.router.prefetch,
            hold_calls: self.router.hold_calls(),
            max_registration_ttl: Duration::from_secs(self.registry.max_ttl_secs),
            central: self.central_settings(),
            trust,
        })
    }

    /// The consumers of `[auth]` (file and inline), for issuing tokens.
    pub fn consumers(&self) -> Result<ConsumerStore, Vec<ConfigError>> {
        let mut errors = Vec::new();
        match self.consumer_store(&mut errors) {
            Some(store) if errors.is_empty() => Ok(store),
            _ => Err(errors),
        }
    }

    /// The consumers of `[auth]` as configured, which trust changes apply on
    /// top of (the central auth service's JWT verifier).
    pub fn consumer_baseline(&self) -> Result<Vec<Consumer>, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let consumers = self.consumer_list(&mut errors);
        if errors.is_empty() {
            Ok(consumers)
        } else {
            Err(errors)
        }
    }

    /// How the routers ask the central auth service (`[central_auth]`).
    pub fn central_settings(&self) -> CentralSettings {
        let c = &self.central_auth;
        CentralSettings {
            service: c.service.clone(),
            timeout: Duration::from_millis(c.timeout_ms),
            attempts: c.attempts,
            retry_backoff: Duration::from_millis(c.retry_backoff_ms),
            cache_ttl: Duration::from_millis(c.cache_ttl_ms),
            cache_max_entries: c.cache_max_entries,
        }
    }

    /// The metrics address, if configured and valid.
    pub fn metrics_socket(&self) -> Option<SocketAddr> {
        self.metrics_addr.as_deref().and_then(|a| a.parse().ok())
    }

    pub(super) fn check_basics(&self, errors: &mut Vec<ConfigError>) {
        let ns_ok = (1..=64).contains(&self.namespace.len())
            && self
                .namespace
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ns_ok {
            errors.push(ConfigError::new(
                "namespace",
                "1–64 characters of a-z, 0-9, - and _",
            ));
        }
        if let Err(e) = crate::BrokerNodes::parse(&self.amqp_url) {
            errors.push(ConfigError::new("amqp_url", e.to_string()));
        }
        if let Some(addr) = &self.metrics_addr
            && addr.parse::<SocketAddr>().is_err()
        {
            errors.push(ConfigError::new(
                "metrics_addr",
                format!("`{addr}` is not host:port"),
            ));
        }
        self.http.check(self.router.reply_timeout_secs, errors);
        if self.router.prefetch == 0 {
            errors.push(ConfigError::new("router.prefetch", "must be at least 1"));
        }
        if !(1..=super::MAX_ROUTER_THREADS).contains(&self.router.threads) {
            errors.push(ConfigError::new(
                "router.threads",
                format!("must be 1–{}", super::MAX_ROUTER_THREADS),
            ));
        }
        if self.router.hold_calls() > 0 && self.router.hold_calls() >= self.router.prefetch {
            errors.push(ConfigError::new(
                "router.hold_calls",
                format!(
                    "must be below router.prefetch ({}): held calls keep their ingress delivery, and other messages need a place",
                    self.router.prefetch
                ),
            ));
        }
        let l = &self.limits;
        if l.max_message_bytes == 0 || l.max_header_bytes == 0 || l.max_header_count == 0 {
            errors.push(ConfigError::new("limits", "every limit must be at least 1"));
        }
        if self.router.readmit_max_age_secs > 2_592_000 {
            errors.push(ConfigError::new(
                "router.readmit_max_age_secs",
                "must be 0–2592000 (30 days)",
            ));
        }
        if !(1..=86_400).contains(&self.router.reply_timeout_secs) {
            errors.push(ConfigError::new(
                "router.reply_timeout_secs",
                "must be 1–86400",
            ));
        }
        for (field, problem) in self.auth.verifier.problems() {
            errors.push(ConfigError::new(format!("auth.verifier.{field}"), problem));
        }
        let registration = &self.auth.registration_audience;
        if registration.is_empty() {
            errors.push(ConfigError::new(
                "auth.registration_audience",
                "must not be empty: it keeps registration tokens apart from callers'",
            ));
        } else if self.auth.verifier.audiences.contains(registration) {
            errors.push(ConfigError::new(
                "auth.registration_audience",
                format!("`{registration}` is also a caller audience in auth.verifier.audiences"),
            ));
        }
        if self.dead_letters.max_length == 0 || self.dead_letters.max_length_bytes == 0 {
            errors.push(ConfigError::new(
                "dead_letters",
                "max_length and max_length_bytes must be at least 1",
            ));
        }
        if !(1..=300).contains(&self.auth.assertion_ttl_secs) {
            errors.push(ConfigError::new("auth.assertion_ttl_secs", "must be 1–300"));
        }
        if !(1..=3600).contains(&self.registry.max_ttl_secs) {
            errors.push(ConfigError::new("registry.max_ttl_secs", "must be 1–3600"));
        }
    }

    fn consumer_store(&self, errors: &mut Vec<ConfigError>) -> Option<ConsumerStore> {
        ConsumerStore::with_consumers(self.consumer_list(errors))
            .map_err(|e| errors.push(ConfigError::new("auth.consumers", e.to_string())))
            .ok()
    }

    /// The consumers of `[auth]`: the file's, then the inline ones.
    fn consumer_list(&self, errors: &mut Vec<ConfigError>) -> Vec<Consumer> {
        let mut consumers: Vec<Consumer> = Vec::new();
        if let Some(file) = &self.auth.consumers_file {
            match load_consumers(&self.resolve(file)) {
                Ok(found) => consumers.extend(found),
                Err(e) => errors.push(ConfigError::new("auth.consumers_file", e.to_string())),
            }
        }
        for (i, spec) in self.auth.consumers.iter().enumerate() {
            match spec.build(&self.base_dir) {
                Ok(c) => consumers.push(c),
                Err(e) => errors.push(ConfigError::new(
                    format!("auth.consumers[{i}]"),
                    e.to_string(),
                )),
            }
        }
        consumers
    }

    fn assertion_keys(
        &self,
        errors: &mut Vec<ConfigError>,
    ) -> Option<(
        AssertionSigner,
        ReplyContextKey,
        AssertionVerifier,
        [u8; 32],
    )> {
        let pem = match (
            &self.auth.assertion_key_file,
            self.auth.ephemeral_assertion_key,
        ) {
            (Some(file), _) => std::fs::read(self.resolve(file))
                .map_err(|e| {
                    errors.push(ConfigError::new(
                        "auth.assertion_key_file",
                        format!("{}: {e}", file.display()),
                    ))
                })
                .ok()?,
            (None, true) => generate_assertion_key()
                .map_err(|e| {
                    errors.push(ConfigError::new(
                        "auth.ephemeral_assertion_key",
                        e.to_string(),
                    ))
                })
                .ok()?
                .0
                .into_bytes(),
            (None, false) => {
                errors.push(ConfigError::new(
                    "auth.assertion_key_file",
                    "required: the bus's Ed25519 key (create one with `tollgate keys generate`)",
                ));
                return None;
            }
        };
        let signer = AssertionSigner::from_pem(&pem)
            .map_err(|e| errors.push(ConfigError::new("auth.assertion_key_file", e.to_string())))
            .ok()?
            .with_ttl(Duration::from_secs(self.auth.assertion_ttl_secs));
        let reply_secret = signer
            .derive_key(b"tollgate reply context")
            .map_err(|e| errors.push(ConfigError::new("auth.assertion_key_file", e.to_string())))
            .ok()?;
        let assertions = signer
            .verifier()
            .map_err(|e| errors.push(ConfigError::new("auth.assertion_key_file", e.to_string())))
            .ok()?;
        let trust_secret = signer
            .derive_key(BROADCAST_KEY_PURPOSE)
            .map_err(|e| errors.push(ConfigError::new("auth.assertion_key_file", e.to_string())))
            .ok()?;
        Some((
            signer,
            ReplyContextKey::new(&reply_secret),
            assertions,
            trust_secret,
        ))
    }

    fn check_grants(&self, store: &ConsumerStore, errors: &mut Vec<ConfigError>) {
        for (i, grant) in self.registry.grants.iter().enumerate() {
            let field = format!("registry.grants[{i}]");
            if store.get(&grant.consumer).is_none() {
                errors.push(ConfigError::new(
                    &field,
                    format!("unknown consumer `{}`", grant.consumer),
                ));
            }
            for service in &grant.services {
                if service != "*" && !Registration::is_valid_service_name(service) {
                    errors.push(ConfigError::new(
                        &field,
                        format!("invalid service name `{service}`"),
                    ));
                }
            }
        }
    }
}
