//! A service is admitted only when a real router accepts its registration:
//! the router answers every `register` on the instance's control queue, the
//! SDK retries after a refusal or silence, and gives up at its bound.

// The cases are plain async fns instantiated per transport by
// `on_both_transports!`; a failed expectation must panic.
#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tollgate_auth::AssertionVerifier;
use tollgate_services::{RunningService, ServiceError, TokenSource, examples};
use tollgate_tests::support::{Fixture, TestBus};

/// Longer than any bound a case sets: `run` must have returned by then.
const HANG: Duration = Duration::from_secs(30);

/// Runs the example orders service with `credential`, giving up after `bound`.
async fn run_orders(
    bus: &TestBus,
    fx: &Fixture,
    credential: TokenSource,
    bound: Duration,
) -> Result<RunningService, ServiceError> {
    let bus_key = AssertionVerifier::from_public_pem(bus.assertion_public_pem.as_bytes()).unwrap();
    let service = examples::orders::service(credential, bus_key)
        .admission_timeout(bound)
        .build()
        .unwrap();
    let transport = fx.connect().await;
    tokio::time::timeout(HANG, service.run(transport, bus.names.clone()))
        .await
        .expect("run returned within its bound")
}

fn last_refusal(result: Result<RunningService, ServiceError>) -> Option<String> {
    match result {
        Err(ServiceError::NotAdmitted { last_refusal, .. }) => last_refusal,
        other => panic!("expected NotAdmitted, got {other:?}"),
    }
}

async fn a_service_the_router_refuses_hears_why_and_fails_at_its_bound(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    // The account's caller token: the router refuses it for registering.
    let wrong_purpose = TokenSource::fixed(bus.token("orders-svc"));
    let refused = run_orders(&bus, fx, wrong_purpose, Duration::from_secs(2)).await;
    let refusal = last_refusal(refused).expect("the router's refusal was heard");
    assert!(refusal.starts_with("claims_invalid:"), "{refusal}");
    assert!(bus.registry().resolve("orders").is_none());

    // Granted another service only: refused with its own code.
    let ungranted = TokenSource::fixed(bus.registration_token("billing-svc"));
    let refused = run_orders(&bus, fx, ungranted, Duration::from_secs(2)).await;
    let refusal = last_refusal(refused).expect("the router's refusal was heard");
    assert!(refusal.starts_with("not_granted:"), "{refusal}");
    bus.stop().await;
}

async fn an_admitted_service_is_routable_when_run_returns(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let good = TokenSource::fixed(bus.registration_token("orders-svc"));
    let running = run_orders(&bus, fx, good, Duration::from_secs(20))
        .await
        .unwrap();
    // No waiting: the acceptance came from the router after it updated its table.
    assert!(bus.registry().resolve("orders").is_some());
    running.shutdown().await.unwrap();
    bus.stop().await;
}

async fn a_refused_service_registers_again_and_is_admitted_with_a_fresh_token(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let (expired, fresh) = (
        bus.token_with(
            "orders-svc",
            -120,
            serde_json::json!({"aud": tollgate_tests::support::REGISTRATION_AUDIENCE}),
        ),
        bus.registration_token("orders-svc"),
    );
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    // The first registration carries an expired token; every later one a fresh one.
    let source = TokenSource::from_fn(move || {
        let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
        Some(if first {
            expired.clone()
        } else {
            fresh.clone()
        })
    });
    let running = run_orders(&bus, fx, source, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(asked.load(Ordering::SeqCst) >= 2, "registered again");
    assert!(bus.registry().resolve("orders").is_some());
    running.shutdown().await.unwrap();
    bus.stop().await;
}

async fn one_acceptance_admits_a_service_another_router_refuses(fx: &Fixture) {
    let accepting = TestBus::start(fx).await;
    // A second router on the same bus with keys of its own: it knows none of
    // the first one's tokens and refuses them (unknown_key).
    let refusing = TestBus::start(fx).await;
    let token = TokenSource::fixed(accepting.registration_token("orders-svc"));
    let running = run_orders(&accepting, fx, token, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(accepting.registry().resolve("orders").is_some());
    assert!(refusing.registry().resolve("orders").is_none());
    running.shutdown().await.unwrap();
    refusing.stop().await;
    accepting.stop().await;
}

async fn with_no_router_the_service_fails_at_its_bound(fx: &Fixture) {
    let bus = TestBus::prepare(fx, "").await;
    let token = TokenSource::fixed(bus.registration_token("orders-svc"));
    let silent = run_orders(&bus, fx, token, Duration::from_millis(1500)).await;
    assert_eq!(last_refusal(silent), None, "nobody answered");
    bus.stop().await;
}

tollgate_tests::on_both_transports!(
    a_service_the_router_refuses_hears_why_and_fails_at_its_bound,
    an_admitted_service_is_routable_when_run_returns,
    a_refused_service_registers_again_and_is_admitted_with_a_fresh_token,
    one_acceptance_admits_a_service_another_router_refuses,
    with_no_router_the_service_fails_at_its_bound
);
