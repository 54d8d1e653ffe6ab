//! Held calls (README, "Delivery contract"), through the real router: a
//! call's copy in its service queue is transient, expires with the reply
//! timeout and is replied to the router's own queue; the call's ingress
//! delivery is acked only once the reply has passed the router. Without a
//! reply, the ingress goes back to the queue — when the router stops, or when
//! the hold lapses, and then the call is delivered durably — and the expired
//! copy leaves no dead letter.

// The cases are plain async fns instantiated per transport by
// `on_both_transports!`; a failed expectation must panic.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::json;
use tollgate_bus::{
    Address, DeliveryMode, Envelope, SubscribeOptions, Subscription, Transport, headers,
    reply_context::DEFAULT_REPLY_TIMEOUT_SECS, router::STOPPING_GRACE,
};
use tollgate_tests::{
    conformance::transport::recv,
    support::{Fixture, TestBus, wait_until},
};

/// Sends one call to `orders.create` (registered here, served by the test
/// itself from its queue); returns the caller's and the service's queues.
async fn send_call(bus: &TestBus, tr: &dyn Transport) -> (Subscription, Subscription, Envelope) {
    bus.register(tr, "orders", "application/json", "1").await;
    let (caller, replies) = bus.caller_queue(tr).await;
    let service = tr
        .subscribe(
            &bus.names.service_queue("orders"),
            SubscribeOptions::prefetch(10),
        )
        .await
        .unwrap();
    let request = bus.request(&json!({"sku": "a"}), Some(&bus.token("web")), Some(&caller));
    bus.send(tr, "orders.create", &request).await;
    (replies, service, request)
}

/// Messages waiting in `queue`.
async fn waiting(tr: &dyn Transport, queue: &str) -> u32 {
    tr.inspect(queue).await.unwrap().messages
}

async fn a_held_call_is_acked_once_its_reply_passed_the_router(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let (tr, names) = (fx.transport().as_ref(), bus.names.clone());
    let (mut replies, mut service, request) = send_call(&bus, tr).await;

    let held = recv(&mut service, "the call's copy").await;
    let copy = &held.envelope;
    assert_eq!(copy.delivery_mode, DeliveryMode::Transient);
    assert_eq!(
        copy.expiration,
        Some(Duration::from_secs(DEFAULT_REPLY_TIMEOUT_SECS))
    );
    let reply_to = copy.reply_to.clone().unwrap();
    assert!(names.is_router_replies_queue(&reply_to), "{reply_to}");

    let mut reply = Envelope::new(r#"{"order_id":"o-1"}"#)
        .with_content_type("application/json")
        .with_correlation_id(copy.correlation_id.clone().unwrap())
        .transient();
    let context = copy.headers.get(headers::REPLY_CONTEXT).unwrap().clone();
    reply.headers.insert(headers::REPLY_CONTEXT, context);
    tr.publish(&Address::queue(&reply_to), &reply)
        .await
        .unwrap();
    held.ack().await.unwrap();
    let answer = recv(&mut replies, "the reply").await;
    assert_eq!(answer.envelope.correlation_id, request.correlation_id);
    assert_eq!(answer.envelope.headers.get_str(headers::ERROR), None);

    drop(service);
    // Holding no call, the router stops without waiting out the grace it
    // gives held calls' replies (it waited 6 s until session 18).
    tokio::time::timeout(STOPPING_GRACE, bus.stop())
        .await
        .expect("a router holding no call stops within its grace for replies");
    // A stopping router gives back whatever it had not acked: nothing.
    assert_eq!(waiting(tr, names.ingress_queue()).await, 0);
    assert_eq!(waiting(tr, names.dead_queue()).await, 0);
}

async fn a_held_call_without_a_reply_goes_back_when_its_router_stops(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let (tr, names) = (fx.transport().as_ref(), bus.names.clone());
    let (_replies, mut service, request) = send_call(&bus, tr).await;
    let held = recv(&mut service, "the call's copy").await;
    assert_eq!(held.envelope.id, request.id);

    // The service sits on it; the router stops (after its grace for replies).
    bus.stop().await;
    assert_eq!(
        waiting(tr, names.ingress_queue()).await,
        1,
        "the held call went back to the ingress queue"
    );
    assert_eq!(waiting(tr, names.dead_queue()).await, 0);
    drop(held);
}

async fn a_lapsed_hold_delivers_the_call_durably_and_its_copy_is_no_dead_letter(fx: &Fixture) {
    let bus = TestBus::start_with(fx, "[router]\nreply_timeout_secs = 1\n").await;
    let (tr, names) = (fx.transport().as_ref(), bus.names.clone());
    let (_replies, mut service, request) = send_call(&bus, tr).await;

    let held = recv(&mut service, "the held copy").await;
    assert_eq!(held.envelope.delivery_mode, DeliveryMode::Transient);
    assert_eq!(held.envelope.expiration, Some(Duration::from_secs(1)));
    // No reply within the window (1 s): the ingress comes again, redelivered,
    // and goes the durable way.
    let durable = recv(&mut service, "the durable copy").await;
    let copy = &durable.envelope;
    assert_eq!(copy.id, request.id);
    assert_eq!(copy.delivery_mode, DeliveryMode::Persistent);
    assert_eq!(copy.expiration, None);
    assert_eq!(copy.reply_to.as_deref(), Some(names.replies_queue()));
    durable.ack().await.unwrap();

    // The held copy, back in its queue, has expired: the broker dead-letters
    // it, and the router drops it instead of recording it.
    drop(service);
    drop(held);
    let service_queue = names.service_queue("orders");
    wait_until(
        "the expired copy to be cleaned",
        Duration::from_secs(15),
        async || {
            waiting(tr, &service_queue).await == 0 && waiting(tr, names.poison_queue()).await == 0
        },
    )
    .await;
    bus.stop().await;
    for queue in [
        names.ingress_queue(),
        names.poison_queue(),
        names.dead_queue(),
    ] {
        assert_eq!(waiting(tr, queue).await, 0, "{queue}");
    }
}

tollgate_tests::on_both_transports!(
    a_held_call_is_acked_once_its_reply_passed_the_router,
    a_held_call_without_a_reply_goes_back_when_its_router_stops,
    a_lapsed_hold_delivers_the_call_durably_and_its_copy_is_no_dead_letter,
);
