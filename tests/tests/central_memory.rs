//! Central mode on the in-memory transport with sessions in memory (the
//! demo's setup), through the real router: the same promises as
//! `central_mode.rs` on RabbitMQ and Redis, without either.

// Test code: a failed expectation should panic loudly.
#![allow(clippy::unwrap_used)]

use tollgate_services::CallError;
use tollgate_tests::support::{CentralBus, Fixture, PASSWORD};

fn code<T: std::fmt::Debug>(result: Result<T, CallError>) -> String {
    match result {
        Err(CallError::Rejected { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// No Redis is used: `store = "memory"` (the URL only names where none is).
const MEMORY: &str = "store = \"memory\"\n";
const NO_REDIS: &str = "redis://127.0.0.1:1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_call_logout_and_the_next_message_refused_in_memory() {
    let fx = Fixture::memory().await;
    let mut central = CentralBus::start(&fx, NO_REDIS, MEMORY).await;
    central.add_router(&fx).await;
    let session = central.login("ann", PASSWORD).await.unwrap();
    for _ in 0..10 {
        assert_eq!(central.whoami(&session.token).await.unwrap()["user"], "ann");
    }
    assert!(central.logout(&session.token).await.unwrap().ended);
    for _ in 0..10 {
        assert_eq!(code(central.whoami(&session.token).await), "invalid_token");
    }
    central.stop().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_auth_service_is_auth_unavailable_in_memory_and_its_sessions_die_with_it() {
    let fx = Fixture::memory().await;
    let extra = format!("{MEMORY}cache_ttl_ms = 0\ntimeout_ms = 100\nattempts = 2");
    let mut central = CentralBus::start(&fx, NO_REDIS, &extra).await;
    let session = central.login("ann", PASSWORD).await.unwrap();
    central.stop_auth().await;
    assert_eq!(
        code(central.whoami(&session.token).await),
        "auth_unavailable"
    );
    // A restarted service has a new, empty memory store: the session is gone.
    central.start_auth().await;
    assert_eq!(code(central.whoami(&session.token).await), "invalid_token");
    central.stop().await;
    fx.cleanup().await;
}
