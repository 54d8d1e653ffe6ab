//! A header table nested as deep as one RabbitMQ frame allows (25,000
//! levels) does not take the router down: `tollgate serve` runs with deep
//! stacks (even when started with `RUST_MIN_STACK` set too small), refuses
//! the message as `too_large`, dead-letters a copy without the hostile
//! headers, and keeps serving.

use std::process::Command;

use serde_json::json;
use tollgate_bus::{SubscribeOptions, headers};
use tollgate_tests::{
    conformance::transport::recv,
    support::{Fixture, RouterProcess, TestBus},
};

const DEPTH: usize = 25_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_headers_do_not_take_the_router_down() {
    let fx = Fixture::amqp().await;
    let bus = TestBus::prepare(&fx, "").await;
    let tr = fx.transport().clone();
    let mut router = RouterProcess::spawn_with_env(
        &bus,
        &format!("{}-r", fx.ns.prefix()),
        &[("RUST_MIN_STACK", "2097152")],
    );
    router.wait_started(&bus, tr.as_ref()).await;
    bus.announce(tr.as_ref(), "orders", "application/json", "2")
        .await;
    let mut dead = tr
        .subscribe(bus.names.dead_queue(), SubscribeOptions::default())
        .await
        .unwrap();
    let mut service = tr
        .subscribe(
            &bus.names.service_queue("orders"),
            SubscribeOptions::default(),
        )
        .await
        .unwrap();

    let exchange = bus.names.ingress_exchange().to_owned();
    let helper = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_publish_hostile"))
            // std's own 2 MiB: set, but too small to serialise the table;
            // the helper must re-execute itself with a deep stack anyway.
            .env("RUST_MIN_STACK", "2097152")
            .args([
                exchange.as_str(),
                "orders.get",
                "hostile-1",
                &DEPTH.to_string(),
            ])
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        helper.success(),
        "the helper could not publish the hostile message"
    );

    let copy = recv(&mut dead, "the dead-letter copy of the hostile message").await;
    assert_eq!(copy.envelope.id, "hostile-1");
    assert_eq!(
        copy.envelope.headers.get_str(headers::CODE),
        Some("too_large")
    );
    assert!(
        copy.envelope
            .headers
            .get_str(headers::HEADERS_DROPPED)
            .is_some()
    );
    assert!(copy.envelope.headers.get("deep").is_none());
    copy.ack().await.unwrap();

    // Still serving.
    let request = bus.request(&json!({"after": "hostile"}), Some(&bus.token("web")), None);
    bus.send(tr.as_ref(), "orders.get", &request).await;
    let delivered = recv(&mut service, "a request after the hostile one").await;
    assert_eq!(delivered.envelope.id, request.id);
    delivered.ack().await.unwrap();
    assert!(router.is_running(), "the router process died");

    router.kill();
    bus.stop().await;
    fx.cleanup().await;
}
