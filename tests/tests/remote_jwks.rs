//! Remote JWKS through the real router (issue 10, part 2): a local provider
//! rotates its key set; a token with the new `kid` is accepted on its first
//! message, the old key's tokens are refused once the key left the set, a
//! flood of unknown kids causes a bounded number of fetches (counted at the
//! provider), and a provider that is down, or serves garbage, leaves the
//! last good set in force.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use serde_json::json;
use tollgate_auth::{Algorithm, ConsumerSpec, testkit::TestKey};
use tollgate_bus::{ErrorBody, config::Config};
use tollgate_tests::{
    conformance::transport::recv,
    support::{Fixture, JwksServer, Probe, TestBus, now, wait_until},
};

/// A token of the identity provider: no consumer claim, only its `kid`.
fn idp_token(key: &TestKey) -> String {
    let now = now();
    key.sign(&json!({"sub": "user-1", "iat": now, "exp": now + 300,
                     "jti": uuid::Uuid::new_v4().to_string()}))
}

/// A token signed by `key` but naming a random `kid`.
fn unknown_kid_token(key: &TestKey) -> String {
    let now = now();
    let header = format!(
        r#"{{"alg":"ES256","typ":"JWT","kid":"{}"}}"#,
        uuid::Uuid::new_v4()
    );
    key.sign_raw(
        &header,
        &format!(r#"{{"sub":"u","iat":{now},"exp":{}}}"#, now + 300),
    )
}

/// The consumer `idp` (group `staff`: may call `ledger.*`), whose keys come
/// from `url`.
fn idp_consumer(url: String, refresh: u64, min_refetch: u64) -> ConsumerSpec {
    ConsumerSpec {
        name: "idp".into(),
        groups: vec!["staff".into()],
        enabled: true,
        jwks_url: Some(url),
        jwks_refresh_secs: Some(refresh),
        jwks_min_refetch_secs: Some(min_refetch),
        ..ConsumerSpec::default()
    }
}

/// A test bus with the consumer `idp`, whose keys come from `server`.
async fn start_bus(fx: &Fixture, server: &JwksServer, refresh: u64, min_refetch: u64) -> TestBus {
    let idp = idp_consumer(server.url(), refresh, min_refetch);
    TestBus::start_adjusted(fx, "", move |config| config.auth.consumers.push(idp)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_accepted_at_once_and_a_dropped_one_refused_while_the_last_good_set_outlives_the_provider()
 {
    let fx = Fixture::memory().await;
    let tr = fx.transport().as_ref();
    let (old, new) = (
        TestKey::generate(Algorithm::ES256, "idp-old"),
        TestKey::generate(Algorithm::ES256, "idp-new"),
    );
    let server = JwksServer::start(&[&old]).await;
    // A refresh far away: every fetch below is one a token caused.
    let bus = start_bus(&fx, &server, 3600, 1).await;
    let announcing = bus.keep_announcing(fx.connect().await, "ledger");
    bus.wait_registered("ledger").await;
    let mut probe = Probe::new(&bus, tr, "ledger.get").await;
    assert_eq!(server.requests(), 1, "one fetch at start");
    assert_eq!(probe.send(&bus, tr, &idp_token(&old)).await, Ok(()));

    // Rotation, step 1: the new key joins the set; its first token passes.
    server.rotate(&[&old, &new]);
    assert_eq!(probe.send(&bus, tr, &idp_token(&new)).await, Ok(()));
    assert_eq!(server.requests(), 2, "the unknown kid caused one fetch");

    // Step 2: the old key leaves the set; once the router fetched again
    // (an unknown kid asks, at most once a second), its tokens are refused.
    server.rotate(&[&new]);
    let old_token = idp_token(&old);
    wait_until(
        "the old key's tokens to be refused",
        Duration::from_secs(20),
        async || {
            let _ = probe.send(&bus, tr, &unknown_kid_token(&new)).await;
            probe.send(&bus, tr, &old_token).await == Err("invalid_token".into())
        },
    )
    .await;
    assert_eq!(probe.send(&bus, tr, &idp_token(&new)).await, Ok(()));

    // The provider fails, then serves a set that fails the load-time checks:
    // each time the router fetched, and the last good set stays.
    for fault in [
        (|s: &JwksServer| s.set_down(true)) as fn(&JwksServer),
        |s| {
            s.set_down(false);
            s.serve_raw(r#"{"keys":[{"kty":"oct","kid":"weak","alg":"HS256","k":"c2hvcnQ"}]}"#);
        },
        |s| s.serve_raw("<html>maintenance</html>"),
    ] {
        fault(&server);
        let before = server.requests();
        wait_until(
            "the router to fetch from the failing provider",
            Duration::from_secs(20),
            async || {
                let _ = probe.send(&bus, tr, &unknown_kid_token(&new)).await;
                server.requests() > before
            },
        )
        .await;
        assert_eq!(probe.send(&bus, tr, &idp_token(&new)).await, Ok(()));
        assert_eq!(
            probe.send(&bus, tr, &old_token).await,
            Err("invalid_token".into())
        );
    }
    announcing.abort();
    bus.stop().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_kids_causes_a_bounded_number_of_fetches() {
    let fx = Fixture::memory().await;
    let tr = fx.transport().as_ref();
    let key = TestKey::generate(Algorithm::ES256, "idp-1");
    let server = JwksServer::start(&[&key]).await;
    let min_refetch = 10;
    let bus = start_bus(&fx, &server, 3600, min_refetch).await;
    bus.register(tr, "ledger", "application/json", "1").await;
    let (caller, mut replies) = bus.caller_queue(tr).await;
    let before = server.requests();
    let started = Instant::now();
    const FLOOD: usize = 200;
    for _ in 0..FLOOD {
        let request = bus.request(&json!({}), Some(&unknown_kid_token(&key)), Some(&caller));
        bus.send(tr, "ledger.get", &request).await;
    }
    for _ in 0..FLOOD {
        let reply = recv(&mut replies, "a refusal of an unknown kid").await;
        let code = ErrorBody::from_envelope(&reply.envelope).map(|b| b.error.code);
        assert_eq!(code.as_deref(), Some("invalid_token"));
        reply.ack().await.unwrap();
    }
    let fetches = server.requests() - before;
    // At most one fetch per consumer per `jwks_min_refetch_secs` window.
    let bound = 1 + (started.elapsed().as_secs() / min_refetch) as usize;
    assert!(
        (1..=bound).contains(&fetches),
        "{FLOOD} unknown kids caused {fetches} fetches (bound {bound})"
    );
    // The real key still works.
    let mut probe = Probe::new(&bus, tr, "ledger.get").await;
    assert_eq!(probe.send(&bus, tr, &idp_token(&key)).await, Ok(()));
    bus.stop().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_that_cannot_fetch_at_start_runs_and_refuses_the_consumer_until_a_fetch_succeeds()
{
    let fx = Fixture::memory().await;
    let tr = fx.transport().as_ref();
    let key = TestKey::generate(Algorithm::ES256, "idp-1");
    let server = JwksServer::start(&[&key]).await;
    server.set_down(true);
    let bus = start_bus(&fx, &server, 3600, 1).await;
    bus.register(tr, "ledger", "application/json", "1").await;
    let mut probe = Probe::new(&bus, tr, "ledger.get").await;
    // Another consumer is not disturbed.
    assert_eq!(
        probe.send(&bus, tr, &bus.token("web")).await,
        Err("forbidden".into())
    );
    let token = idp_token(&key);
    assert_eq!(
        probe.send(&bus, tr, &token).await,
        Err("invalid_token".into())
    );
    server.set_down(false);
    wait_until(
        "the consumer's token to pass once the provider is back",
        Duration::from_secs(20),
        async || probe.send(&bus, tr, &token).await.is_ok(),
    )
    .await;
    bus.stop().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_an_unchanged_remote_set_and_drops_a_removed_consumer() {
    let fx = Fixture::memory().await;
    let tr = fx.transport().as_ref();
    let key = TestKey::generate(Algorithm::ES256, "idp-1");
    let server = JwksServer::start(&[&key]).await;
    let bus = start_bus(&fx, &server, 3600, 1).await;
    bus.register(tr, "ledger", "application/json", "1").await;
    let mut probe = Probe::new(&bus, tr, "ledger.get").await;
    let token = idp_token(&key);
    assert_eq!(probe.send(&bus, tr, &token).await, Ok(()));
    let settings = |with_idp: bool| {
        let mut config = Config::load(&bus.config_path()).unwrap();
        if with_idp {
            config
                .auth
                .consumers
                .push(idp_consumer(server.url(), 3600, 1));
        }
        config.router_settings().unwrap()
    };

    // Unchanged: the keys stay, nothing is fetched again.
    let fetched = server.requests();
    bus.handle().reload(settings(true)).await.unwrap();
    assert_eq!(probe.send(&bus, tr, &token).await, Ok(()));
    assert_eq!(server.requests(), fetched);

    // Removed: its tokens are refused from the next message on.
    bus.handle().reload(settings(false)).await.unwrap();
    assert_eq!(
        probe.send(&bus, tr, &token).await,
        Err("invalid_token".into())
    );

    // Back: fetched again before the reload returns.
    bus.handle().reload(settings(true)).await.unwrap();
    assert_eq!(server.requests(), fetched + 1);
    assert_eq!(probe.send(&bus, tr, &token).await, Ok(()));
    bus.stop().await;
    fx.cleanup().await;
}
