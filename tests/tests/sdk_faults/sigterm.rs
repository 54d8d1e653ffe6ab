//! A program whose broker connection is cut, with the broker then hanging on
//! every reconnect, still exits on SIGTERM within its shutdown bound: an
//! example service (the built `orders` binary) and `tollgate serve`.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use tollgate_tests::support::{
    ChaosProxy, Fixture, RouterProcess, TestBus, example_binary, poll_until,
};

use super::{order, web_caller};

/// The service's `--shutdown-timeout-secs` (`TOLLGATE_SHUTDOWN_TIMEOUT_SECS`).
const SHUTDOWN_BOUND_SECS: u64 = 3;
/// How long after SIGTERM the process must be gone: the bound, the runtime's
/// last second, and room for a loaded machine.
const EXIT_WITHIN: Duration = Duration::from_secs(SHUTDOWN_BOUND_SECS + 7);

/// Kills the process if a test failed before it exited.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_example_service_with_a_dead_connection_exits_on_sigterm_within_its_bound() {
    let binary = example_binary("orders");
    let fx = Fixture::amqp().await;
    let bus = TestBus::start(&fx).await;
    let proxy = ChaosProxy::to_broker().await.unwrap();
    let key_file = bus.dir.join("bus.pub.pem");
    std::fs::write(&key_file, &bus.assertion_public_pem).unwrap();
    let log = std::fs::File::create(bus.dir.join("orders.log")).unwrap();
    let mut service = Process(
        Command::new(binary)
            .args([
                "--amqp",
                &proxy.amqp_url(),
                "--namespace",
                bus.names.namespace(),
            ])
            .args(["--token", &bus.registration_token("orders-svc")])
            .arg("--bus-key")
            .arg(&key_file)
            .env(
                "TOLLGATE_SHUTDOWN_TIMEOUT_SECS",
                SHUTDOWN_BOUND_SECS.to_string(),
            )
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    bus.wait_registered("orders").await;
    let (caller, options) = web_caller(&bus, fx.connect().await).await;
    let served: Value = caller
        .request("orders.create", &order("c-1"), &options)
        .await
        .unwrap();
    assert_eq!(served["placed_by"], "web");

    // The link dies, and every reconnect hangs: the worst state to stop in.
    proxy.set_stalling(true);
    proxy.cut();
    sigterm(&service.0);
    let signalled = Instant::now();
    let exited = poll_until(EXIT_WITHIN, async || {
        service.0.try_wait().unwrap().is_some()
    })
    .await;
    let output = std::fs::read_to_string(bus.dir.join("orders.log")).unwrap_or_default();
    assert!(
        exited,
        "still running {:?} after SIGTERM; its log:\n{output}",
        signalled.elapsed()
    );
    caller.close();
    bus.stop().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tollgate_serve_with_a_dead_connection_exits_on_sigterm_within_its_bound() {
    let fx = Fixture::amqp().await;
    let bus = TestBus::prepare(&fx, "").await;
    let proxy = ChaosProxy::to_broker().await.unwrap();
    let bound = SHUTDOWN_BOUND_SECS.to_string();
    let mut router = RouterProcess::spawn_full(
        &bus,
        &format!("{}-r", fx.ns.prefix()),
        &proxy.amqp_url(),
        &[("TOLLGATE_SHUTDOWN_TIMEOUT_SECS", bound.as_str())],
        &[],
    );
    router.wait_started(&bus, fx.transport().as_ref()).await;

    proxy.set_stalling(true);
    proxy.cut();
    router.terminate_within(EXIT_WITHIN);
    bus.stop().await;
    fx.cleanup().await;
}
