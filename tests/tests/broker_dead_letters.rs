//! What the broker dead-letters on its own (a consumer's reject without
//! requeue, a quorum queue's delivery limit, an expiry) holds what the sender
//! sent: the router turns it into a clean copy, so `<ns>.dead` never holds a
//! credential or a forged header. Through the real router, on both transports.

// The cases are plain async fns instantiated per transport by
// `on_both_transports!`; a failed expectation must panic.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use tollgate_bus::{
    Address, Envelope, QueueKind, SubscribeOptions, bus_topology::DELIVERY_LIMIT, headers,
};
use tollgate_tests::{
    conformance::transport::recv,
    support::{Fixture, TestBus},
};

async fn what_the_broker_dead_letters_reaches_the_dead_letter_queue_clean(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let tr = fx.transport().as_ref();
    let service_queue = bus.names.service_queue("orders");
    let mut raw = Envelope::new(r#"{"sku":"a"}"#).with_correlation_id("c-1");
    for (name, value) in [
        (headers::AUTHORIZATION, "Bearer secret-token"),
        ("Authorization", "Bearer other-secret"),
        ("x-tollgate-consumer", "admin"),
        (headers::REPLY_KEY, "caller-secret"),
        ("trace-id", "t-1"),
    ] {
        raw.headers.insert(name, value);
    }
    tr.publish(&Address::queue(service_queue.as_str()), &raw)
        .await
        .unwrap();
    // Its consumer rejects it without requeue: the broker dead-letters it.
    let mut service = tr
        .subscribe(&service_queue, SubscribeOptions::prefetch(1))
        .await
        .unwrap();
    let mut dead = tr
        .subscribe(bus.names.dead_queue(), SubscribeOptions::default())
        .await
        .unwrap();
    recv(&mut service, "the raw message")
        .await
        .reject(false)
        .await
        .unwrap();

    let copy = recv(&mut dead, "the clean copy").await;
    let h = &copy.envelope.headers;
    assert_eq!(copy.envelope.id, raw.id);
    assert_eq!(h.get_str(headers::CODE), Some("dead_lettered"));
    assert_eq!(h.get_str(headers::STAGE), Some("broker"));
    let reason = h.get_str(headers::REASON).unwrap();
    assert!(
        reason.contains(&service_queue) && reason.contains("rejected"),
        "{reason}"
    );
    assert_eq!(
        h.get_str("trace-id"),
        Some("t-1"),
        "the sender's plain headers stay"
    );
    for (name, _) in h.iter() {
        let name = name.to_ascii_lowercase();
        assert_ne!(
            name, "authorization",
            "a credential in the dead-letter queue"
        );
        assert_ne!(name, headers::X_DEATH);
        assert!(
            !name.starts_with("x-first-death") && !name.starts_with("x-last-death"),
            "{name}"
        );
        assert_ne!(name, "x-tollgate-consumer");
        assert_ne!(name, headers::REPLY_KEY);
    }
    copy.ack().await.unwrap();

    let names = bus.names.clone();
    bus.stop().await;
    drop((dead, service));
    for queue in [
        names.dead_queue(),
        names.poison_queue(),
        service_queue.as_str(),
    ] {
        assert_eq!(
            tr.inspect(queue).await.unwrap().messages,
            0,
            "{queue} holds more than the one clean copy"
        );
    }
}

/// A quorum ingress queue dead-letters a request that came back to it more
/// often than its delivery limit — also when no router ever refused it, only
/// held it while its connection was cut (RabbitMQ up to 4.2 counts those
/// returns). The router returns such a request to the ingress instead of
/// recording it, and it is served.
async fn a_request_the_ingress_dead_lettered_at_its_delivery_limit_is_served(fx: &Fixture) {
    let mut bus = TestBus::prepare_on(fx, QueueKind::Quorum).await;
    let tr = fx.transport().as_ref();
    let (key, mut replies) = bus.caller_queue(tr).await;
    let order = json!({"customer": {"id": "c-1"}, "items": [{"sku": "widget", "qty": 1}]});
    let request = bus.request(&order, Some(&bus.token("web")), Some(&key));
    bus.send(tr, "orders.create", &request).await;
    // Before any router runs, a consumer of the ingress gives it back until
    // the broker dead-letters it: as a router cut off that often would.
    let mut ingress = tr
        .subscribe(bus.names.ingress_queue(), SubscribeOptions::prefetch(1))
        .await
        .unwrap();
    for _ in 0..=DELIVERY_LIMIT {
        recv(&mut ingress, "the request")
            .await
            .reject(true)
            .await
            .unwrap();
    }
    drop(ingress);
    // Held off the poison queue until `orders` is registered with the router
    // (else the router would refuse it `no_route`), then given back.
    let holder = fx.connect().await;
    let mut poison = holder
        .subscribe(bus.names.poison_queue(), SubscribeOptions::prefetch(1))
        .await
        .unwrap();
    let dead_lettered = recv(&mut poison, "the request in the poison queue").await;
    assert_eq!(dead_lettered.envelope.id, request.id);
    assert_eq!(
        dead_lettered
            .envelope
            .headers
            .get_str(headers::X_FIRST_DEATH_REASON),
        Some("delivery_limit")
    );
    bus.run_router(fx, |_| {}).await;
    let orders = bus.run_orders(fx.connect().await, |b| b).await;
    drop((dead_lettered, poison));
    holder.close().await.unwrap();
    let reply = recv(&mut replies, "the order's reply").await;
    assert_eq!(reply.envelope.correlation_id, request.correlation_id);
    assert!(
        reply.envelope.headers.get_str(headers::ERROR).is_none(),
        "{:?}",
        String::from_utf8_lossy(&reply.envelope.payload)
    );
    reply.ack().await.unwrap();

    orders.shutdown().await.unwrap();
    let names = bus.names.clone();
    bus.stop().await;
    drop(replies);
    for queue in [
        names.dead_queue(),
        names.poison_queue(),
        names.ingress_queue(),
    ] {
        assert_eq!(tr.inspect(queue).await.unwrap().messages, 0, "{queue}");
    }
}

tollgate_tests::on_both_transports!(
    what_the_broker_dead_letters_reaches_the_dead_letter_queue_clean,
    a_request_the_ingress_dead_lettered_at_its_delivery_limit_is_served,
);
