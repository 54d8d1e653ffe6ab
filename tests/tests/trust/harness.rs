//! Two routers with a trust store, and what the tests ask of them.

use std::{sync::Arc, time::Duration};

use base64::Engine;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tollgate_auth::{TrustChange, testkit::TestKey};
use tollgate_bus::{
    ErrorBody,
    config::Config,
    events::Entry,
    router::{Answer, DirectEntry, Router, RunningRouter},
};
use tollgate_services::RunningService;
use tollgate_tests::support::{Fixture, TestBus, delete_prefix, redis_url, wait_until};

use super::flow::Flow;

/// How long every router has to apply a change (the bound).
pub(crate) const APPLY_WITHIN: Duration = Duration::from_secs(1);

/// Two routers on one bus with a trust store, and the `orders` service;
/// the test bus's policy lets `alice` (only) change trust state.
pub(crate) struct TrustBus {
    pub(crate) fx: Fixture,
    pub(crate) bus: TestBus,
    orders: Option<RunningService>,
    entries: Vec<Arc<DirectEntry>>,
    routers: Vec<(RunningRouter, CancellationToken)>,
    prefix: String,
}

/// What became of a call: served (any reply, also the service's own error)
/// or refused by the gate with a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Served,
    Refused(String),
}

impl TrustBus {
    pub(crate) async fn start() -> Self {
        let fx = Fixture::amqp().await;
        let prefix = format!("{}:trust:", fx.ns.prefix());
        let toml = format!(
            "[trust]\nredis_url = \"{}\"\nkey_prefix = \"{prefix}\"\n",
            redis_url()
        );
        let bus = TestBus::start_with(&fx, &toml).await;
        let orders = bus.run_orders(fx.connect().await, |b| b).await;
        let mut trust = Self {
            entries: vec![Arc::new(bus.open_entry().await)],
            orders: Some(orders),
            routers: Vec::new(),
            prefix,
            bus,
            fx,
        };
        trust.add_router().await;
        trust
    }

    /// Starts one more router on its own connection; its entry is the last.
    pub(crate) async fn add_router(&mut self) {
        let config = Config::load(&self.bus.config_path()).unwrap();
        let shutdown = CancellationToken::new();
        let running = Router::from_config(&config)
            .unwrap()
            .start(self.fx.connect().await, shutdown.clone())
            .await
            .unwrap();
        self.entries
            .push(Arc::new(running.open_entry(Entry::Http).await.unwrap()));
        self.routers.push((running, shutdown));
    }

    /// Calls with `token` through every router until stopped.
    pub(crate) fn flow(&self, token: &str) -> Flow {
        Flow::start(&self.entries, token)
    }

    /// `orders.get` with `token` through router `router`.
    pub(crate) async fn call(&self, router: usize, token: &str) -> Outcome {
        let envelope = self
            .bus
            .request(&json!({"order_id": "none"}), Some(token), None);
        let answer = self.entries[router]
            .send(envelope, "orders.get", Some(Duration::from_secs(10)))
            .await
            .unwrap();
        match answer {
            Answer::Reply(_) | Answer::Accepted => Outcome::Served,
            Answer::Refused(rejection) => Outcome::Refused(rejection.code.as_str().to_owned()),
        }
    }

    /// Whether every router serves `token`.
    pub(crate) async fn served_everywhere(&self, token: &str) -> bool {
        for router in 0..self.entries.len() {
            if self.call(router, token).await != Outcome::Served {
                return false;
            }
        }
        true
    }

    /// Asks `route` as `consumer` through router 0: the reply's JSON, or the
    /// refusal's (gate or trust service) code as `Err`.
    pub(crate) async fn trust(
        &self,
        consumer: &str,
        route: &str,
        body: &Value,
    ) -> Result<Value, String> {
        let token = self.bus.token(consumer);
        let envelope = self.bus.request(body, Some(&token), None);
        let answer = self.entries[0]
            .send(envelope, route, Some(Duration::from_secs(10)))
            .await
            .unwrap();
        match answer {
            Answer::Reply(reply) => match ErrorBody::from_envelope(&reply) {
                Some(error) => Err(error.error.code),
                None => Ok(serde_json::from_slice(&reply.payload).unwrap()),
            },
            Answer::Refused(rejection) => Err(rejection.code.as_str().to_owned()),
            Answer::Accepted => panic!("a trust request always gets a reply"),
        }
    }

    /// Takes `change` as the admin; panics if refused.
    pub(crate) async fn change(&self, route: &str, change: &TrustChange) {
        let body = serde_json::to_value(change).unwrap();
        let reply = self.trust("alice", route, &body).await.unwrap();
        assert!(reply.get("applied").is_some(), "{reply}");
    }

    /// Waits until every router refuses `token` with `code` (each router
    /// asked in turn, so each is shown to refuse it).
    pub(crate) async fn wait_refused_everywhere(&self, token: &str, code: &str) {
        for router in 0..self.entries.len() {
            wait_until(
                &format!("router {router} to refuse the token with {code}"),
                APPLY_WITHIN,
                async || self.call(router, token).await == Outcome::Refused(code.into()),
            )
            .await;
        }
    }

    pub(crate) async fn stop(mut self) {
        if let Some(orders) = self.orders.take() {
            orders.shutdown().await.ok();
        }
        for (running, shutdown) in self.routers.drain(..) {
            shutdown.cancel();
            running.wait().await.ok();
        }
        delete_prefix(&redis_url(), &self.prefix).await;
        self.bus.stop().await;
        self.fx.cleanup().await;
    }
}

pub(crate) fn revoke_token(jti: &str) -> TrustChange {
    TrustChange::RevokeToken {
        jti: jti.into(),
        until: None,
    }
}

pub(crate) fn base64_secret(key: &TestKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.secret.clone().unwrap())
}
