//! A test bus with the central auth service: `ledger.*` in central mode,
//! the auth service (sessions in Redis under the test's own key prefix) and a
//! `ledger` service that tells who called, plus an SDK caller.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tollgate_auth::{User, UsersFile, hash_password};
use tollgate_bus::{
    Transport,
    central::IntrospectionCache,
    config::Config,
    router::{Router, RunningRouter},
};
use tollgate_services::{
    CallError, Caller, Request, RequestOptions, RunningService, Service, TokenSource,
    central_auth::{self, LoginReply, LoginRequest, LogoutReply, LogoutRequest},
};

use super::{Fixture, TestBus, redis_server::delete_prefix};

/// The password of every test user (`ann`, `bob`: group `staff`, which may
/// call `ledger.*`).
pub const PASSWORD: &str = "correct horse battery staple";

/// The config lines of a central-mode test bus (put first in its config):
/// `ledger.*` in central mode, and `[central_auth]` with Redis at
/// `redis_url`, keys under `<prefix>:auth:`, then `extra` lines of that section.
pub fn central_toml(prefix: &str, redis_url: &str, extra: &str) -> String {
    format!(
        "[[routes]]\npattern = \"ledger.*\"\nauth = \"central\"\n\n[central_auth]\n\
         users_file = \"users.toml\"\nbus_public_key_file = \"bus.pub.pem\"\n\
         redis_url = \"{redis_url}\"\nkey_prefix = \"{prefix}:auth:\"\n{extra}\n"
    )
}

/// A running central-mode bus; see the module docs.
pub struct CentralBus {
    /// The router and its config.
    pub bus: TestBus,
    /// The Redis the auth service uses.
    pub redis_url: String,
    /// Calls through the router.
    pub caller: Caller,
    key_prefix: String,
    auth_conn: Arc<dyn Transport>,
    auth: Option<RunningService>,
    ledger: Option<RunningService>,
    routers: Vec<(RunningRouter, CancellationToken)>,
}

impl CentralBus {
    /// Starts the router, the auth service and `ledger` on `fx`, with
    /// `extra` lines in `[central_auth]`.
    pub async fn start(fx: &Fixture, redis_url: &str, extra: &str) -> Self {
        let mut central = Self::start_without_auth(fx, redis_url, extra).await;
        central.start_auth().await;
        central
    }

    /// Like [`CentralBus::start`], without the auth service (a test runs
    /// `tollgate auth-service` itself), and with the `auth-svc` registration
    /// token in `auth-svc.jwt` beside the config.
    pub async fn start_without_auth(fx: &Fixture, redis_url: &str, extra: &str) -> Self {
        let prefix = fx.ns.prefix().to_owned();
        let bus = TestBus::start_with(fx, &central_toml(&prefix, redis_url, extra)).await;
        let mut users = UsersFile::default();
        for name in ["ann", "bob"] {
            users.upsert(User {
                name: name.into(),
                password_hash: hash_password(PASSWORD).unwrap(),
                groups: vec!["staff".into()],
                scopes: vec![],
                disabled: false,
            });
        }
        users.save(&bus.dir.join("users.toml")).unwrap();
        std::fs::write(bus.dir.join("bus.pub.pem"), &bus.assertion_public_pem).unwrap();
        let ledger_conn = fx.connect().await;
        let ledger = Service::builder("ledger")
            .credential(bus.registration_token("ledger-svc"))
            .bus_key(bus.bus_key())
            .handler("whoami", |req: Request<Value>| async move {
                Ok(json!({"user": req.identity.consumer, "groups": req.identity.groups}))
            })
            .build()
            .unwrap()
            .run(ledger_conn, bus.names.clone())
            .await
            .unwrap();
        bus.wait_registered("ledger").await;
        let caller = Caller::connect(Arc::clone(fx.transport()), bus.names.clone())
            .await
            .unwrap();
        std::fs::write(
            bus.dir.join("auth-svc.jwt"),
            bus.registration_token("auth-svc"),
        )
        .unwrap();
        Self {
            redis_url: redis_url.to_owned(),
            caller,
            key_prefix: format!("{prefix}:auth:"),
            auth_conn: fx.connect().await,
            auth: None,
            ledger: Some(ledger),
            routers: Vec::new(),
            bus,
        }
    }

    /// The config as the auth service and further routers read it.
    pub fn config(&self) -> Config {
        Config::load(&self.bus.config_path()).unwrap()
    }

    /// Starts the auth service (again) and waits until the router routes to it.
    pub async fn start_auth(&mut self) {
        let token = TokenSource::fixed(self.bus.registration_token("auth-svc"));
        let running = central_auth::run(&self.config(), Arc::clone(&self.auth_conn), token)
            .await
            .unwrap();
        self.auth = Some(running);
        self.bus.wait_registered("auth").await;
    }

    /// Stops the auth service (graceful: it deregisters).
    pub async fn stop_auth(&mut self) {
        if let Some(auth) = self.auth.take() {
            auth.shutdown().await.unwrap();
        }
    }

    /// Starts one more router on the same bus (its own connection).
    pub async fn add_router(&mut self, fx: &Fixture) {
        let shutdown = CancellationToken::new();
        let running = Router::from_config(&self.config())
            .unwrap()
            .start(fx.connect().await, shutdown.clone())
            .await
            .unwrap();
        self.routers.push((running, shutdown));
    }

    /// The introspection caches of every router of this bus.
    pub fn caches(&self) -> Vec<Arc<IntrospectionCache>> {
        self.bus
            .central()
            .into_iter()
            .chain(self.routers.iter().filter_map(|(r, _)| r.central.clone()))
            .map(|c| Arc::clone(c.cache()))
            .collect()
    }

    /// `auth.login` as the application `web`, from `source`.
    pub async fn login_from(
        &self,
        user: &str,
        password: &str,
        source: &str,
    ) -> Result<LoginReply, CallError> {
        let body = LoginRequest {
            user: user.into(),
            password: password.into(),
            source: Some(source.into()),
        };
        self.caller
            .request("auth.login", &body, &self.as_web())
            .await
    }

    /// `auth.login` as the application `web`.
    pub async fn login(&self, user: &str, password: &str) -> Result<LoginReply, CallError> {
        self.login_from(user, password, "test").await
    }

    /// `auth.logout` as the application `web`.
    pub async fn logout(&self, token: &str) -> Result<LogoutReply, CallError> {
        let body = LogoutRequest {
            token: token.into(),
        };
        self.caller
            .request("auth.logout", &body, &self.as_web())
            .await
    }

    /// `ledger.whoami` (a central-mode route) with `token`.
    pub async fn whoami(&self, token: &str) -> Result<Value, CallError> {
        let options = RequestOptions::with_token(token).timeout(Duration::from_secs(20));
        self.caller
            .request("ledger.whoami", &json!({}), &options)
            .await
    }

    fn as_web(&self) -> RequestOptions {
        RequestOptions::with_token(self.bus.token("web")).timeout(Duration::from_secs(20))
    }

    /// Stops the services and every router, and deletes the test's Redis keys.
    pub async fn stop(mut self) {
        self.stop_auth().await;
        if let Some(ledger) = self.ledger.take() {
            ledger.shutdown().await.ok();
        }
        for (running, shutdown) in self.routers.drain(..) {
            shutdown.cancel();
            running.wait().await.ok();
        }
        delete_prefix(&self.redis_url, &self.key_prefix).await;
        self.auth_conn.close().await.ok();
        self.bus.stop().await;
    }
}
