//! The central auth service (`tollgate auth-service`): a service on the bus
//! like any other, built with this SDK and registered with a service account,
//! with four routes under its name (default `auth`):
//!
//! * `login` — user name and password (argon2id) → a new opaque session
//!   token (256 random bits, stored only as its hash), with an idle timeout
//!   and an absolute lifetime; failures back off per account and source;
//! * `introspect` — a session token or a JWT → the identity, or inactive
//!   with a code (what routers ask for `central`-mode routes);
//! * `logout` — ends the session at once, in the store and in every router's
//!   cache (announced on the control exchange);
//! * `disable_user` — disables a user and ends all of their sessions.
//!
//! Sessions live in Redis (shared by every instance) or in memory (the demo).

use std::{sync::Arc, time::Duration};

use tollgate_auth::{AssertionVerifier, ConsumerStore, IntrospectRequest, SessionLimits, Verifier};
use tollgate_bus::{
    BusNames, Transport,
    config::{Config, SessionStoreKind, TokenPurpose},
    trust::{self, LiveTrust},
};

use crate::{
    credential::TokenSource,
    error::{CentralAuthError, ServiceError},
    request::Request,
    running::RunningService,
    service::Service,
};

mod announce;
mod core;
mod store;
mod throttle;
mod users;
mod wire;

pub use announce::SessionsAnnouncer;
pub use core::AuthCore;
pub use store::{MemorySessionStore, RedisSessionStore, SessionStore, Touched};
pub use throttle::LoginThrottle;
pub use users::Users;
pub use wire::{
    DisableUserReply, DisableUserRequest, LOGIN_FAILED, LOGIN_THROTTLED, LoginReply, LoginRequest,
    LogoutReply, LogoutRequest, STORE_UNAVAILABLE,
};

/// The SDK service answering the four routes with `core`, registering as
/// `name` with `credential`, admitting only what the bus asserted.
pub fn service(
    core: Arc<AuthCore>,
    name: &str,
    credential: TokenSource,
    bus_key: AssertionVerifier,
) -> Result<Service, ServiceError> {
    let (login, introspect, logout, disable) = (
        Arc::clone(&core),
        Arc::clone(&core),
        Arc::clone(&core),
        core,
    );
    Service::builder(name)
        .credential(credential)
        .bus_key(bus_key)
        .handler("login", move |req: Request<LoginRequest>| {
            let core = Arc::clone(&login);
            async move { core.login(&req.identity.consumer, req.body).await }
        })
        .handler("introspect", move |req: Request<IntrospectRequest>| {
            let core = Arc::clone(&introspect);
            async move { core.introspect(&req.body.token).await }
        })
        .handler("logout", move |req: Request<LogoutRequest>| {
            let core = Arc::clone(&logout);
            async move { core.logout(&req.body.token).await }
        })
        .handler("disable_user", move |req: Request<DisableUserRequest>| {
            let core = Arc::clone(&disable);
            async move { core.disable_user(&req.body.user).await }
        })
        .build()
}

/// Builds the service's state from `[central_auth]` of `config`: the users
/// file (required), the session store (Redis is connected now), the JWT
/// verifier of the bus's consumers, the login back-off.
///
/// Errors name the missing or bad setting, or the store that does not answer.
pub async fn core_from_config(
    config: &Config,
    announcer: Option<SessionsAnnouncer>,
) -> Result<AuthCore, CentralAuthError> {
    let c = &config.central_auth;
    let users_file = c.users_file.as_ref().ok_or(CentralAuthError::Config {
        field: "users_file",
        message: "required: the users file (`tollgate users add NAME`)".into(),
    })?;
    let users = Users::from_file(config.resolve(users_file))?;
    let store: Arc<dyn SessionStore> = match c.store {
        SessionStoreKind::Redis => {
            Arc::new(RedisSessionStore::connect(&c.redis_url, c.key_prefix.clone()).await?)
        }
        SessionStoreKind::Memory => Arc::new(MemorySessionStore::new()),
    };
    let baseline = config
        .consumer_baseline()
        .map_err(|errors| CentralAuthError::Config {
            field: "(auth.consumers)",
            message: errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        })?;
    let consumers = Arc::new(ConsumerStore::with_consumers(baseline.clone())?);
    // A user's identity names the user as its consumer: one named like a
    // consumer would get that consumer's rights from the policy.
    if let Some(clash) = users
        .current()
        .users
        .iter()
        .find(|u| consumers.get(&u.name).is_some())
    {
        return Err(CentralAuthError::Config {
            field: "users_file",
            message: format!(
                "user `{}` has the name of a consumer; rename one (the policy could not tell them apart)",
                clash.name
            ),
        });
    }
    let revocations = Arc::new(tollgate_auth::Revocations::new());
    let jwt = Verifier::new(
        Arc::clone(&consumers),
        Arc::clone(&revocations),
        config.verifier_config(TokenPurpose::Caller),
    );
    let trust = config
        .trust
        .redis_url
        .is_some()
        .then(|| Arc::new(LiveTrust::new(baseline, revocations, consumers)));
    Ok(AuthCore {
        users,
        store,
        limits: SessionLimits {
            idle_timeout: Duration::from_secs(c.idle_timeout_secs),
            absolute_lifetime: Duration::from_secs(c.absolute_lifetime_secs),
        },
        throttle: LoginThrottle::new(
            Duration::from_millis(c.login_backoff_base_ms),
            Duration::from_secs(c.login_backoff_max_secs),
        ),
        jwt: Some(Arc::new(jwt)),
        announcer,
        decoy_hash: decoy()?,
        trust,
    })
}

/// Starts the central auth service `config` describes on `transport`,
/// registering with `credential`: builds its state ([`core_from_config`]),
/// reads the bus's public key, and runs until shut down.
pub async fn run(
    config: &Config,
    transport: Arc<dyn Transport>,
    credential: TokenSource,
) -> Result<RunningService, CentralAuthError> {
    let c = &config.central_auth;
    let key_file = c
        .bus_public_key_file
        .as_ref()
        .ok_or(CentralAuthError::Config {
            field: "bus_public_key_file",
            message: "required: the bus's public assertion key".into(),
        })?;
    let pem = std::fs::read(config.resolve(key_file)).map_err(|e| CentralAuthError::Config {
        field: "bus_public_key_file",
        message: format!("{}: {e}", key_file.display()),
    })?;
    let bus_key = AssertionVerifier::from_public_pem(&pem).map_err(CentralAuthError::Load)?;
    let names: BusNames = config.bus_names();
    let announcer = SessionsAnnouncer::new(
        Arc::clone(&transport),
        names.clone(),
        c.service.clone(),
        credential.clone(),
    );
    let core = core_from_config(config, Some(announcer)).await?;
    follow_trust(config, &core, &transport).await?;
    let service = service(Arc::new(core), &c.service, credential, bus_key)?;
    Ok(service.run(transport, names).await?)
}

/// Loads the trust state into `core`'s JWT verifier (waiting for Redis) and
/// follows it: re-read at every trust broadcast, and periodically.
async fn follow_trust(
    config: &Config,
    core: &AuthCore,
    transport: &Arc<dyn Transport>,
) -> Result<(), CentralAuthError> {
    let (Some(live), Some(store)) = (&core.trust, config.trust_store()) else {
        return Ok(());
    };
    let store = Arc::new(store.map_err(|e| CentralAuthError::Trust(e.to_string()))?);
    trust::load_when_ready(&store, live).await;
    trust::follow(
        store,
        Arc::downgrade(live),
        Arc::clone(transport),
        &config.bus_names(),
        Duration::from_secs(config.trust.resync_secs),
    )
    .await
    .map_err(|e| CentralAuthError::Trust(e.to_string()))?;
    Ok(())
}

/// A decoy password hash (see [`tollgate_auth::decoy_hash`]).
pub fn decoy() -> Result<String, CentralAuthError> {
    tollgate_auth::decoy_hash().map_err(|e| CentralAuthError::Config {
        field: "(password hashing)",
        message: e.to_string(),
    })
}
