//! A memory alarm (`connection.blocked`) while requests flow through a
//! router, held four times longer than the router's confirm timeout: every
//! confirmed request reaches the service exactly once, nothing is
//! dead-lettered. Before publishes waited out the alarm, each delivery timed
//! out, was requeued and published again, and the broker delivered the first
//! publish as well once the alarm cleared (399 replies for 200 requests).
//!
//! The alarm blocks every publisher on the shared broker, so this test is
//! ignored by `cargo test --workspace`; `scripts/broker-faults` runs it alone.
//! The broker's memory watermark is restored when the test ends, also when it
//! fails.

use std::{sync::Arc, time::Duration};

use serde_json::json;
use tokio_util::sync::CancellationToken;
use tollgate_bus::{Address, AmqpConfig, AmqpTransport, Transport, config::Config, router::Router};
use tollgate_tests::support::{
    Fixture, MemoryAlarm, Publisher, Tap, TestBus, amqp_url, wait_until,
};

/// The router's confirm timeout: the alarm lasts four times as long.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "raises a memory alarm on the shared broker: run by scripts/broker-faults"]
async fn a_memory_alarm_longer_than_the_confirm_timeout_loses_and_duplicates_nothing() {
    let fx = Fixture::amqp().await;
    let bus = TestBus::prepare(&fx, "").await;
    let tr = Arc::clone(fx.transport());
    let mut amqp = AmqpConfig::new(amqp_url()).with_connection_name("alarm-test-router");
    amqp.confirm_timeout = CONFIRM_TIMEOUT;
    let router_transport: Arc<dyn Transport> =
        Arc::new(AmqpTransport::connect(amqp).await.unwrap());
    let shutdown = CancellationToken::new();
    let config = Config::load(&bus.config_path()).unwrap();
    let router = Router::from_config(&config)
        .unwrap()
        .start(Arc::clone(&router_transport), shutdown.clone())
        .await
        .unwrap();
    let heartbeat = bus.keep_announcing(Arc::clone(&tr), "orders");
    wait_until(
        "the service to be routable",
        Duration::from_secs(30),
        async || router.registry.resolve("orders").is_some(),
    )
    .await;

    let service = Tap::start(tr.as_ref(), &bus.names.service_queue("orders")).await;
    let to = Address::new(bus.names.ingress_exchange(), "orders.get");
    let request = bus.request(&json!({"n": 1}), Some(&bus.token("web")), None);
    let publisher = Publisher::start(Arc::clone(&tr), to, request, usize::MAX, 128);
    wait_until("requests to flow", Duration::from_secs(60), async || {
        service.distinct() >= 500
    })
    .await;

    let alarm = MemoryAlarm::raise().await;
    let before = service.distinct();
    // The fault itself: the alarm stays on for four confirm timeouts.
    tokio::time::sleep(4 * CONFIRM_TIMEOUT).await;
    let during = service.distinct();
    println!("{before} requests at the service when the alarm went off, {during} when it cleared");
    alarm.clear().await;

    let confirmed_at_clear = publisher.confirmed();
    wait_until(
        "publishes to be confirmed again",
        Duration::from_secs(60),
        async || publisher.confirmed() >= confirmed_at_clear + 500,
    )
    .await;
    let published = publisher.stop().await;
    service
        .wait_for_all(
            &published.confirmed,
            Duration::from_secs(120),
            "after the alarm",
        )
        .await;
    // Every publish of the router is settled once it stopped: a duplicate
    // would be in the service queue by now, and the tap drains it.
    shutdown.cancel();
    router.wait().await.unwrap();
    let queue = bus.names.service_queue("orders");
    wait_until(
        "the service queue to be drained",
        Duration::from_secs(30),
        async || tr.inspect(&queue).await.is_ok_and(|q| q.messages == 0),
    )
    .await;
    heartbeat.abort();
    let duplicates = service.duplicates();
    service.stop().await;
    println!(
        "{} confirmed, {} failed publishes; {} duplicates at the service",
        published.confirmed.len(),
        published.failed,
        duplicates.len()
    );
    assert!(
        duplicates.is_empty(),
        "requests delivered more than once: {:?}",
        &duplicates[..duplicates.len().min(5)]
    );
    assert_eq!(
        bus.dead_letters(tr.as_ref()).await,
        0,
        "nothing was dead-lettered"
    );
    bus.stop().await;
    fx.cleanup().await;
}
