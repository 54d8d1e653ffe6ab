//! Two `tollgate serve` processes share one ingress queue; one is killed with
//! SIGKILL while 10,000 requests are in flight, and none is lost: every
//! message id reaches the service at least once.

use std::{
    collections::HashSet,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use futures_util::{StreamExt, stream::FuturesUnordered};
use parking_lot::Mutex;
use serde_json::json;
use tollgate_bus::{SubscribeOptions, TransportError};
use tollgate_tests::support::{Fixture, TestBus, amqp_url, tollgate_binary};

const REQUESTS: usize = 10_000;
const PROBES: usize = 50;

/// A router process, killed if the test ends early.
struct RouterProcess(Child);

impl RouterProcess {
    /// SIGTERM, then the exit status (the router finishes in-flight messages first).
    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        for _ in 0..200 {
            if let Some(status) = self.0.try_wait().expect("router status") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the router did not stop within 10 s of SIGTERM");
    }

    fn kill(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_router(bus: &TestBus, instance: &str, metrics_addr: &str) -> RouterProcess {
    let child = Command::new(tollgate_binary())
        .args(["serve", "--config"])
        .arg(bus.config_path())
        .env("TOLLGATE_INSTANCE", instance)
        .env("TOLLGATE_METRICS_ADDR", metrics_addr)
        .env("TOLLGATE_AMQP_URL", amqp_url())
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tollgate serve");
    RouterProcess(child)
}

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
    let mut router_a = spawn_router(&bus, &a, "");
    let mut router_b = spawn_router(&bus, &b, &metrics_b);
    for instance in [&a, &b] {
        let queue = bus.names.router_control_queue(instance);
        // The queue is exclusive to the router's connection: "locked" means it exists.
        wait_until("both routers to start", 60, async || {
            matches!(
                tr.inspect(&queue).await,
                Ok(_) | Err(TransportError::PreconditionFailed(_))
            )
        })
        .await;
    }
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
        let (tr, exchange) = (Arc::clone(&tr), bus.names.ingress_exchange());
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
        tr.inspect(&bus.names.dead_queue()).await.unwrap().messages,
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
