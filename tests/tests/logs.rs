//! What `tollgate serve` writes to its log: with `--log-format json`, one
//! JSON object per line; at the default level no line per delivered message
//! but every refusal; with `RUST_LOG=tollgate::access=info`, one access line
//! per delivered message.

#![allow(clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use tollgate_bus::Transport;
use tollgate_tests::support::{Fixture, RouterProcess, TestBus, wait_until};

const REQUESTS: usize = 20;

/// Runs a router with `--log-format json` and `rust_log`, sends it
/// [`REQUESTS`] admitted requests and one refused one, stops it, and returns
/// its log lines, each parsed as JSON.
async fn json_log_of_a_run(fx: &Fixture, bus: &TestBus, name: &str, rust_log: &str) -> Vec<Value> {
    let tr: Arc<dyn Transport> = Arc::clone(fx.transport());
    let instance = format!("{}-{name}", fx.ns.prefix());
    let mut router = RouterProcess::spawn_with(
        bus,
        &instance,
        &[("RUST_LOG", rust_log)],
        &["--log-format", "json"],
    );
    router.wait_started(bus, tr.as_ref()).await;
    bus.announce(tr.as_ref(), "orders", "application/json", "2")
        .await;
    router.wait_routing(1).await;
    let token = bus.token("web");
    for n in 0..REQUESTS {
        let request = bus.request(&json!({ "n": n }), Some(&token), None);
        bus.send(tr.as_ref(), "orders.get", &request).await;
    }
    let refused = bus.request(&json!({"n": "refused"}), None, None);
    bus.send(tr.as_ref(), "orders.get", &refused).await;
    wait_until(
        "the router to deliver every request",
        Duration::from_secs(60),
        async || router.delivered() >= REQUESTS as f64,
    )
    .await;
    wait_until(
        "the refusal to be counted",
        Duration::from_secs(30),
        async || router.metrics().contains("code=\"token_missing\""),
    )
    .await;
    // SIGTERM: the router flushes its log before it exits.
    assert!(router.terminate().success());
    let log = std::fs::read_to_string(router.log_path()).unwrap();
    log.lines()
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"))
        })
        .collect()
}

fn with_target<'a>(lines: &'a [Value], target: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["target"] == target).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_hide_access_lines_at_the_default_level_and_show_them_when_asked() {
    let fx = Fixture::amqp().await;
    let bus = TestBus::prepare(&fx, "").await;

    // An empty RUST_LOG: the router's own default level.
    let lines = json_log_of_a_run(&fx, &bus, "default", "").await;
    for line in &lines {
        assert!(line["level"].is_string(), "no level: {line}");
        assert!(line["target"].is_string(), "no target: {line}");
        assert!(line["fields"]["message"].is_string(), "no fields: {line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "Router started." && l["level"] == "INFO"),
        "info lines are written at the default level: {lines:?}"
    );
    assert_eq!(
        with_target(&lines, "tollgate::access").len(),
        0,
        "no line per delivered message at the default level"
    );
    let refusals = with_target(&lines, "tollgate::audit");
    assert_eq!(refusals.len(), 1, "the refusal is logged: {lines:?}");
    assert_eq!(refusals[0]["level"], "WARN");
    assert_eq!(refusals[0]["fields"]["code"], "token_missing");
    assert!(
        lines.len() < REQUESTS,
        "{} lines for {REQUESTS} requests",
        lines.len()
    );

    let lines = json_log_of_a_run(&fx, &bus, "access", "tollgate::access=info").await;
    let access = with_target(&lines, "tollgate::access");
    assert!(
        access.len() >= REQUESTS,
        "one access line per delivered message, got {}",
        access.len()
    );
    assert!(access.iter().all(|l| l["fields"]["outcome"] == "delivered"
        && l["fields"]["route"] == "orders.get"
        && l["fields"]["consumer"] == "web"));
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "Router started."),
        "turning access lines on keeps the default level"
    );

    bus.stop().await;
    fx.cleanup().await;
}
