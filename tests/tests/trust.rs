//! Trust state at runtime (issue 10, item 1) against RabbitMQ and Redis,
//! through two real routers: a revocation, a disabled consumer and a removed
//! key are refused by both routers within a second, and nothing else is
//! disturbed; a router started later loads them; only the policy's admin may
//! change trust state; a forged broadcast on the control exchange is ignored.

// Test code: a failed expectation should panic loudly.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tollgate_auth::{Algorithm, TrustChange, TrustEntry, testkit::TestKey};
use tollgate_bus::{
    Address, Envelope, ErrorBody, SubscribeOptions, bus_topology,
    config::Config,
    events::Entry,
    registry::Announcement,
    router::{Answer, DirectEntry, Router, RunningRouter},
    trust::{BroadcastKey, SignedChange},
};
use tollgate_services::{CallError, RequestOptions, RunningService};
use tollgate_tests::support::{
    CentralBus, Fixture, TestBus, amqp_url, delete_prefix, now, redis_url, tollgate_binary,
    wait_until,
};

/// How long every router has to apply a change (the bound).
const APPLY_WITHIN: Duration = Duration::from_secs(1);

/// Two routers on one bus with a trust store, and the `orders` service;
/// the test bus's policy lets `alice` (only) change trust state.
struct TrustBus {
    fx: Fixture,
    bus: TestBus,
    orders: Option<RunningService>,
    entries: Vec<DirectEntry>,
    routers: Vec<(RunningRouter, CancellationToken)>,
    prefix: String,
}

/// What became of a call: served (any reply, also the service's own error)
/// or refused by the gate with a code.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Served,
    Refused(String),
}

impl TrustBus {
    async fn start() -> Self {
        let fx = Fixture::amqp().await;
        let prefix = format!("{}:trust:", fx.ns.prefix());
        let toml = format!(
            "[trust]\nredis_url = \"{}\"\nkey_prefix = \"{prefix}\"\n",
            redis_url()
        );
        let bus = TestBus::start_with(&fx, &toml).await;
        let orders = bus.run_orders(fx.connect().await, |b| b).await;
        let mut trust = Self {
            entries: vec![bus.open_entry().await],
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
    async fn add_router(&mut self) {
        let config = Config::load(&self.bus.config_path()).unwrap();
        let shutdown = CancellationToken::new();
        let running = Router::from_config(&config)
            .unwrap()
            .start(self.fx.connect().await, shutdown.clone())
            .await
            .unwrap();
        self.entries
            .push(running.open_entry(Entry::Http).await.unwrap());
        self.routers.push((running, shutdown));
    }

    /// `orders.get` with `token` through router `router`.
    async fn call(&self, router: usize, token: &str) -> Outcome {
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
    async fn served_everywhere(&self, token: &str) -> bool {
        for router in 0..self.entries.len() {
            if self.call(router, token).await != Outcome::Served {
                return false;
            }
        }
        true
    }

    /// Asks `route` as `consumer` through router 0: the reply's JSON, or the
    /// refusal's (gate or trust service) code as `Err`.
    async fn trust(&self, consumer: &str, route: &str, body: &Value) -> Result<Value, String> {
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
    async fn change(&self, route: &str, change: &TrustChange) {
        let body = serde_json::to_value(change).unwrap();
        let reply = self.trust("alice", route, &body).await.unwrap();
        assert!(reply.get("applied").is_some(), "{reply}");
    }

    /// Waits until every router refuses `token` with `code` (each router
    /// asked in turn, so each is shown to refuse it).
    async fn wait_refused_everywhere(&self, token: &str, code: &str) {
        for router in 0..self.entries.len() {
            wait_until(
                &format!("router {router} to refuse the token with {code}"),
                APPLY_WITHIN,
                async || self.call(router, token).await == Outcome::Refused(code.into()),
            )
            .await;
        }
    }

    async fn stop(mut self) {
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

fn revoke_token(jti: &str) -> TrustChange {
    TrustChange::RevokeToken {
        jti: jti.into(),
        until: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_by_both_routers_and_by_a_router_started_later() {
    let mut t = TrustBus::start().await;
    let leaked = t.bus.token_with("web", 300, json!({"jti": "leaked-1"}));
    let other = t.bus.token_with("web", 300, json!({"jti": "other-1"}));
    assert!(
        t.served_everywhere(&leaked).await,
        "served before the revocation"
    );

    t.change("tollgate.trust.revoke", &revoke_token("leaked-1"))
        .await;
    // The router that took the change refuses the very next message.
    assert_eq!(
        t.call(0, &leaked).await,
        Outcome::Refused("token_revoked".into())
    );
    t.wait_refused_everywhere(&leaked, "token_revoked").await;
    // Nothing else is disturbed: another token of the same consumer, and
    // another consumer, still pass on both routers.
    assert!(t.served_everywhere(&other).await);
    assert!(t.served_everywhere(&t.bus.token("alice")).await);

    // A router started after the revocation loads it before it serves.
    t.add_router().await;
    assert_eq!(
        t.call(2, &leaked).await,
        Outcome::Refused("token_revoked".into())
    );
    assert_eq!(t.call(2, &other).await, Outcome::Served);

    // Listed, with its expiry (the longest token lifetime by default).
    let listed = t
        .trust("alice", "tollgate.trust.list", &json!({}))
        .await
        .unwrap();
    let entries: Vec<TrustEntry> = serde_json::from_value(listed["entries"].clone()).unwrap();
    assert_eq!(entries.len(), 1, "{listed}");
    assert_eq!(entries[0].change, revoke_token("leaked-1"));
    let expires_at = entries[0].expires_at.unwrap();
    assert!(
        expires_at > now() + 86_000 && expires_at <= now() + 86_400 + 60,
        "{expires_at}"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_consumer_is_refused_by_both_routers_until_enabled() {
    let t = TrustBus::start().await;
    let web = t.bus.token("web");
    assert!(t.served_everywhere(&web).await);

    let disable = TrustChange::DisableConsumer {
        consumer: "web".into(),
    };
    t.change("tollgate.trust.consumers", &disable).await;
    assert_eq!(
        t.call(0, &web).await,
        Outcome::Refused("token_revoked".into())
    );
    t.wait_refused_everywhere(&web, "token_revoked").await;
    assert!(t.served_everywhere(&t.bus.token("alice")).await);

    let enable = TrustChange::EnableConsumer {
        consumer: "web".into(),
    };
    t.change("tollgate.trust.consumers", &enable).await;
    for router in 0..2 {
        wait_until("web to be served again", APPLY_WITHIN, async || {
            t.call(router, &web).await == Outcome::Served
        })
        .await;
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_serves_its_tokens_at_once_and_the_removed_one_is_refused_by_both_routers() {
    let t = TrustBus::start().await;
    let old = t.bus.token("web");
    let new_key = TestKey::generate(Algorithm::HS256, "web-k2");
    let add = TrustChange::AddCredential {
        consumer: "web".into(),
        credential: tollgate_auth::CredentialSpec {
            kid: Some("web-k2".into()),
            algorithm: Some(Algorithm::HS256),
            secret_base64: Some(base64_secret(&new_key)),
            ..Default::default()
        },
    };
    t.change("tollgate.trust.consumers", &add).await;
    let claims = json!({"key": "web", "sub": "web-user", "iat": now(), "exp": now() + 300});
    let new = new_key.sign(&claims);
    assert_eq!(t.call(0, &new).await, Outcome::Served);
    for router in 0..2 {
        wait_until("the new key to be known", APPLY_WITHIN, async || {
            t.call(router, &new).await == Outcome::Served
        })
        .await;
    }

    let remove = TrustChange::RemoveCredential {
        consumer: Some("web".into()),
        kid: "web-k1".into(),
    };
    t.change("tollgate.trust.consumers", &remove).await;
    assert_eq!(
        t.call(0, &old).await,
        Outcome::Refused("invalid_token".into())
    );
    t.wait_refused_everywhere(&old, "invalid_token").await;
    assert!(t.served_everywhere(&new).await);
    assert!(t.served_everywhere(&t.bus.token("alice")).await);
    // The listing shows the added key by kid only, never its secret.
    let listed = t
        .trust("alice", "tollgate.trust.list", &json!({}))
        .await
        .unwrap();
    let text = listed.to_string();
    assert!(
        text.contains("web-k2") && !text.contains(&base64_secret(&new_key)),
        "{text}"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_policys_admin_changes_trust_state_and_forged_broadcasts_are_ignored() {
    let t = TrustBus::start().await;
    let web = t.bus.token_with("web", 300, json!({"jti": "web-1"}));
    // A caller the policy does not allow is refused by the gate.
    let revoke_web = serde_json::to_value(TrustChange::RevokeConsumer {
        consumer: "alice".into(),
    })
    .unwrap();
    for route in ["tollgate.trust.revoke", "tollgate.trust.list"] {
        assert_eq!(
            t.trust("web", route, &revoke_web).await,
            Err("forbidden".into())
        );
    }
    // The admin's change kinds are bound to their route.
    let on_wrong_route = t
        .trust("alice", "tollgate.trust.consumers", &revoke_web)
        .await;
    assert_eq!(on_wrong_route, Err("invalid_trust_change".into()));

    // Forged broadcasts revoking `web`: unsigned, and signed with another key.
    let entry = TrustEntry {
        change: TrustChange::RevokeConsumer {
            consumer: "web".into(),
        },
        expires_at: None,
    };
    let forger = BroadcastKey::new(&[7; 32], t.bus.names.namespace());
    let signed = forger.seal(&entry, "forged-1", now());
    let unsigned = SignedChange {
        signature: String::new(),
        ..forger.seal(&entry, "forged-2", now())
    };
    let control = Address::new(t.bus.names.control_exchange(), "");
    for forged in [signed, unsigned] {
        let envelope: Envelope = Announcement::TrustChanged(forged)
            .to_envelope(None)
            .unwrap();
        t.fx.transport().publish(&control, &envelope).await.unwrap();
    }
    // A genuine change published after them: once both routers applied it,
    // they have judged the forged ones (each router's control queue is in order).
    let marker = t.bus.token_with("web", 300, json!({"jti": "marker-1"}));
    t.change("tollgate.trust.revoke", &revoke_token("marker-1"))
        .await;
    t.wait_refused_everywhere(&marker, "token_revoked").await;
    assert!(
        t.served_everywhere(&web).await,
        "a forged broadcast was applied"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_trust_store_the_trust_routes_say_so() {
    let fx = Fixture::amqp().await;
    let bus = TestBus::start(&fx).await;
    let entry = bus.open_entry().await;
    let body = serde_json::to_value(revoke_token("x")).unwrap();
    let envelope = bus.request(&body, Some(&bus.token("alice")), None);
    let answer = entry
        .send(
            envelope,
            "tollgate.trust.revoke",
            Some(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    let Answer::Reply(reply) = answer else {
        panic!("expected a reply, got {answer:?}");
    };
    let error = ErrorBody::from_envelope(&reply).unwrap();
    assert_eq!(error.error.code, "trust_store_unavailable");
    bus.stop().await;
    fx.cleanup().await;
}

fn base64_secret(key: &TestKey) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(key.secret.clone().unwrap())
}

/// `tollgate ARGS --token TOKEN` on the test bus: exit code, stdout, stderr.
async fn tollgate(t: &TrustBus, args: &[&str], token: &str) -> (i32, String, String) {
    let output = tokio::process::Command::new(tollgate_binary())
        .args(args)
        .args(["--token", token, "--amqp", &amqp_url(), "--namespace"])
        .arg(t.bus.names.namespace())
        .env("RUST_LOG", "error")
        .output()
        .await
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_change_trust_state_with_the_operators_token() {
    let t = TrustBus::start().await;
    let (alice, web) = (t.bus.token("alice"), t.bus.token("web"));
    let leaked = t.bus.token_with("web", 300, json!({"jti": "cli-1"}));
    assert!(t.served_everywhere(&leaked).await);

    let (code, out, err) = tollgate(&t, &["revoke", "--jti", "cli-1"], &alice).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("applied"), "{out}");
    t.wait_refused_everywhere(&leaked, "token_revoked").await;

    let (code, _, err) = tollgate(&t, &["revoke", "--consumer", "alice"], &web).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("forbidden"), "{err}");
    assert!(
        t.served_everywhere(&alice).await,
        "the refused revocation changed nothing"
    );

    let (code, out, err) = tollgate(&t, &["consumers", "disable", "web"], &alice).await;
    assert_eq!(code, 0, "{out}{err}");
    t.wait_refused_everywhere(&web, "token_revoked").await;
    let (code, out, _) = tollgate(&t, &["revocations", "list"], &alice).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("cli-1") && out.contains("disable_consumer"),
        "{out}"
    );
    let (code, _, err) = tollgate(&t, &["consumers", "enable", "nobody"], &alice).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("invalid_trust_change"), "{err}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_central_auth_service_refuses_a_revoked_jwt_within_a_second() {
    let fx = Fixture::amqp().await;
    let prefix = format!("{}:trust:", fx.ns.prefix());
    let extra = format!(
        "cache_ttl_ms = 0\n[trust]\nredis_url = \"{}\"\nkey_prefix = \"{prefix}\"\n",
        redis_url()
    );
    let central = CentralBus::start(&fx, &redis_url(), &extra).await;
    // `ledger.*` is in central mode: the auth service verifies the JWT.
    let leaked = central
        .bus
        .token_with("alice", 300, json!({"jti": "central-1"}));
    let other = central
        .bus
        .token_with("alice", 300, json!({"jti": "central-2"}));
    assert_eq!(central.whoami(&leaked).await.unwrap()["user"], "alice");

    let options = RequestOptions::with_token(central.bus.token("alice"));
    let reply: Value = central
        .caller
        .request(
            "tollgate.trust.revoke",
            &revoke_token("central-1"),
            &options,
        )
        .await
        .unwrap();
    assert!(reply.get("applied").is_some(), "{reply}");
    wait_until(
        "the auth service to refuse the JWT",
        APPLY_WITHIN,
        async || {
            matches!(
                central.whoami(&leaked).await,
                Err(CallError::Rejected { .. })
            )
        },
    )
    .await;
    assert_eq!(central.whoami(&other).await.unwrap()["user"], "alice");
    central.stop().await;
    delete_prefix(&redis_url(), &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_genuine_broadcast_cannot_undo_a_later_change() {
    let t = TrustBus::start().await;
    let web = t.bus.token("web");
    // Whoever can read the control exchange can capture a genuine broadcast.
    let queue = t.bus.names.router_control_queue("eavesdropper");
    t.fx.declare(&bus_topology::control_listener(&t.bus.names, &queue))
        .await
        .unwrap();
    let mut heard =
        t.fx.transport()
            .subscribe(&queue, SubscribeOptions::prefetch(64))
            .await
            .unwrap();
    let disable = TrustChange::DisableConsumer {
        consumer: "web".into(),
    };
    let enable = TrustChange::EnableConsumer {
        consumer: "web".into(),
    };
    t.change("tollgate.trust.consumers", &disable).await;
    t.change("tollgate.trust.consumers", &enable).await;
    let captured = loop {
        let d = tokio::time::timeout(Duration::from_secs(5), heard.next())
            .await
            .unwrap()
            .unwrap();
        let envelope = d.envelope.clone();
        d.ack().await.unwrap();
        if let Ok(Announcement::TrustChanged(signed)) = Announcement::from_bytes(&envelope.payload)
            && signed.body.contains("enable_consumer")
        {
            break envelope;
        }
    };
    t.change("tollgate.trust.consumers", &disable).await;
    t.wait_refused_everywhere(&web, "token_revoked").await;

    // Replayed as captured: every router saw its id already.
    let control = Address::new(t.bus.names.control_exchange(), "");
    t.fx.transport().publish(&control, &captured).await.unwrap();
    let marker = t.bus.token_with("alice", 300, json!({"jti": "marker-2"}));
    t.change("tollgate.trust.revoke", &revoke_token("marker-2"))
        .await;
    t.wait_refused_everywhere(&marker, "token_revoked").await;
    for router in 0..2 {
        assert_eq!(
            t.call(router, &web).await,
            Outcome::Refused("token_revoked".into()),
            "router {router} took a replayed broadcast"
        );
    }
    t.stop().await;
}
