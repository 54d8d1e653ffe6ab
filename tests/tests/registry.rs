//! The registry on RabbitMQ: registration is authenticated and authorized
//! like any message, and a service that stops heartbeating leaves the table.

// The cases are plain async fns instantiated per transport by
// `on_both_transports!`; a failed expectation must panic.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use serde_json::json;
use tollgate_bus::{
    Address, QueueSpec, SubscribeOptions, Topology, Transport, headers,
    registry::{Announcement, Registration},
};
use tollgate_tests::{
    conformance::transport::recv,
    support::{Fixture, REGISTRATION_AUDIENCE, TestBus},
};

fn registration(service: &str, ttl_secs: u64) -> Announcement {
    Announcement::Register(Registration {
        service: service.into(),
        instance: format!("{service}-1"),
        content_type: "application/json".into(),
        schema_version: "2".into(),
        ttl_secs,
        assertion: Default::default(),
    })
}

/// Registers `service` as `account` with a lease of one second, which
/// nothing renews.
async fn register_for_a_second(bus: &TestBus, tr: &dyn Transport, service: &str, account: &str) {
    let token = bus.registration_token(account);
    tr.publish(
        &Address::new(bus.names.control_exchange(), ""),
        &registration(service, 1).to_envelope(Some(&token)).unwrap(),
    )
    .await
    .unwrap();
}

/// Waits until `service` no longer resolves.
async fn wait_until_gone(bus: &TestBus, service: &str, what: &str) {
    bus.wait_for(|| bus.registry().resolve(service).is_none(), what)
        .await;
}

async fn unauthenticated_and_unauthorized_registrations_are_refused(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let tr = fx.transport().as_ref();
    let control = Address::new(bus.names.control_exchange(), "");
    let attempts = [
        registration("billing", 30).to_envelope(None).unwrap(),
        registration("billing", 30)
            .to_envelope(Some("not-a-token"))
            .unwrap(),
        // orders-svc may register `orders` only.
        registration("billing", 30)
            .to_envelope(Some(&bus.registration_token("orders-svc")))
            .unwrap(),
        // billing-svc's caller token: the right account, the wrong purpose.
        registration("billing", 30)
            .to_envelope(Some(&bus.token("billing-svc")))
            .unwrap(),
        // A caller account may register nothing.
        registration("billing", 30)
            .to_envelope(Some(&bus.token("web")))
            .unwrap(),
        // A token that expired.
        registration("billing", 30)
            .to_envelope(Some(&bus.token_with(
                "billing-svc",
                -120,
                json!({"aud": REGISTRATION_AUDIENCE}),
            )))
            .unwrap(),
    ];
    for attempt in &attempts {
        tr.publish(&control, attempt).await.unwrap();
    }
    // Announcements are handled in order: once this one is in, the others were judged.
    bus.register(tr, "orders", "application/json", "2").await;
    assert!(bus.registry().resolve("billing").is_none());
    assert_eq!(bus.registry().snapshot(Instant::now()).len(), 1);
    bus.stop().await;
}

async fn a_service_that_stops_heartbeating_leaves_routing(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let tr = fx.transport().as_ref();
    register_for_a_second(&bus, tr, "inventory", "inventory-svc").await;
    bus.wait_registered("inventory").await;
    wait_until_gone(&bus, "inventory", "the lease to expire").await;

    let (caller_q, mut replies) = bus.caller_queue(tr).await;
    let request = bus.request(&json!({}), Some(&bus.token("web")), Some(&caller_q));
    bus.send(tr, "inventory.reserve", &request).await;
    let reply = recv(&mut replies, "the no_route error").await;
    assert_eq!(
        reply.envelope.headers.get_str(headers::ERROR),
        Some("no_route")
    );
    reply.ack().await.unwrap();
    assert_eq!(
        tr.inspect(&bus.names.service_queue("inventory"))
            .await
            .unwrap()
            .messages,
        0
    );
    bus.stop().await;
}

/// A queue that receives every announcement on the control exchange, subscribed.
async fn control_tap(fx: &Fixture, bus: &TestBus) -> tollgate_bus::Subscription {
    let tap = fx.ns.name("control-tap");
    fx.declare(&Topology::new().queue(QueueSpec::classic(&tap)).bind(
        bus.names.control_exchange(),
        &tap,
        "",
    ))
    .await
    .unwrap();
    fx.transport()
        .subscribe(&tap, SubscribeOptions::prefetch(16))
        .await
        .unwrap()
}

/// Waits for the next `discover` on `control`, skipping other announcements.
async fn next_discover(control: &mut tollgate_bus::Subscription, what: &str) {
    loop {
        let d = recv(control, what).await;
        let announcement = Announcement::from_bytes(&d.envelope.payload).unwrap();
        d.ack().await.unwrap();
        if announcement == Announcement::Discover {
            return;
        }
    }
}

/// A lapsed lease is not dropped at once: the router first asks services
/// to announce (a `discover`, whose confirm also shows the broker is taking
/// publishes — during an alarm it would not, and the router would hold every
/// lease), and keeps the service routable for a short grace to answer.
/// Without an answer it leaves.
async fn a_lapsed_lease_asks_services_to_announce_before_the_service_leaves(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let tr = fx.transport().as_ref();
    let mut control = control_tap(fx, &bus).await;
    register_for_a_second(&bus, tr, "inventory", "inventory-svc").await;
    next_discover(&mut control, "the router's discover once the lease lapsed").await;
    assert!(
        bus.registry().resolve("inventory").is_some(),
        "the service stays routable while it may answer the discover"
    );
    wait_until_gone(&bus, "inventory", "the unanswered service to leave").await;
    drop(control);
    bus.stop().await;
}

/// Every lapse gets a `discover` of its own before its service leaves, also
/// one that follows another service's probe within seconds (an alarm may
/// have begun in between: without its own probe the router could not tell).
async fn a_lapse_soon_after_another_probe_gets_its_own_discover(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let tr = fx.transport().as_ref();
    let mut control = control_tap(fx, &bus).await;
    register_for_a_second(&bus, tr, "inventory", "inventory-svc").await;
    next_discover(&mut control, "inventory's lapse probe").await;

    // `billing` registers for a second after that probe, and falls silent.
    register_for_a_second(&bus, tr, "billing", "billing-svc").await;
    bus.wait_registered("billing").await;
    next_discover(&mut control, "billing's own lapse probe").await;
    assert!(
        bus.registry().resolve("billing").is_some(),
        "billing stays routable while it may answer its discover"
    );
    wait_until_gone(&bus, "billing", "the unanswered billing to leave").await;
    drop(control);
    bus.stop().await;
}

tollgate_tests::on_both_transports!(
    unauthenticated_and_unauthorized_registrations_are_refused,
    a_service_that_stops_heartbeating_leaves_routing,
    a_lapsed_lease_asks_services_to_announce_before_the_service_leaves,
    a_lapse_soon_after_another_probe_gets_its_own_discover
);
