//! `/health/live` and `/health/ready` of a `tollgate serve` process: ready
//! once it consumes, not ready while a queue it consumes is gone and cannot
//! be declared again, ready again once it is, live throughout.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tollgate_bus::{ExchangeKind, ExchangeSpec, QueueSpec, Topology};
use tollgate_tests::support::{Fixture, RouterProcess, TestBus, wait_until};

/// The status and the JSON body of `path`, asserting the router stays live.
fn probe(router: &RouterProcess, path: &str) -> Option<(u16, serde_json::Value)> {
    let (live, _) = router.get("/health/live")?;
    assert_eq!(live, 200, "the router stays live");
    let (status, body) = router.get(path)?;
    let body = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{path} answers JSON ({e}): {body:?}"));
    Some((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_drops_while_the_ingress_queue_is_gone_and_returns_once_declared_again() {
    let fx = Fixture::amqp().await;
    let bus = TestBus::prepare(&fx, "").await;
    let tr = fx.transport().as_ref();
    let mut router = RouterProcess::spawn(&bus, &format!("{}-health", fx.ns.prefix()));
    router.wait_started(&bus, tr).await;

    wait_until(
        "the router to be ready",
        Duration::from_secs(30),
        async || {
            probe(&router, "/health/ready").is_some_and(|(status, body)| {
                status == 200
                    && body["ready"] == true
                    && ["topology", "ingress", "replies", "poison", "registry"]
                        .iter()
                        .all(|check| body[check] == true)
            })
        },
    )
    .await;
    assert_eq!(router.get("/nowhere").map(|(status, _)| status), Some(404));
    assert!(router.metrics().contains("# TYPE"), "/metrics still served");

    // The ingress exchange of the wrong type: the router's declaration of the
    // bus topology fails until it is removed, so the gap can be seen.
    let names = &bus.names;
    let ingress_x = names.ingress_exchange();
    tr.delete(&Topology::new().exchange(ExchangeSpec::topic(ingress_x)))
        .await
        .unwrap();
    tr.declare(&Topology::new().exchange(ExchangeSpec::new(ingress_x, ExchangeKind::Fanout)))
        .await
        .unwrap();
    tr.delete(&Topology::new().queue(QueueSpec::classic(names.ingress_queue())))
        .await
        .unwrap();
    wait_until(
        "not ready while the ingress queue is gone",
        Duration::from_secs(10),
        async || {
            probe(&router, "/health/ready").is_some_and(|(status, body)| {
                status == 503 && body["ready"] == false && body["ingress"] == false
            })
        },
    )
    .await;

    tr.delete(&Topology::new().exchange(ExchangeSpec::new(ingress_x, ExchangeKind::Fanout)))
        .await
        .unwrap();
    wait_until(
        "ready again once the topology is declared again",
        Duration::from_secs(20),
        async || {
            probe(&router, "/health/ready")
                .is_some_and(|(status, body)| status == 200 && body["ingress"] == true)
        },
    )
    .await;
    let queue = tr.inspect(names.ingress_queue()).await.unwrap();
    assert_eq!(
        queue.consumers, 1,
        "the router consumes the new ingress queue"
    );
    assert!(router.is_running());

    let status = router.terminate();
    assert!(
        status.success(),
        "a SIGTERM'd router exits cleanly, got {status}"
    );
    bus.stop().await;
    fx.cleanup().await;
}
