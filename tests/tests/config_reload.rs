//! Config reload (issue 10, part 3) through the real router: a changed
//! policy and limits apply from the next message on, messages handled
//! during a reload are all answered, a config that does not validate is
//! refused while the running one keeps serving, and `tollgate serve` does
//! all this on SIGHUP.

#![allow(clippy::unwrap_used)]

use std::{path::Path, time::Duration};

use serde_json::json;
use tollgate_bus::config::Config;
use tollgate_tests::{
    conformance::transport::recv,
    support::{Fixture, Probe, RouterProcess, TestBus, wait_until},
};

/// The reader's rule in the test bus's policy, and the same rule moved to
/// another route.
const READER_MAY_GET: &str = "routes = [\"orders.get\"]\nconsumers = [\"reader\"]";
const READER_MAY_LIST: &str = "routes = [\"orders.list\"]\nconsumers = [\"reader\"]";

/// Rewrites the config file at `path` with `edit`.
fn edit_config(path: &Path, edit: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    let edited = edit(text.clone());
    assert_ne!(edited, text, "the edit changed nothing");
    std::fs::write(path, edited).unwrap();
}

/// Loads the file at `path` and reloads it into `bus`'s router.
async fn reload(bus: &TestBus) {
    let settings = Config::load(&bus.config_path())
        .unwrap()
        .router_settings()
        .unwrap_or_else(|e| panic!("the edited config is invalid: {e:?}"));
    bus.handle().reload(settings).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_policy_and_limits_apply_from_the_next_message_after_reload() {
    let fx = Fixture::memory().await;
    let tr = fx.transport().as_ref();
    let bus = TestBus::start(&fx).await;
    bus.register(tr, "orders", "application/json", "1").await;
    let mut probe = Probe::new(&bus, tr, "orders.get").await;
    let (reader, web) = (bus.token("reader"), bus.token("web"));
    let big = json!({"pad": "x".repeat(2048)});
    assert_eq!(probe.send(&bus, tr, &reader).await, Ok(()));
    assert_eq!(probe.send_body(&bus, tr, &web, &big).await, Ok(()));

    edit_config(&bus.config_path(), |t| {
        t.replace(READER_MAY_GET, READER_MAY_LIST) + "\n[limits]\nmax_message_bytes = 1024\n"
    });
    reload(&bus).await;

    assert_eq!(probe.send(&bus, tr, &reader).await, Err("forbidden".into()));
    assert_eq!(
        probe.send_body(&bus, tr, &web, &big).await,
        Err("too_large".into())
    );
    assert_eq!(probe.send(&bus, tr, &web).await, Ok(()));
    bus.stop().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_handled_during_a_reload_is_answered_by_the_old_or_the_new_config() {
    let fx = Fixture::memory().await;
    let tr = fx.transport().as_ref();
    let bus = TestBus::start(&fx).await;
    bus.register(tr, "orders", "application/json", "1").await;
    let mut service = tr
        .subscribe(&bus.names.service_queue("orders"), Default::default())
        .await
        .unwrap();
    let (caller, mut replies) = bus.caller_queue(tr).await;
    edit_config(&bus.config_path(), |t| {
        t.replace(READER_MAY_GET, READER_MAY_LIST)
    });
    const SENT: usize = 300;
    let token = bus.token("reader");
    for i in 0..SENT {
        let request = bus.request(&json!({"i": i}), Some(&token), Some(&caller));
        bus.send(tr, "orders.get", &request).await;
        if i == SENT / 3 {
            reload(&bus).await;
        }
    }
    let (mut delivered, mut refused) = (0, 0);
    while delivered + refused < SENT {
        tokio::select! {
            d = recv(&mut service, "a delivered request") => {
                d.ack().await.unwrap();
                delivered += 1;
            }
            r = recv(&mut replies, "a refusal") => {
                let code = tollgate_bus::ErrorBody::from_envelope(&r.envelope).map(|b| b.error.code);
                assert_eq!(code.as_deref(), Some("forbidden"));
                r.ack().await.unwrap();
                refused += 1;
            }
        }
    }
    // Whatever was sent after the reload returned is handled on the new config.
    assert!(
        refused >= SENT - SENT / 3 - 1,
        "{delivered} delivered, {refused} refused"
    );

    bus.stop().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_that_does_not_validate_lists_every_problem_and_the_running_one_keeps_serving() {
    let fx = Fixture::memory().await;
    let tr = fx.transport().as_ref();
    let bus = TestBus::start(&fx).await;
    bus.register(tr, "orders", "application/json", "1").await;
    let mut probe = Probe::new(&bus, tr, "orders.get").await;
    edit_config(&bus.config_path(), |t| {
        t.replace(
            READER_MAY_GET,
            "routes = [\"orders..get\"]\nconsumers = [\"reader\"]",
        )
        .replace("consumer = \"orders-svc\"", "consumer = \"nobody\"")
    });
    let problems = Config::load(&bus.config_path())
        .unwrap()
        .router_settings()
        .map(drop)
        .expect_err("a broken config");
    let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
    assert!(fields.contains(&"policy"), "{problems:?}");
    assert!(
        fields.iter().any(|f| f.starts_with("registry.grants")),
        "{problems:?}"
    );
    // Nothing was swapped: the old policy still lets the reader in.
    assert_eq!(probe.send(&bus, tr, &bus.token("reader")).await, Ok(()));
    bus.stop().await;
    fx.cleanup().await;
}

/// Waits until `router`'s log holds `text`.
async fn wait_logged(router: &RouterProcess, text: &str) {
    let what = format!("`{text}` in {}", router.log_path().display());
    wait_until(&what, Duration::from_secs(20), async || {
        std::fs::read_to_string(router.log_path()).is_ok_and(|log| log.contains(text))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_policy_of_tollgate_serve_and_a_broken_file_keeps_the_running_config() {
    let fx = Fixture::amqp().await;
    let tr = fx.transport().as_ref();
    let bus = TestBus::prepare(&fx, "").await;
    let mut router = RouterProcess::spawn(&bus, "reload-1");
    router.wait_started(&bus, tr).await;
    bus.announce(tr, "orders", "application/json", "1").await;
    router.wait_routing(1).await;
    let mut probe = Probe::new(&bus, tr, "orders.get").await;
    let (reader, web) = (bus.token("reader"), bus.token("web"));
    assert_eq!(probe.send(&bus, tr, &reader).await, Ok(()));

    // A changed policy, and a setting only a restart applies.
    edit_config(&bus.config_path(), |t| {
        t.replace(READER_MAY_GET, READER_MAY_LIST) + "\n[router]\nprefetch = 7\n"
    });
    router.hangup();
    wait_until(
        "the reader to be refused after SIGHUP",
        Duration::from_secs(20),
        async || probe.send(&bus, tr, &reader).await == Err("forbidden".into()),
    )
    .await;
    wait_logged(&router, "needs a restart").await;
    assert_eq!(probe.send(&bus, tr, &web).await, Ok(()));

    // A broken file: refused, logged, and the running config serves on.
    edit_config(&bus.config_path(), |t| {
        t.replace(READER_MAY_LIST, "routes = 7")
    });
    router.hangup();
    wait_logged(&router, "Config reload refused").await;
    assert_eq!(probe.send(&bus, tr, &reader).await, Err("forbidden".into()));
    assert_eq!(probe.send(&bus, tr, &web).await, Ok(()));
    assert!(router.is_running());
    assert!(router.terminate().success());
    bus.stop().await;
    fx.cleanup().await;
}
