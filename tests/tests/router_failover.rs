//! Two `tollgate serve` processes share one ingress queue; one is killed with
//! SIGKILL while 10,000 requests are in flight, and none is lost: every
//! message id reaches the service at least once.
//!
//! On the default classic durable queues (requests persistent and
//! confirmed) and on quorum queues (`queue_type = "quorum"`).

use std::{sync::Arc, time::Duration};

use serde_json::json;
use tollgate_bus::{Address, QueueKind};
use tollgate_tests::support::{Fixture, Publisher, RouterProcess, Tap, TestBus, wait_until};

const REQUESTS: usize = 10_000;
const PROBES: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_two_routers_loses_no_request_on_classic_queues() {
    kill_one_of_two_routers(QueueKind::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_two_routers_loses_no_request_on_quorum_queues() {
    kill_one_of_two_routers(QueueKind::Quorum).await;
}

async fn kill_one_of_two_routers(kind: QueueKind) {
    let fx = Fixture::amqp().await;
    let bus = TestBus::prepare_on(&fx, kind).await;
    let tr = Arc::clone(fx.transport());
    let mut router_a = RouterProcess::spawn(&bus, &format!("{}-a", fx.ns.prefix()));
    let mut router_b = RouterProcess::spawn(&bus, &format!("{}-b", fx.ns.prefix()));
    router_a.wait_started(&bus, tr.as_ref()).await;
    router_b.wait_started(&bus, tr.as_ref()).await;
    // Once: every router is ready (wait_started), so both hear it.
    bus.announce(tr.as_ref(), "orders", "application/json", "2")
        .await;
    router_a.wait_routing(1).await;
    router_b.wait_routing(1).await;

    // The service records every message id it sees.
    let service = Tap::start(tr.as_ref(), &bus.names.service_queue("orders")).await;

    // Both routers route; probes show the service receives.
    let token = bus.token("web");
    let mut probes = Vec::new();
    for _ in 0..PROBES {
        let probe = bus.request(&json!({"probe": true}), Some(&token), None);
        bus.send(tr.as_ref(), "orders.get", &probe).await;
        probes.push(probe.id);
    }
    wait_until(
        "the probes to reach the service",
        Duration::from_secs(60),
        async || service.has_all(&probes),
    )
    .await;

    let to = Address::new(bus.names.ingress_exchange(), "orders.get");
    let request = bus.request(&json!({"n": 1}), Some(&token), None);
    let publisher = Publisher::start(Arc::clone(&tr), to, request, REQUESTS, 256);
    // Both routers route part of the stream when one is killed.
    wait_until("traffic to flow", Duration::from_secs(60), async || {
        service.distinct() >= PROBES + REQUESTS / 10
            && router_a.delivered() > 0.0
            && router_b.delivered() > 0.0
    })
    .await;
    // The router to be killed is handling traffic at that moment: its count of
    // delivered requests still moves, and requests still wait to be routed.
    let delivered_by_a = router_a.delivered();
    wait_until(
        "the router to be killed to deliver more",
        Duration::from_secs(60),
        async || router_a.delivered() > delivered_by_a,
    )
    .await;
    assert!(
        service.distinct() < PROBES + REQUESTS,
        "requests were still in flight when the router was killed"
    );
    router_a.kill(); // SIGKILL: no chance to settle anything.
    let published = publisher.finish().await;
    assert_eq!(
        published.failed, 0,
        "the publisher's own connection is untouched; first failure: {:?}",
        published.first_error
    );

    service
        .wait_for_all(
            &published.confirmed,
            Duration::from_secs(180),
            "after the kill",
        )
        .await;
    service.stop().await;

    let metrics = router_b.metrics();
    for series in [
        "tollgate_messages_total",
        "tollgate_stage_seconds",
        "tollgate_registry_services",
    ] {
        assert!(
            metrics.contains(series),
            "/metrics lacks {series}:\n{metrics}"
        );
    }
    assert!(metrics.contains("outcome=\"delivered\""), "{metrics}");
    let status = router_b.terminate();
    assert!(
        status.success(),
        "a SIGTERM'd router exits cleanly, got {status}"
    );
    // No router runs any more: nothing can be refused later.
    let dead = bus.dead_letters(tr.as_ref()).await;
    if dead > 0 {
        panic!(
            "nothing should be refused, but {dead} dead letter(s): {:#?}",
            bus.describe_dead_letters(tr.as_ref()).await
        );
    }
    bus.stop().await;
    fx.cleanup().await;
}
