//! Changes reach every router (and the central auth service) within a second.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_auth::{Algorithm, TrustChange, TrustEntry, testkit::TestKey};
use tollgate_bus::config::Config;
use tollgate_services::{CallError, RequestOptions};
use tollgate_tests::support::{CentralBus, Fixture, delete_prefix, now, redis_url, wait_until};

use tokio::time::Instant;

use super::{flow::Call, harness::*};

/// Bound on waiting for a flow to show what a test needs.
const LONG: Duration = Duration::from_secs(10);

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
async fn requests_flowing_through_both_routers_are_refused_within_a_second_of_a_revocation() {
    let t = TrustBus::start().await;
    let leaked = t.bus.token_with("web", 300, json!({"jti": "flow-1"}));
    let other = t.bus.token_with("web", 300, json!({"jti": "flow-2"}));
    let (leaked_flow, other_flow) = (t.flow(&leaked), t.flow(&other));
    let served = |c: &Call| c.outcome == Outcome::Served;
    wait_until("both routers to serve the flow", LONG, async || {
        leaked_flow.each_router_has(2, 3, served)
    })
    .await;

    let asked = Instant::now();
    t.change("tollgate.trust.revoke", &revoke_token("flow-1"))
        .await;
    let bound = Instant::now() + APPLY_WITHIN;
    let refused_after = |c: &Call| c.sent >= bound && c.outcome != Outcome::Served;
    wait_until("both routers to refuse past the bound", LONG, async || {
        leaked_flow.each_router_has(2, 3, refused_after)
    })
    .await;
    let (leaked_calls, other_calls) = (leaked_flow.stop().await, other_flow.stop().await);

    for call in &leaked_calls {
        if call.answered < asked {
            assert_eq!(
                call.outcome,
                Outcome::Served,
                "before the revocation: {call:?}"
            );
        } else if call.sent >= bound {
            let refused = Outcome::Refused("token_revoked".into());
            assert_eq!(
                call.outcome, refused,
                "a second after the revocation: {call:?}"
            );
        }
    }
    // The other token of the same consumer flowed on, undisturbed, on both.
    assert!(other_calls.iter().all(|c| c.outcome == Outcome::Served));
    for router in 0..2 {
        let after = |c: &&Call| c.router == router && c.sent >= bound;
        assert!(
            other_calls.iter().filter(after).count() > 0,
            "router {router}"
        );
    }
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
async fn a_config_reload_keeps_the_trust_state() {
    let t = TrustBus::start().await;
    let (web, alice) = (t.bus.token("web"), t.bus.token("alice"));
    let leaked = t.bus.token_with("alice", 300, json!({"jti": "reload-1"}));
    let disable = TrustChange::DisableConsumer {
        consumer: "web".into(),
    };
    t.change("tollgate.trust.consumers", &disable).await;
    t.change("tollgate.trust.revoke", &revoke_token("reload-1"))
        .await;
    assert_eq!(
        t.call(0, &web).await,
        Outcome::Refused("token_revoked".into())
    );

    // Router 0 reloads its (unchanged) config: its consumers are installed
    // anew, the trust state's changes on top of them.
    let settings = Config::load(&t.bus.config_path())
        .unwrap()
        .router_settings()
        .unwrap();
    t.bus.handle().reload(settings).await.unwrap();
    assert_eq!(
        t.call(0, &web).await,
        Outcome::Refused("token_revoked".into())
    );
    assert_eq!(
        t.call(0, &leaked).await,
        Outcome::Refused("token_revoked".into())
    );
    assert_eq!(t.call(0, &alice).await, Outcome::Served);
    t.stop().await;
}
