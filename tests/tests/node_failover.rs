//! A broker URL may list several nodes (comma-separated). Two "nodes" are
//! simulated by two [`ChaosProxy`]s in front of the one shared broker: the
//! transport connects through the first that answers and, when the proxy it
//! goes through dies, moves on to the next and keeps working: for a bare
//! transport, and for a `tollgate serve` router, an SDK service and a caller
//! together (every request answered; a call that raced the fault is retried
//! by its caller, as the delivery contract says).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};
use tollgate_auth::AssertionVerifier;
use tollgate_bus::{
    Address, AmqpConfig, AmqpTransport, Envelope, QueueSpec, SubscribeOptions, Topology, Transport,
    TransportError,
};
use tollgate_services::{CallError, Caller, RequestOptions, examples};
use tollgate_tests::support::{ChaosProxy, Fixture, RouterProcess, TestBus, wait_until};

/// A node nobody listens on: connecting to it is refused at once.
const DEAD_NODE: &str = "amqp://guest:guest@127.0.0.1:1/%2f";
/// Requests the caller sends through the router; the first node dies after a third.
const REQUESTS: usize = 300;
/// Callers sending at once.
const WORKERS: usize = 6;

async fn connect(urls: &str, name: &str) -> Arc<dyn Transport> {
    let config = AmqpConfig::new(urls)
        .with_connection_name(name)
        .with_reconnect_timeout(Duration::from_secs(20));
    Arc::new(AmqpTransport::connect(config).await.expect("connect"))
}

/// Publishes until the broker confirms (a publish racing the fault fails as
/// a transport error, and a caller retries).
async fn publish_until_confirmed(transport: &dyn Transport, to: &Address, envelope: &Envelope) {
    for _ in 0..100 {
        match transport.publish(to, envelope).await {
            Ok(()) => return,
            Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("the publish failed for good: {e}"),
        }
    }
    panic!("no confirm after 100 attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_list_or_no_live_node_fails_at_connect() {
    let bad = AmqpTransport::connect(AmqpConfig::new("amqp://u:pw9@h1/%2f,,amqp://h2/%2f")).await;
    let e = bad.expect_err("an empty entry is refused");
    assert_eq!(e.code(), "bad_url");
    assert!(!e.is_retryable());
    assert!(!e.to_string().contains("pw9"), "{e}");

    let none = format!("{DEAD_NODE},amqp://guest:guest@127.0.0.1:2/%2f");
    let e = AmqpTransport::connect(AmqpConfig::new(none))
        .await
        .expect_err("no node answers");
    assert_eq!(e.code(), "connect", "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_skips_a_dead_node_and_moves_on_when_its_node_dies() {
    let fx = Fixture::amqp().await;
    let (a, b) = (
        ChaosProxy::to_broker().await.expect("proxy a"),
        ChaosProxy::to_broker().await.expect("proxy b"),
    );
    let queue = fx.ns.name("failover");
    fx.declare(&Topology::new().queue(QueueSpec::classic(&queue)))
        .await
        .unwrap();
    let urls = format!("{DEAD_NODE},{},{}", a.amqp_url(), b.amqp_url());
    let transport = connect(&urls, "node-failover").await;
    assert_eq!(
        (a.accepted(), b.accepted()),
        (1, 0),
        "the first live node in the list is used"
    );
    let mut deliveries = transport
        .subscribe(&queue, SubscribeOptions::default())
        .await
        .unwrap();
    let to = Address::new("", &queue);
    let first = Envelope::new(b"one".to_vec());
    publish_until_confirmed(transport.as_ref(), &to, &first).await;
    let got = tokio::time::timeout(Duration::from_secs(30), deliveries.next())
        .await
        .expect("the first message arrives")
        .expect("subscription open");
    assert_eq!(got.envelope.id, first.id);
    got.ack().await.unwrap();

    drop(a); // The node dies: its port refuses, its connections drop.
    let second = Envelope::new(b"two".to_vec());
    publish_until_confirmed(transport.as_ref(), &to, &second).await;
    // The first message may come again (at least once: its ack can be lost
    // with the node); nothing else may.
    loop {
        let got = tokio::time::timeout(Duration::from_secs(30), deliveries.next())
            .await
            .expect("the consumer moved to the next node too")
            .expect("subscription open");
        let id = got.envelope.id.clone();
        got.ack().await.unwrap();
        if id == second.id {
            break;
        }
        assert_eq!(id, first.id, "only the first message may be redelivered");
    }
    assert!(b.accepted() >= 1, "the transport moved to node b");

    drop(deliveries);
    transport.close().await.unwrap();
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_service_and_caller_move_to_the_next_node_and_every_request_is_answered() {
    let fx = Fixture::amqp().await;
    let bus = TestBus::prepare(&fx, "").await;
    let a = ChaosProxy::to_broker().await.expect("proxy a");
    let b = ChaosProxy::to_broker().await.expect("proxy b");
    let urls = format!("{},{}", a.amqp_url(), b.amqp_url());

    let mut router = RouterProcess::spawn_via(&bus, &format!("{}-r", fx.ns.prefix()), &urls);
    router.wait_started(&bus, fx.transport().as_ref()).await;
    let bus_key = AssertionVerifier::from_public_pem(bus.assertion_public_pem.as_bytes()).unwrap();
    // The default heartbeat (5 s, a 15 s lease): a 500 ms one (2 s lease)
    // was seen to expire while everyone moved to the next node.
    let service = examples::orders::service(bus.registration_token("orders-svc"), bus_key)
        .build()
        .unwrap()
        .run(connect(&urls, "svc").await, bus.names.clone())
        .await
        .unwrap();
    router.wait_routing(1).await;
    let caller = Arc::new(
        Caller::connect(connect(&urls, "caller").await, bus.names.clone())
            .await
            .unwrap(),
    );
    assert_eq!(b.accepted(), 0, "everyone starts on the first node");

    let options = RequestOptions::with_token(bus.token("web")).timeout(Duration::from_secs(3));
    let (answered, retried) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (caller, options) = (Arc::clone(&caller), options.clone());
            let (answered, retried) = (Arc::clone(&answered), Arc::clone(&retried));
            tokio::spawn(async move {
                for n in (w..REQUESTS).step_by(WORKERS) {
                    let reply = call_until_answered(&caller, &options, n, &retried).await;
                    assert_eq!(reply["placed_by"], "web");
                    answered.fetch_add(1, Ordering::AcqRel);
                }
            })
        })
        .collect();
    wait_until(
        "a third of the requests answered",
        Duration::from_secs(120),
        async || answered.load(Ordering::Acquire) >= REQUESTS / 3,
    )
    .await;
    drop(a); // The first node dies under load.
    for worker in workers {
        worker.await.expect("every request of the worker answered");
    }
    println!(
        "sent {REQUESTS}, answered {}, calls retried {}",
        answered.load(Ordering::Acquire),
        retried.load(Ordering::Acquire)
    );
    assert_eq!(answered.load(Ordering::Acquire), REQUESTS, "0 lost");
    assert!(
        b.accepted() >= 3,
        "router, service and caller reconnected through node b ({} connections)",
        b.accepted()
    );
    assert!(
        router.is_running(),
        "the router survived the loss of its node"
    );

    service.shutdown().await.ok();
    router.kill();
    bus.stop().await;
    fx.cleanup().await;
}

/// Calls `orders.create` until a reply comes: a call racing the fault fails
/// as a transport error or a timeout, and the caller retries (counted).
async fn call_until_answered(
    caller: &Caller,
    options: &RequestOptions,
    n: usize,
    retried: &AtomicUsize,
) -> Value {
    let body =
        json!({"customer": {"id": format!("c-{n}")}, "items": [{"sku": "widget", "qty": 1}]});
    for _ in 0..40 {
        match caller
            .request::<_, Value>("orders.create", &body, options)
            .await
        {
            Ok(reply) => return reply,
            Err(CallError::Transport(TransportError::BadUrl(e))) => panic!("bad URL: {e}"),
            Err(CallError::Transport(_) | CallError::Timeout { .. }) => {
                retried.fetch_add(1, Ordering::AcqRel);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("request {n} failed for good: {e}"),
        }
    }
    panic!("request {n}: no reply after 40 attempts");
}
