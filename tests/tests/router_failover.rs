//! Two `tollgate serve` processes share one ingress queue; one is killed with
//! SIGKILL while 10,000 requests are in flight, and none is lost: every
//! message id reaches the service at least once.

use std::{collections::HashSet, sync::Arc, time::Duration};

use futures_util::{StreamExt, stream::FuturesUnordered};
use parking_lot::Mutex;
use serde_json::json;
use tollgate_bus::{SubscribeOptions, TransportError};
use tollgate_tests::support::{Fixture, RouterProcess, TestBus};

const REQUESTS: usize = 10_000;
const PROBES: usize = 50;

/// A free 127.0.0.1 port, as `host:port`.
fn free_local_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").to_string()
}

/// `GET /metrics` over a plain TCP connection.
fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("metrics endpoint");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

async fn wait_until(what: &str, secs: u64, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..secs * 10 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out after {secs} s waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_two_routers_loses_no_message() {
    let fx = Fixture::amqp().await;
    let bus = TestBus::prepare(&fx, "").await;
    let tr = Arc::clone(fx.transport());
    let (a, b) = (
        format!("{}-a", fx.ns.prefix()),
        format!("{}-b", fx.ns.prefix()),
    );
    let metrics_b = free_local_addr();
    let mut router_a = RouterProcess::spawn(&bus, &a, "");
    let mut router_b = RouterProcess::spawn(&bus, &b, &metrics_b);
    router_a.wait_started(&bus, tr.as_ref()).await;
    router_b.wait_started(&bus, tr.as_ref()).await;
    bus.announce(tr.as_ref(), "orders", "application/json", "2")
        .await;

    // The service records every message id it sees.
    let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut service = tr
        .subscribe(
            &bus.names.service_queue("orders"),
            SubscribeOptions::prefetch(500),
        )
        .await
        .unwrap();
    let recorder = {
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Some(d) = service.next().await {
                seen.lock().insert(d.envelope.id.clone());
                d.ack().await.ok();
            }
        })
    };

    // Probes until both routers route (each router took some of them).
    let token = bus.token("web");
    let mut probes = Vec::new();
    for _ in 0..PROBES {
        let probe = bus.request(&json!({"probe": true}), Some(&token), None);
        bus.send(tr.as_ref(), "orders.get", &probe).await;
        probes.push(probe.id);
    }
    wait_until("the probes to reach the service", 60, async || {
        let seen = seen.lock();
        probes.iter().all(|id| seen.contains(id))
    })
    .await;

    let requests: Vec<_> = (0..REQUESTS)
        .map(|i| bus.request(&json!({"n": i}), Some(&token), None))
        .collect();
    let ids: Vec<String> = requests.iter().map(|r| r.id.clone()).collect();
    let publisher = {
        let (tr, exchange) = (Arc::clone(&tr), bus.names.ingress_exchange().to_owned());
        tokio::spawn(async move {
            let to = tollgate_bus::Address::new(exchange, "orders.get");
            let mut in_flight = FuturesUnordered::new();
            for request in &requests {
                if in_flight.len() >= 256 {
                    let sent: Option<Result<(), TransportError>> = in_flight.next().await;
                    sent.unwrap().unwrap();
                }
                in_flight.push(tr.publish(&to, request));
            }
            while let Some(r) = in_flight.next().await {
                r.unwrap();
            }
        })
    };
    let first_id = ids[0].clone();
    wait_until("traffic to flow", 60, async || {
        seen.lock().len() >= PROBES + REQUESTS / 10 || seen.lock().contains(&first_id)
    })
    .await;
    router_a.kill(); // SIGKILL: no chance to settle anything.
    publisher.await.unwrap();

    wait_until("every request to reach the service", 180, async || {
        let seen = seen.lock();
        ids.iter().all(|id| seen.contains(id))
    })
    .await;
    assert_eq!(
        tr.inspect(bus.names.dead_queue()).await.unwrap().messages,
        0,
        "nothing was refused"
    );

    let metrics = scrape(&metrics_b);
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
    recorder.abort();
    bus.stop().await;
    fx.cleanup().await;
}
