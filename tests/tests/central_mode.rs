//! Central mode (issue 9) against RabbitMQ and Redis, through the real
//! router: sessions from `auth.login` call a central-mode route; a logout
//! refuses the very next message on every router; a stopped auth service
//! makes central routes answer `auth_unavailable` while gateway routes keep
//! delivering; the auth service survives a Redis restart; failed logins
//! back off within the documented bound; idle and expired sessions are
//! refused; disabling a user ends all of their sessions.

// Test code: a failed expectation should panic loudly.
#![allow(clippy::unwrap_used)]

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use tollgate_auth::CredentialHash;
use tollgate_bus::{Address, registry::Announcement};
use tollgate_services::{
    CallError, RequestOptions,
    examples::orders::{CreateOrder, Customer, Item, OrderCreated},
};
use tollgate_tests::support::{
    CentralBus, Fixture, PASSWORD, PrivateRedis, now, redis_url, tollgate_binary, wait_until,
};

/// The refusal code of a call that must be refused.
fn code<T: std::fmt::Debug>(result: Result<T, CallError>) -> String {
    match result {
        Err(CallError::Rejected { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Everything Redis holds under the test's prefix: keys and string values.
async fn redis_contents(url: &str, prefix: &str) -> Vec<String> {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut all = keys.clone();
    for key in keys {
        let value: redis::Value = redis::cmd("DUMP")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        all.push(format!("{value:?}"));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_calls_central_routes_and_a_logout_refuses_its_very_next_message_on_every_router()
{
    let fx = Fixture::amqp().await;
    let mut central = CentralBus::start(&fx, &redis_url(), "cache_ttl_ms = 5000").await;
    central.add_router(&fx).await;
    let caches = central.caches();
    assert_eq!(caches.len(), 2);

    let session = central.login("ann", PASSWORD).await.unwrap();
    assert!(session.token.starts_with("tgs_"), "{}", session.token);
    let hash = CredentialHash::of(&session.token);
    // Two routers share the ingress: call until each has the answer cached.
    let mut calls = 0;
    while !caches.iter().all(|c| c.get(&hash).is_some()) {
        let who = central.whoami(&session.token).await.unwrap();
        assert_eq!(who["user"], "ann");
        assert_eq!(who["groups"], serde_json::json!(["staff"]));
        calls += 1;
        assert!(calls < 200, "a router never cached the session");
    }
    let other = central.login("ann", PASSWORD).await.unwrap();
    assert_ne!(other.token, session.token, "a new token at every login");

    // Stored only as a hash: no key nor value in Redis holds the token.
    let prefix = format!("{}:auth:", fx.ns.prefix());
    let stored = redis_contents(&central.redis_url, &prefix).await;
    assert!(!stored.is_empty());
    let secret = &session.token[4..];
    assert!(stored.iter().all(|s| !s.contains(secret)), "{stored:?}");

    assert!(central.logout(&session.token).await.unwrap().ended);
    for _ in 0..20 {
        assert_eq!(code(central.whoami(&session.token).await), "invalid_token");
    }
    // Both routers forgot it (not merely the one that answered above).
    wait_until(
        "both caches to forget the session",
        Duration::from_secs(5),
        async || caches.iter().all(|c| c.get(&hash).is_none()),
    )
    .await;
    // The other session of the same user lives on.
    assert_eq!(central.whoami(&other.token).await.unwrap()["user"], "ann");
    assert!(
        !central.logout(&session.token).await.unwrap().ended,
        "already ended"
    );

    central.stop().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_ended_from_an_account_not_granted_the_auth_service_is_ignored() {
    let fx = Fixture::amqp().await;
    let central = CentralBus::start(&fx, &redis_url(), "cache_ttl_ms = 5000").await;
    let cache = central.caches().remove(0);
    let session = central.login("ann", PASSWORD).await.unwrap();
    let hash = CredentialHash::of(&session.token);
    central.whoami(&session.token).await.unwrap();
    assert!(cache.get(&hash).is_some());

    let control = Address::new(central.bus.names.control_exchange(), "");
    let ended = Announcement::SessionsEnded {
        service: "auth".into(),
        credential_hashes: vec![hash.clone()],
        user: Some("ann".into()),
    };
    let transport = fx.transport();
    for forger in ["orders-svc", "web"] {
        let token = if forger == "web" {
            central.bus.token(forger)
        } else {
            central.bus.registration_token(forger)
        };
        let envelope = ended.to_envelope(Some(&token)).unwrap();
        transport.publish(&control, &envelope).await.unwrap();
    }
    // The listener takes the control queue in order: once `calc` registered,
    // the forgeries before it were judged.
    central
        .bus
        .register(transport.as_ref(), "calc", "application/json", "1")
        .await;
    assert!(
        cache.get(&hash).is_some(),
        "a forged sessions_ended was heeded"
    );

    let genuine = ended
        .to_envelope(Some(&central.bus.registration_token("auth-svc")))
        .unwrap();
    transport.publish(&control, &genuine).await.unwrap();
    wait_until(
        "the genuine one to be heeded",
        Duration::from_secs(5),
        async || cache.get(&hash).is_none(),
    )
    .await;
    central.stop().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_auth_service_stopped_central_routes_answer_auth_unavailable_and_gateway_routes_deliver()
 {
    let fx = Fixture::amqp().await;
    let extra = "cache_ttl_ms = 0\ntimeout_ms = 200\nattempts = 2\nretry_backoff_ms = 20";
    let mut central = CentralBus::start(&fx, &redis_url(), extra).await;
    let orders = central.bus.run_orders(fx.connect().await, |b| b).await;
    let session = central.login("ann", PASSWORD).await.unwrap();
    assert_eq!(central.whoami(&session.token).await.unwrap()["user"], "ann");

    central.stop_auth().await;
    const N: usize = 5;
    for _ in 0..N {
        assert_eq!(
            code(central.whoami(&session.token).await),
            "auth_unavailable"
        );
    }
    let web = RequestOptions::with_token(central.bus.token("web"));
    let order = CreateOrder {
        customer: Customer { id: "c-1".into() },
        items: vec![Item {
            sku: "widget".into(),
            qty: 1,
        }],
    };
    for _ in 0..N {
        let created: OrderCreated = central
            .caller
            .request("orders.create", &order, &web)
            .await
            .unwrap();
        assert_eq!(created.total_cents, 250);
    }

    // Back: the same session works again (it lives in Redis, not in the service).
    central.start_auth().await;
    assert_eq!(central.whoami(&session.token).await.unwrap()["user"], "ann");

    orders.shutdown().await.unwrap();
    let transport = fx.transport().clone();
    let names = central.bus.names.clone();
    central.stop().await;
    // Nothing lost: every refused message has its dead-letter copy (counted
    // with no router left to add one).
    let dead = transport
        .inspect(names.dead_queue())
        .await
        .unwrap()
        .messages;
    assert_eq!(dead as usize, N);
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_service_recovers_on_its_own_when_redis_restarts() {
    let fx = Fixture::amqp().await;
    let mut redis = PrivateRedis::start().await;
    let extra = "cache_ttl_ms = 0\ntimeout_ms = 2500\nattempts = 1";
    let central = CentralBus::start(&fx, &redis.url(), extra).await;
    let before = central.login("ann", PASSWORD).await.unwrap();
    assert_eq!(central.whoami(&before.token).await.unwrap()["user"], "ann");

    redis.stop();
    assert_eq!(
        code(central.login("ann", PASSWORD).await),
        "store_unavailable"
    );
    assert_eq!(
        code(central.whoami(&before.token).await),
        "auth_unavailable"
    );

    redis.restart().await;
    // No restart of the service: its connection manager reconnects.
    let mut session = None;
    wait_until(
        "a login after Redis restarted",
        Duration::from_secs(30),
        async || {
            session = central.login("ann", PASSWORD).await.ok();
            session.is_some()
        },
    )
    .await;
    let session = session.unwrap();
    assert_eq!(central.whoami(&session.token).await.unwrap()["user"], "ann");
    // The restarted Redis kept nothing (`--save ''`): the old session is gone.
    assert_eq!(code(central.whoami(&before.token).await), "invalid_token");

    central.stop().await;
    fx.cleanup().await;
}

/// The wait a `login_throttled` refusal asks for.
fn retry_after(result: Result<impl std::fmt::Debug, CallError>) -> Duration {
    match result {
        Err(CallError::Rejected { code, message, .. }) if code == "login_throttled" => {
            let ms = message
                .split_whitespace()
                .find_map(|w| w.parse::<u64>().ok())
                .unwrap();
            Duration::from_millis(ms)
        }
        other => panic!("expected login_throttled, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_slowed_and_the_real_password_works_again_within_the_bound() {
    let fx = Fixture::amqp().await;
    let extra = "login_backoff_base_ms = 300\nlogin_backoff_max_secs = 2";
    let central = CentralBus::start(&fx, &redis_url(), extra).await;
    let bound = Duration::from_secs(2);

    // An attacker tries 12 passwords as fast as the bus answers.
    let (mut failed, mut throttled) = (0, 0);
    for i in 0..12 {
        match central
            .login_from("ann", &format!("guess-{i}"), "mallory")
            .await
        {
            Err(CallError::Rejected { code, .. }) if code == "login_failed" => failed += 1,
            Err(CallError::Rejected { code, .. }) if code == "login_throttled" => throttled += 1,
            other => panic!("a wrong password got {other:?}"),
        }
    }
    assert!(
        failed >= 1 && throttled >= 1,
        "failed {failed}, throttled {throttled}"
    );
    assert!(failed < 12, "no back-off: every guess was checked");

    // The real user, elsewhere: held back at most the bound, then let in.
    let mut waits = Vec::new();
    let session = loop {
        match central.login_from("ann", PASSWORD, "home").await {
            Ok(session) => break session,
            refused => {
                let wait = retry_after(refused);
                assert!(wait <= bound, "asked to wait {wait:?}, more than {bound:?}");
                waits.push(wait);
                assert!(waits.len() <= 2, "still throttled after {waits:?}");
                tokio::time::sleep(wait).await;
            }
        }
    };
    assert_eq!(central.whoami(&session.token).await.unwrap()["user"], "ann");
    // Unknown users fail the same way as wrong passwords.
    assert_eq!(
        code(central.login_from("nobody", PASSWORD, "x").await),
        "login_failed"
    );

    central.stop().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_past_its_idle_timeout_or_its_absolute_lifetime_is_refused() {
    let fx = Fixture::amqp().await;
    let extra = "cache_ttl_ms = 0\nidle_timeout_secs = 3\nabsolute_lifetime_secs = 6";
    let central = CentralBus::start(&fx, &redis_url(), extra).await;

    let idle = central.login("ann", PASSWORD).await.unwrap();
    assert_eq!(central.whoami(&idle.token).await.unwrap()["user"], "ann");
    // Unused for longer than the idle timeout (whole seconds: 3 s + 1).
    tokio::time::sleep(Duration::from_millis(4_100)).await;
    assert_eq!(code(central.whoami(&idle.token).await), "token_expired");

    // Used every 300 ms, so never idle: it still ends at its absolute lifetime.
    let busy = central.login("bob", PASSWORD).await.unwrap();
    let mut uses = 0;
    let refused = loop {
        match central.whoami(&busy.token).await {
            Ok(who) => {
                assert_eq!(who["user"], "bob");
                assert!(now() <= busy.expires_at, "admitted past the lifetime");
                uses += 1;
                assert!(uses < 60, "never refused");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => break e,
        }
    };
    assert!(uses >= 3, "refused too early, after {uses} uses");
    assert!(now() >= busy.expires_at);
    assert_eq!(code::<Value>(Err(refused)), "token_expired");

    central.stop().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_user_ends_all_of_their_sessions() {
    let fx = Fixture::amqp().await;
    let central = CentralBus::start(&fx, &redis_url(), "").await;
    let first = central.login("bob", PASSWORD).await.unwrap();
    let second = central.login("bob", PASSWORD).await.unwrap();
    let ann = central.login("ann", PASSWORD).await.unwrap();
    for token in [&first.token, &second.token] {
        assert_eq!(central.whoami(token).await.unwrap()["user"], "bob");
    }

    let web = RequestOptions::with_token(central.bus.token("web"));
    let reply: Value = central
        .caller
        .request(
            "auth.disable_user",
            &serde_json::json!({"user": "bob"}),
            &web,
        )
        .await
        .unwrap();
    assert_eq!(reply["sessions_ended"], 2);
    for token in [&first.token, &second.token] {
        assert_eq!(code(central.whoami(token).await), "invalid_token");
    }
    assert_eq!(code(central.login("bob", PASSWORD).await), "login_failed");
    assert_eq!(central.whoami(&ann.token).await.unwrap()["user"], "ann");
    // A caller the policy does not let use the auth service cannot disable anyone.
    let reader = RequestOptions::with_token(central.bus.token("reader"));
    let forbidden = central
        .caller
        .request::<_, Value>(
            "auth.disable_user",
            &serde_json::json!({"user": "ann"}),
            &reader,
        )
        .await;
    assert_eq!(code(forbidden), "forbidden");

    central.stop().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_central_route_refuses_a_missing_or_forged_credential_and_a_jwt_of_a_caller_without_grant()
 {
    let fx = Fixture::amqp().await;
    let central = CentralBus::start(&fx, &redis_url(), "").await;
    let no_token = central
        .caller
        .request::<_, Value>(
            "ledger.whoami",
            &serde_json::json!({}),
            &RequestOptions::default(),
        )
        .await;
    assert_eq!(code(no_token), "token_missing");
    let forged = format!("tgs_{}", "A".repeat(43));
    assert_eq!(code(central.whoami(&forged).await), "invalid_token");
    // A JWT is introspected too: `web` is known, but the policy lets only staff in.
    assert_eq!(
        code(central.whoami(&central.bus.token("web")).await),
        "forbidden"
    );
    central.stop().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tollgate_auth_service_runs_from_the_config_file_and_stops_on_sigterm() {
    let fx = Fixture::amqp().await;
    let extra = "token_file = \"auth-svc.jwt\"";
    let central = CentralBus::start_without_auth(&fx, &redis_url(), extra).await;
    let log = std::fs::File::create(central.bus.dir.join("auth-service.log")).unwrap();
    let mut child = Command::new(tollgate_binary())
        .args(["auth-service", "--config"])
        .arg(central.bus.config_path())
        .env("RUST_LOG", "info")
        .env_remove("TOLLGATE_SERVICE_TOKEN")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    central.bus.wait_registered("auth").await;

    let session = central.login("ann", PASSWORD).await.unwrap();
    assert_eq!(central.whoami(&session.token).await.unwrap()["user"], "ann");
    assert!(central.logout(&session.token).await.unwrap().ended);
    assert_eq!(code(central.whoami(&session.token).await), "invalid_token");

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut status = None;
    wait_until(
        "tollgate auth-service to exit",
        Duration::from_secs(20),
        async || {
            status = child.try_wait().unwrap();
            status.is_some()
        },
    )
    .await;
    let log = std::fs::read_to_string(central.bus.dir.join("auth-service.log")).unwrap();
    assert!(status.unwrap().success(), "{log}");
    assert!(
        !log.contains(&session.token[4..]),
        "the log holds a session token"
    );
    central.stop().await;
    fx.cleanup().await;
}
