//! The service queue is deleted under a running service (the broker cancels
//! its consumer): the service declares its queue again and consumes anew, and
//! every request sent afterwards through the router is answered.

use std::time::Duration;

use serde_json::Value;
use tollgate_bus::{QueueSpec, Topology};
use tollgate_tests::support::{Fixture, TestBus, wait_until};

use super::{order, web_caller};

/// Requests sent after the queue came back.
const AFTER: usize = 10;

async fn a_service_whose_queue_was_deleted_consumes_it_again(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let service = bus.run_orders(fx.connect().await, |b| b).await;
    let (caller, options) = web_caller(&bus, fx.connect().await).await;
    let before: Value = caller
        .request("orders.create", &order("c-before"), &options)
        .await
        .unwrap();
    assert_eq!(before["placed_by"], "web");

    let tr = fx.transport().as_ref();
    let queue = bus.names.service_queue("orders");
    tr.delete(&Topology::new().queue(QueueSpec::classic(&queue)))
        .await
        .unwrap();
    wait_until(
        "the service consuming its declared-again queue",
        Duration::from_secs(20),
        async || tr.inspect(&queue).await.is_ok_and(|q| q.consumers >= 1),
    )
    .await;

    let mut answered = 0;
    for n in 0..AFTER {
        let reply: Value = caller
            .request("orders.create", &order(&format!("c-{n}")), &options)
            .await
            .unwrap();
        assert_eq!(reply["placed_by"], "web");
        answered += 1;
    }
    assert_eq!(answered, AFTER);

    service.shutdown().await.unwrap();
    // The consumer's channel closes in the background once its
    // subscription is dropped: count the queue after it has gone.
    wait_until(
        "the stopped service's consumer gone",
        Duration::from_secs(10),
        async || tr.inspect(&queue).await.is_ok_and(|q| q.consumers == 0),
    )
    .await;
    let left = tr.inspect(&queue).await.unwrap();
    assert_eq!(left.messages, 0, "nothing left behind");
    assert_eq!(bus.dead_letters(tr).await, 0, "nothing refused");
    caller.close();
    bus.stop().await;
}

tollgate_tests::on_both_transports!(a_service_whose_queue_was_deleted_consumes_it_again);
