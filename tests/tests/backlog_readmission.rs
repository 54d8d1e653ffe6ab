//! A request that waited in its service's queue longer than its bus
//! assertion lives is served when the service comes back: the SDK hands it
//! back (rejects it, and the broker dead-letters it into `<ns>.poison`), the
//! (real) router checks that a router delivered it and delivers it again
//! with a fresh assertion. A copy someone else put into the queue is never
//! served, and a request older than `readmit_max_age_secs` is recorded as
//! `stale`.
//!
//! On RabbitMQ and on the memory transport; the router's assertions live 1 s
//! and the service allows no leeway, so a request outlives its assertion
//! within seconds.

#![allow(clippy::unwrap_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tollgate_bus::{Address, Envelope, SubscribeOptions, Transport, headers};
use tollgate_services::{
    CallError, Caller, RequestOptions, RunningService,
    examples::orders::{CONTENT_TYPE, NAME, SCHEMA_VERSION},
};
use tollgate_tests::support::{Fixture, TestBus, wait_until};

/// How the router delivers the request in each case.
#[derive(Clone, Copy)]
enum Delivered {
    /// Held (the default): a transient copy, the ingress unacked meanwhile.
    Held,
    /// Durably (`hold_calls = 0`, as every call past the held ones).
    Durably,
}

/// A bus whose assertions live 1 s, re-admitting requests up to `max_age_secs` old,
/// with `orders` registered but not running.
async fn bus_with_orders_down(fx: &Fixture, max_age_secs: u64, delivered: Delivered) -> TestBus {
    let bus = TestBus::start_adjusted(fx, "", |config| {
        config.auth.assertion_ttl_secs = 1;
        config.router.readmit_max_age_secs = max_age_secs;
        if let Delivered::Durably = delivered {
            config.router.hold_calls = Some(0);
        }
    })
    .await;
    bus.register(fx.transport().as_ref(), NAME, CONTENT_TYPE, SCHEMA_VERSION)
        .await;
    bus
}

fn order() -> Value {
    json!({"customer": {"id": "c-1"}, "items": [{"sku": "widget", "qty": 1}]})
}

/// Sends one order through the router; the call waits up to 30 s for its reply.
async fn call(fx: &Fixture, bus: &TestBus) -> tokio::task::JoinHandle<Result<Value, CallError>> {
    let caller = Caller::connect(fx.connect().await, bus.names.clone())
        .await
        .unwrap();
    let options = RequestOptions::with_token(bus.token("web")).timeout(Duration::from_secs(30));
    tokio::spawn(async move {
        caller
            .request::<_, Value>("orders.create", &order(), &options)
            .await
    })
}

/// Waits until `count` messages wait in the orders queue, then until their
/// 1 s assertions have certainly expired (2 s later).
async fn wait_until_outlived(fx: &Fixture, bus: &TestBus, count: u32) {
    let queue = bus.names.service_queue(NAME);
    wait_until(
        "the requests in the service queue",
        Duration::from_secs(10),
        async || fx.transport().inspect(&queue).await.unwrap().messages == count,
    )
    .await;
    let queued = Instant::now();
    wait_until(
        "the assertions to expire",
        Duration::from_secs(10),
        async || queued.elapsed() > Duration::from_secs(2),
    )
    .await;
}

async fn start_orders(fx: &Fixture, bus: &TestBus) -> RunningService {
    bus.run_orders(fx.connect().await, |b| b.assertion_leeway(Duration::ZERO))
        .await
}

/// Each case on RabbitMQ and on the memory transport.
macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod amqp {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(tollgate_tests::support::Fixture::amqp().await).await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(tollgate_tests::support::Fixture::memory().await).await;
                }
            )*
        }
    };
}

on_both!(
    a_request_that_outlived_its_assertion_is_served_when_its_service_returns,
    a_held_request_that_outlived_its_assertion_is_served_when_its_service_returns,
    a_captured_request_put_back_by_another_publisher_is_never_served,
    a_request_older_than_the_bus_re_admits_is_recorded_as_stale,
);

async fn a_request_that_outlived_its_assertion_is_served_when_its_service_returns(fx: Fixture) {
    served_when_its_service_returns(fx, Delivered::Durably).await;
}

/// A held copy its service hands back ends the hold at once: the ingress
/// comes again and goes the durable way, with a fresh assertion.
async fn a_held_request_that_outlived_its_assertion_is_served_when_its_service_returns(
    fx: Fixture,
) {
    served_when_its_service_returns(fx, Delivered::Held).await;
}

async fn served_when_its_service_returns(fx: Fixture, delivered: Delivered) {
    let bus = bus_with_orders_down(&fx, 3_600, delivered).await;
    let reply = call(&fx, &bus).await;
    wait_until_outlived(&fx, &bus, 1).await;

    let orders = start_orders(&fx, &bus).await;
    let reply = reply.await.unwrap().expect("served after re-admission");
    assert_eq!(
        reply["placed_by"], "web",
        "the caller's identity travels on"
    );

    orders.shutdown().await.unwrap();
    let dead = bus.names.dead_queue().to_owned();
    bus.stop().await;
    let refused = fx.transport().inspect(&dead).await.unwrap().messages;
    assert_eq!(refused, 0, "nothing was refused on the way");
    fx.cleanup().await;
}

async fn a_captured_request_put_back_by_another_publisher_is_never_served(fx: Fixture) {
    let bus = bus_with_orders_down(&fx, 3_600, Delivered::Durably).await;
    let reply = call(&fx, &bus).await;
    wait_until_outlived(&fx, &bus, 1).await;
    // Someone who can read and write the service's queue takes the request
    // and puts it back twice, its assertion genuine.
    let captured = take_one(&fx, &bus).await;
    assert_eq!(
        captured.user_id.as_deref(),
        fx.transport().user(),
        "the router's delivery names the router's broker user"
    );
    let attacker = another_user(&fx).await;
    let mut copy = captured.clone();
    if !fx.is_memory() {
        copy.user_id = None;
    }
    let queue = Address::queue(bus.names.service_queue(NAME));
    for _ in 0..2 {
        attacker.publish(&queue, &copy).await.unwrap();
    }

    let orders = start_orders(&fx, &bus).await;
    let raw = fx.connect().await;
    wait_until(
        "both copies' dead-letter records",
        Duration::from_secs(10),
        async || raw.inspect(bus.names.dead_queue()).await.unwrap().messages == 2,
    )
    .await;
    // A record comes only from the broker dead-lettering a copy the service
    // rejected: a served request is acked, never rejected.
    let copies = bus.describe_dead_letters(raw.as_ref()).await;
    for record in &copies {
        assert!(
            record.starts_with("dead_lettered")
                && record.contains("not re-admitted: no router of this bus delivered it"),
            "{copies:?}"
        );
    }
    reply.abort();
    orders.shutdown().await.unwrap();
    bus.stop().await;
    fx.cleanup().await;
}

/// A connection of another broker user than the router's, such as an
/// attacker with access to the service's queue has. On the memory broker it
/// is a user of its own; on the shared RabbitMQ every test logs in as
/// `guest`, so the test strips the copies' `user_id` by hand: what RabbitMQ
/// leaves any other user (`broker_permissions.rs` shows it refusing a copy
/// that names the router's user).
async fn another_user(fx: &Fixture) -> Arc<dyn Transport> {
    match fx.memory_broker() {
        Some(broker) => Arc::new(broker.connect_as("someone-else")),
        None => fx.connect().await,
    }
}

async fn a_request_older_than_the_bus_re_admits_is_recorded_as_stale(fx: Fixture) {
    let bus = bus_with_orders_down(&fx, 1, Delivered::Durably).await;
    let reply = call(&fx, &bus).await;
    wait_until_outlived(&fx, &bus, 1).await;

    let orders = start_orders(&fx, &bus).await;
    let raw = fx.connect().await;
    wait_until(
        "the stale request's dead-letter copy",
        Duration::from_secs(10),
        async || raw.inspect(bus.names.dead_queue()).await.unwrap().messages == 1,
    )
    .await;
    let copies = bus.describe_dead_letters(raw.as_ref()).await;
    assert!(copies[0].starts_with("stale"), "{copies:?}");
    reply.abort();
    orders.shutdown().await.unwrap();
    bus.stop().await;
    fx.cleanup().await;
}

/// Takes the one request waiting in the orders queue off it (acked).
async fn take_one(fx: &Fixture, bus: &TestBus) -> Envelope {
    let raw = fx.connect().await;
    let mut sub = raw
        .subscribe(
            &bus.names.service_queue(NAME),
            SubscribeOptions::prefetch(1),
        )
        .await
        .unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("the request")
        .expect("a delivery");
    let envelope = delivery.envelope.clone();
    assert!(envelope.headers.get_str(headers::ASSERTION).is_some());
    delivery.ack().await.unwrap();
    drop(sub);
    raw.close().await.unwrap();
    envelope
}
