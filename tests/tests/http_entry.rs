//! The HTTP entry of `tollgate serve` (`[http] listen`), with a real HTTP
//! client against a router process on RabbitMQ: the same gate as AMQP, each
//! refusal's status, `x-request-id`, `Prefer: respond-async`, a slow service
//! (504), a slow client (408), and a graceful stop that answers the requests
//! in flight. The README's curl examples show these answers.

use std::{collections::HashMap, sync::Arc, time::Duration};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::mpsc,
};
use tollgate_bus::{SubscribeOptions, headers};
use tollgate_services::{HandlerError, Request, RunningService, Service, examples};
use tollgate_tests::{
    conformance::transport::recv,
    support::{
        Fixture, RouterProcess, TestBus, free_local_addr,
        http_client::{HttpAnswer, post, send},
        now, wait_until,
    },
};

/// A bus with a router process serving HTTP on `http`.
struct HttpBus {
    fx: Fixture,
    bus: TestBus,
    router: RouterProcess,
    http: String,
}

impl HttpBus {
    async fn start(extra_toml: &str) -> Self {
        let fx = Fixture::amqp().await;
        let bus = TestBus::prepare(&fx, extra_toml).await;
        let http = free_local_addr();
        let instance = format!("{}-r", fx.ns.prefix());
        let env = [("TOLLGATE_HTTP_LISTEN", http.as_str())];
        let mut router = RouterProcess::spawn_with_env(&bus, &instance, &env);
        router.wait_started(&bus, fx.transport().as_ref()).await;
        wait_until(
            "the HTTP entry to listen",
            Duration::from_secs(30),
            async || tokio::net::TcpStream::connect(&http).await.is_ok(),
        )
        .await;
        Self {
            fx,
            bus,
            router,
            http,
        }
    }

    fn bearer(&self, consumer: &str) -> String {
        format!("Bearer {}", self.bus.token(consumer))
    }

    async fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> HttpAnswer {
        post(&self.http, path, headers, body).await
    }

    /// Counts of `tollgate_messages_total` series labelled `entry="http"`
    /// with `outcome`, on the router's `/metrics`.
    fn http_messages(&self, outcome: &str) -> f64 {
        self.router
            .metrics()
            .lines()
            .filter(|l| l.starts_with("tollgate_messages_total{"))
            .filter(|l| {
                l.contains("entry=\"http\"") && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    async fn stop(self) {
        let Self {
            fx,
            bus,
            mut router,
            ..
        } = self;
        if router.is_running() {
            router.terminate();
        }
        bus.stop().await;
        fx.cleanup().await;
    }
}

fn order() -> &'static str {
    r#"{"customer":{"id":"c-7"},"items":[{"sku":"gadget","qty":2}]}"#
}

/// Runs the example `orders` (JSON) and `inventory` (MessagePack) services.
async fn run_examples(h: &HttpBus) -> Vec<RunningService> {
    let orders = examples::orders::service(h.bus.registration_token("orders-svc"), h.bus.bus_key());
    let inventory =
        examples::inventory::service(h.bus.registration_token("inventory-svc"), h.bus.bus_key());
    let mut running = Vec::new();
    for service in [orders, inventory] {
        let service = service.build().expect("a valid example service");
        running.push(
            service
                .run(h.fx.connect().await, h.bus.names.clone())
                .await
                .expect("the example service runs"),
        );
    }
    h.router.wait_routing(2).await;
    running
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requests_pass_the_same_gate_as_amqp_requests() {
    let h = HttpBus::start("[limits]\nmax_message_bytes = 4096\n").await;
    let services = run_examples(&h).await;
    let web = h.bearer("web");

    // A reply, in the caller's content type, under the caller's request id.
    let reply = h
        .post(
            "/orders/create",
            &[("authorization", &web), ("x-request-id", "req-1")],
            order(),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-request-id"), Some("req-1"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    // README "The HTTP entry" shows this answer.
    assert_eq!(
        reply.json(),
        json!({"order_id": "ord-000001", "total_cents": 2598, "placed_by": "web"})
    );
    // A reply of the MessagePack service, translated into the caller's JSON.
    let reserve = r#"{"sku":"widget","qty":2}"#;
    let translated = h
        .post("/inventory/reserve", &[("authorization", &web)], reserve)
        .await;
    assert_eq!(translated.status, 200, "{translated:?}");
    assert_eq!(translated.header("content-type"), Some("application/json"));
    assert_eq!(
        translated.json(),
        json!({"sku": "widget", "reserved": 2, "remaining": 98})
    );
    assert!(
        translated
            .header("x-request-id")
            .is_some_and(|id| !id.is_empty())
    );

    // Each refusal: its status, the AMQP error body, a dead-letter copy.
    let expired = format!(
        "Bearer {}",
        h.bus.token_with("web", -300, json!({"iat": now() - 600}))
    );
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(5000));
    let cases: [(&str, &str, Option<&str>, &str, u16); 7] = [
        ("token_missing", "/orders/create", None, order(), 401),
        (
            "token_expired",
            "/orders/create",
            Some(&expired),
            order(),
            401,
        ),
        (
            "invalid_token",
            "/orders/create",
            Some("Bearer not.a.token"),
            order(),
            401,
        ),
        (
            "forbidden",
            "/calc/add",
            Some(&web),
            r#"{"a":1,"b":2}"#,
            403,
        ),
        ("no_route", "/ghost/find", Some(&web), "{}", 404),
        ("too_large", "/orders/create", Some(&web), &big, 413),
        (
            "bad_payload",
            "/inventory/reserve",
            Some(&web),
            "{not json",
            400,
        ),
    ];
    for (code, path, auth, body, status) in cases {
        let id = format!("case-{code}");
        let mut headers = vec![("x-request-id", id.as_str())];
        headers.extend(auth.map(|a| ("authorization", a)));
        let answer = h.post(path, &headers, body).await;
        assert_eq!(answer.status, status, "{code}: {answer:?}");
        assert_eq!(answer.code().as_deref(), Some(code), "{code}: {answer:?}");
        assert_eq!(answer.header("x-request-id"), Some(id.as_str()), "{code}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
    }
    // RFC 6750 challenges: none names an error when no credential was sent.
    let path = "/orders/create";
    let missing = h.post(path, &[], order()).await;
    assert_eq!(
        missing.header("www-authenticate"),
        Some("Bearer realm=\"tollgate\"")
    );
    let forbidden = h.post("/calc/add", &[("authorization", &web)], "{}").await;
    assert_eq!(
        forbidden.header("www-authenticate"),
        Some("Bearer realm=\"tollgate\", error=\"insufficient_scope\"")
    );
    // README "The HTTP entry" shows these bodies.
    let body = String::from_utf8_lossy(&missing.body);
    let shown =
        r#"{"error":{"code":"token_missing","stage":"authenticate","message":"no credential"}}"#;
    assert_eq!(body.trim_end(), shown);
    let shown = json!({"error": {"code": "forbidden", "stage": "authorize",
                                 "message": "`web` may not call `calc.add`"}});
    assert_eq!(forbidden.json(), shown);
    let expired_again = h.post(path, &[("authorization", &expired)], order()).await;
    assert_eq!(
        expired_again.header("www-authenticate"),
        Some("Bearer realm=\"tollgate\", error=\"invalid_token\"")
    );
    // The service's own error code: 422, its body as the service wrote it.
    let lots = r#"{"sku":"widget","qty":1000000}"#;
    let refused = h
        .post("/inventory/reserve", &[("authorization", &web)], lots)
        .await;
    assert_eq!(refused.status, 422, "{refused:?}");
    assert_eq!(refused.code().as_deref(), Some("out_of_stock"));
    assert_eq!(refused.json()["error"]["stage"], "service");
    // A streamed body past the limit is refused without being read whole.
    let mut stream = tokio::net::TcpStream::connect(&h.http).await.unwrap();
    let chunk = "x".repeat(5000);
    let raw = format!(
        "POST /orders/create HTTP/1.1\r\nhost: x\r\nx-request-id: case-streamed\r\n\
         authorization: {web}\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n",
        chunk.len()
    );
    stream.write_all(raw.as_bytes()).await.unwrap();
    let streamed = read_to_close(&mut stream).await;
    assert!(streamed.starts_with("HTTP/1.1 413"), "{streamed}");
    assert!(streamed.contains("\"code\":\"too_large\""), "{streamed}");
    // A malformed request id.
    let bad_id = h
        .post(
            "/orders/create",
            &[("authorization", &web), ("x-request-id", "a b")],
            order(),
        )
        .await;
    assert_eq!(
        (bad_id.status, bad_id.code().as_deref()),
        (400, Some("bad_request"))
    );
    // Only POST.
    let get = send(&h.http, "GET", "/orders/create", &[], "")
        .await
        .unwrap();
    assert_eq!((get.status, get.header("allow")), (405, Some("POST")));
    assert_eq!(get.code().as_deref(), Some("method_not_allowed"));

    // Fire and forget: 202 once delivered (the router counted the delivery).
    let delivered_before = h.http_messages("delivered");
    let async_headers = [("authorization", web.as_str()), ("prefer", "respond-async")];
    let accepted = h.post("/orders/create", &async_headers, order()).await;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    assert!(accepted.body.is_empty());
    assert_eq!(accepted.header("preference-applied"), Some("respond-async"));
    assert_eq!(h.http_messages("delivered"), delivered_before + 1.0);
    // The same audit counts and lines as AMQP, labelled by entry.
    assert!(h.http_messages("rejected") >= cases.len() as f64);
    let log = std::fs::read_to_string(h.router.log_path()).unwrap();
    let audit = log
        .lines()
        .find(|l| l.contains("Message refused.") && l.contains("case-forbidden"))
        .unwrap_or_else(|| panic!("no audit line for the forbidden request: {log}"));
    assert!(audit.contains("entry=\"http\""), "{audit}");

    for service in services {
        service.shutdown().await.unwrap();
    }
    let tr = h.fx.transport();
    let mut expected: HashMap<String, &str> = cases
        .iter()
        .map(|(code, ..)| (format!("case-{code}"), *code))
        .collect();
    expected.insert("case-streamed".to_owned(), "too_large");
    let mut dead = tr
        .subscribe(h.bus.names.dead_queue(), SubscribeOptions::prefetch(50))
        .await
        .unwrap();
    let mut found = 0;
    while found < expected.len() {
        let copy = recv(&mut dead, "the dead-letter copies of the HTTP refusals").await;
        if let Some(code) = expected.get(&copy.envelope.id) {
            assert_eq!(copy.envelope.headers.get_str(headers::CODE), Some(*code));
            assert!(
                copy.envelope
                    .headers
                    .iter()
                    .all(|(n, _)| !n.eq_ignore_ascii_case("authorization")),
                "a dead letter keeps no credential"
            );
            found += 1;
        }
        copy.ack().await.unwrap();
    }
    drop(dead);
    h.stop().await;
}

/// A `calc` service whose `slow` method tells `started` and answers after `delay`.
async fn slow_service(
    h: &HttpBus,
    delay: Duration,
) -> (RunningService, mpsc::UnboundedReceiver<()>) {
    let (started, rx) = mpsc::unbounded_channel();
    let service = Service::builder("calc")
        .content_type("application/json")
        .credential(h.bus.registration_token("calc-svc"))
        .bus_key(h.bus.bus_key())
        .handler("slow", move |_req: Request<Value>| {
            let started = started.clone();
            async move {
                let _ = started.send(());
                tokio::time::sleep(delay).await;
                Ok::<_, HandlerError>(json!({"done": true}))
            }
        })
        .build()
        .expect("a valid service")
        .run(h.fx.connect().await, h.bus.names.clone())
        .await
        .expect("the slow service runs");
    h.router.wait_routing(1).await;
    (service, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_service_gets_504_and_a_slow_client_408() {
    let h = HttpBus::start("[http]\nreply_timeout_secs = 1\nclient_timeout_secs = 1\n").await;
    let (service, _started) = slow_service(&h, Duration::from_secs(3)).await;
    let alice = h.bearer("alice");

    let late = h
        .post("/calc/slow", &[("authorization", &alice)], "{}")
        .await;
    assert_eq!(late.status, 504, "{late:?}");
    assert_eq!(late.code().as_deref(), Some("timeout"));

    // A body that never arrives whole: 408, and the connection is closed.
    let mut stream = tokio::net::TcpStream::connect(&h.http).await.unwrap();
    let head = format!(
        "POST /calc/slow HTTP/1.1\r\nhost: x\r\nauthorization: {alice}\r\ncontent-length: 100\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    // Headers that never end: the connection is closed.
    let mut stream = tokio::net::TcpStream::connect(&h.http).await.unwrap();
    stream
        .write_all(b"POST /calc/slow HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(!answer.starts_with("HTTP/1.1 2"), "{answer}");

    service.shutdown().await.unwrap();
    h.stop().await;
}

/// Reads until the server closes the connection (at most 20 s, then panics).
async fn read_to_close(stream: &mut tokio::net::TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes a slow client's connection")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_router_answers_the_http_requests_in_flight() {
    let mut h = HttpBus::start("").await;
    let (service, mut started) = slow_service(&h, Duration::from_millis(1500)).await;
    let alice = Arc::new(h.bearer("alice"));

    let (addr, token) = (h.http.clone(), Arc::clone(&alice));
    let in_flight = tokio::spawn(async move {
        post(
            &addr,
            "/calc/slow",
            &[("authorization", token.as_str())],
            "{}",
        )
        .await
    });
    started.recv().await.expect("the service got the request");
    // SIGTERM while the service works on the request.
    let status = tokio::task::block_in_place(|| h.router.terminate_within(Duration::from_secs(30)));
    let answer = in_flight.await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json(), json!({"done": true}));
    assert!(status.success(), "{status:?}");

    service.shutdown().await.unwrap();
    h.stop().await;
}
