//! Run by `scripts/cluster` against a three-node RabbitMQ cluster; ignored
//! otherwise (it needs the cluster and a fault to inject).
//!
//! Two `tollgate serve` routers on quorum queues, connected first to
//! different nodes, the example orders service on a third, and a caller
//! sending `TOLLGATE_CLUSTER_REQUESTS` requests (default 2,000) through the
//! bus, counting the replies by correlation id. Once a third of the replies
//! arrived it runs `TOLLGATE_CLUSTER_FAULT` (a shell command, e.g. stopping
//! the second node), and once the fault is done it sends another third, so
//! that traffic also flows after it (a node's `stop_app` can take longer
//! than the first batch); then it waits for every reply and prints one
//! table row: fault, sent, replied, lost, duplicates. Lost must be 0.
//!
//! `TOLLGATE_AMQP_URL` lists the nodes (comma-separated); the first router
//! gets them in that order, the second and the service rotated by one and
//! two, the caller in that order. Routers must log at `info`
//! (`TOLLGATE_TEST_ROUTER_LOG=info`): the run checks that the second router
//! reconnected, i.e. that the fault hit it, and delivered requests after it.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures_util::{StreamExt as _, stream::FuturesUnordered};
use parking_lot::Mutex;
use serde_json::json;
use tollgate_auth::AssertionVerifier;
use tollgate_bus::{AmqpConfig, AmqpTransport, Envelope, QueueKind, Transport, headers};
use tollgate_services::examples;
use tollgate_tests::support::{Fixture, RouterProcess, TestBus, amqp_url, poll_until};

/// Publishes awaiting their confirm at once.
const WINDOW: usize = 64;

/// Replies seen, by correlation id; error replies (refusals) apart.
#[derive(Default)]
struct Replies {
    seen: HashMap<String, u32>,
    errors: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a RabbitMQ cluster and a fault command: run scripts/cluster"]
async fn requests_through_a_cluster_losing_a_node_are_all_answered() {
    let requests: usize = env_or("TOLLGATE_CLUSTER_REQUESTS", "2000")
        .parse()
        .expect("TOLLGATE_CLUSTER_REQUESTS is a number");
    let fault = std::env::var("TOLLGATE_CLUSTER_FAULT").expect("TOLLGATE_CLUSTER_FAULT");
    let fault_name = env_or("TOLLGATE_CLUSTER_FAULT_NAME", "fault");
    let nodes: Vec<String> = amqp_url().split(',').map(str::to_owned).collect();
    let rotated = |by: usize| -> String {
        let mut list = nodes.clone();
        list.rotate_left(by % nodes.len());
        list.join(",")
    };

    let fx = Fixture::amqp().await;
    let bus = TestBus::prepare_on(&fx, QueueKind::Quorum).await;
    let tr = Arc::clone(fx.transport());
    let mut r1 = RouterProcess::spawn_via(&bus, &format!("{}-r1", fx.ns.prefix()), &rotated(0));
    let mut r2 = RouterProcess::spawn_via(&bus, &format!("{}-r2", fx.ns.prefix()), &rotated(1));
    r1.wait_started(&bus, tr.as_ref()).await;
    r2.wait_started(&bus, tr.as_ref()).await;
    let bus_key = AssertionVerifier::from_public_pem(bus.assertion_public_pem.as_bytes()).unwrap();
    let service_transport = AmqpConfig::new(rotated(2))
        .with_connection_name("cluster-orders")
        .with_reconnect_timeout(Duration::from_secs(60));
    let service_transport: Arc<dyn Transport> = Arc::new(
        AmqpTransport::connect(service_transport)
            .await
            .expect("service connects"),
    );
    let service = examples::orders::service(bus.registration_token("orders-svc"), bus_key)
        .build()
        .unwrap()
        .run(service_transport, bus.names.clone())
        .await
        .unwrap();
    r1.wait_routing(1).await;
    r2.wait_routing(1).await;

    let (key, mut inbox) = bus.caller_queue(tr.as_ref()).await;
    let replies: Arc<Mutex<Replies>> = Arc::default();
    let counter = {
        let replies = Arc::clone(&replies);
        tokio::spawn(async move {
            while let Some(delivery) = inbox.next().await {
                let refused = delivery.envelope.headers.contains(headers::ERROR);
                let id = delivery.envelope.correlation_id.clone().unwrap_or_default();
                {
                    let mut r = replies.lock();
                    r.errors += usize::from(refused);
                    *r.seen.entry(id).or_default() += 1;
                }
                delivery.ack().await.ok();
            }
        })
    };

    let token = bus.token("web");
    let template = bus.request(
        &json!({"customer": {"id": "c-1"}, "items": [{"sku": "widget", "qty": 1}]}),
        Some(&token),
        Some(&key),
    );
    let sender = tokio::spawn(send(
        Arc::clone(&tr),
        bus.names.clone(),
        template.clone(),
        requests,
    ));
    let third = requests / 3;
    let flowing = poll_until(Duration::from_secs(300), async || {
        replies.lock().seen.len() >= third
    })
    .await;
    assert!(flowing, "a third of the replies did not arrive");
    let before = replies.lock().seen.len();
    println!("Injecting fault `{fault_name}` after {before} replies: {fault}");
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .args(["-c", &fault])
            .status()
    })
    .await
    .unwrap()
    .expect("run the fault command");
    assert!(status.success(), "the fault command failed: {status}");
    println!("Fault done after {} replies.", replies.lock().seen.len());
    let r2_before = r2.delivered();
    let mut sent = sender.await.expect("sender");
    sent.extend(send(Arc::clone(&tr), bus.names.clone(), template, third).await);

    let all = poll_until(Duration::from_secs(300), async || {
        let r = replies.lock();
        sent.iter().all(|id| r.seen.contains_key(id))
    })
    .await;
    let (replied, lost, duplicates, errors) = {
        let r = replies.lock();
        let replied = sent.iter().filter(|id| r.seen.contains_key(*id)).count();
        let duplicates: u32 = r.seen.values().map(|n| n - 1).sum();
        (replied, sent.len() - replied, duplicates, r.errors)
    };
    println!("| fault | sent | replied | lost | duplicates |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| {fault_name} | {} | {replied} | {lost} | {duplicates} |",
        sent.len()
    );
    let reconnects = |router: &RouterProcess| {
        std::fs::read_to_string(router.log_path())
            .unwrap_or_default()
            .matches("Reconnected to the broker.")
            .count()
    };
    // Logged a moment after the node closed the connection: wait for it.
    poll_until(Duration::from_secs(30), async || reconnects(&r2) >= 1).await;
    let (moved_r1, moved_r2) = (reconnects(&r1), reconnects(&r2));
    println!(
        "routers delivered: r1 {}, r2 {}; reconnections: r1 {moved_r1}, r2 {moved_r2}; error replies {errors}",
        r1.delivered(),
        r2.delivered(),
    );
    assert!(
        all && lost == 0,
        "{lost} of {} requests got no reply",
        sent.len()
    );
    assert_eq!(errors, 0, "no request was refused");
    assert_eq!(sent.len(), requests + third, "every request was confirmed");
    assert!(
        moved_r2 >= 1,
        "router r2 (first on the faulty node) moved to another node; run with \
         TOLLGATE_TEST_ROUTER_LOG=info (scripts/cluster does) to see it"
    );
    assert!(
        r2.delivered() > r2_before,
        "router r2 delivered requests after its node was lost ({r2_before} before)"
    );

    counter.abort();
    service.shutdown().await.ok();
    r1.kill();
    r2.kill();
    bus.stop().await;
    fx.cleanup().await;
}

/// Publishes `count` copies of `template` (fresh id and correlation id each)
/// to `orders.create`, up to [`WINDOW`] awaiting their confirm, retrying a
/// failed publish; returns the correlation ids of the confirmed ones.
async fn send(
    transport: Arc<dyn Transport>,
    names: tollgate_bus::BusNames,
    template: Envelope,
    count: usize,
) -> Vec<String> {
    let to = tollgate_bus::Address::new(names.ingress_exchange(), "orders.create");
    let mut in_flight = FuturesUnordered::new();
    let mut confirmed = Vec::with_capacity(count);
    for _ in 0..count {
        if in_flight.len() >= WINDOW
            && let Some(id) = in_flight.next().await
        {
            confirmed.extend(id);
        }
        let mut request = template.clone();
        request.id = uuid::Uuid::new_v4().to_string();
        request.correlation_id = Some(uuid::Uuid::new_v4().to_string());
        let (transport, to) = (Arc::clone(&transport), to.clone());
        in_flight.push(async move {
            for _ in 0..50 {
                match transport.publish(&to, &request).await {
                    Ok(()) => return request.correlation_id,
                    Err(e) => {
                        eprintln!("publish failed ({e}); retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            None
        });
    }
    while let Some(id) = in_flight.next().await {
        confirmed.extend(id);
    }
    confirmed
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}
