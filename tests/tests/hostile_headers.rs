//! Hostile message properties do not take the router down.
//!
//! A header table nested as deep as one RabbitMQ frame allows (25,000
//! levels): the AMQP client measures the nesting before it parses anything
//! (the parser recurses once per level), so the router refuses the message
//! unread (`unreadable`), dead-letters a copy without the hostile headers,
//! and keeps serving — also when started with `RUST_MIN_STACK` set small.
//!
//! A message id that is not UTF-8 (AMQP short strings must be, RabbitMQ
//! does not check): an AMQP client that cannot parse it (lapin, amqprs)
//! drops the whole connection, the message is redelivered to the next router
//! and drops its connection too, for ever. Tollgate's client delivers it as
//! unreadable; the router refuses it (`unreadable`), keeps a copy in the
//! dead-letter queue, and its connection is never touched.

use std::process::Command;

use serde_json::json;
use tollgate_bus::{SubscribeOptions, Subscription, headers};
use tollgate_tests::{
    conformance::transport::recv,
    support::{Fixture, RouterProcess, TestBus, amqp_url, clients::Language},
};

const DEPTH: usize = 25_000;

/// A `tollgate serve` router (with `env`) serving `orders`, and the test's
/// subscriptions to the dead-letter queue and to the orders queue.
struct Served {
    fx: Fixture,
    bus: TestBus,
    router: RouterProcess,
    dead: Subscription,
    service: Subscription,
}

impl Served {
    async fn start(env: &[(&str, &str)]) -> Self {
        let fx = Fixture::amqp().await;
        let bus = TestBus::prepare(&fx, "").await;
        let tr = fx.transport().clone();
        let mut router = RouterProcess::spawn_with_env(&bus, &format!("{}-r", fx.ns.prefix()), env);
        router.wait_started(&bus, tr.as_ref()).await;
        bus.announce(tr.as_ref(), "orders", "application/json", "2")
            .await;
        let dead = tr
            .subscribe(bus.names.dead_queue(), SubscribeOptions::default())
            .await
            .expect("subscribe to the dead-letter queue");
        let service = tr
            .subscribe(
                &bus.names.service_queue("orders"),
                SubscribeOptions::default(),
            )
            .await
            .expect("subscribe to the orders queue");
        Self {
            fx,
            bus,
            router,
            dead,
            service,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_headers_do_not_take_the_router_down() {
    let Served {
        fx,
        bus,
        mut router,
        mut dead,
        mut service,
    } = Served::start(&[("RUST_MIN_STACK", "2097152")]).await;
    let tr = fx.transport().clone();

    let exchange = bus.names.ingress_exchange().to_owned();
    let helper = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_publish_hostile"))
            // std's own 2 MiB: set, but too small to serialise the table;
            // the helper must re-execute itself with a deep stack anyway.
            .env("RUST_MIN_STACK", "2097152")
            .args([
                exchange.as_str(),
                "orders.get",
                "hostile-1",
                &DEPTH.to_string(),
            ])
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        helper.success(),
        "the helper could not publish the hostile message"
    );

    let copy = recv(&mut dead, "the dead-letter copy of the hostile message").await;
    assert_eq!(
        copy.envelope.headers.get_str(headers::CODE),
        Some("unreadable")
    );
    let reason = copy.envelope.headers.get_str(headers::REASON).unwrap();
    assert!(reason.contains("nest deeper"), "{reason}");
    assert!(copy.envelope.headers.get("deep").is_none());
    copy.ack().await.unwrap();

    // Still serving.
    let request = bus.request(&json!({"after": "hostile"}), Some(&bus.token("web")), None);
    bus.send(tr.as_ref(), "orders.get", &request).await;
    let delivered = recv(&mut service, "a request after the hostile one").await;
    assert_eq!(delivered.envelope.id, request.id);
    delivered.ack().await.unwrap();
    assert!(router.is_running(), "the router process died");

    router.kill();
    bus.stop().await;
    fx.cleanup().await;
}

/// Publishes a message whose message id is not UTF-8 (pika sends bytes as
/// they are), confirmed by the broker.
const PUBLISH_UNREADABLE: &str = r#"
import sys, pika
url, exchange, key = sys.argv[1:4]
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
channel.confirm_delivery()
properties = pika.BasicProperties(message_id=b"\xff\xfe-unreadable", content_type="application/json")
channel.basic_publish(exchange, key, b'{"hostile": true}', properties, mandatory=True)
connection.close()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_properties_cannot_be_read_is_refused_and_the_router_keeps_its_connection()
{
    let Served {
        fx,
        bus,
        mut router,
        mut dead,
        mut service,
    } = Served::start(&[]).await;
    let tr = fx.transport().clone();

    let exchange = bus.names.ingress_exchange().to_owned();
    let published = tokio::task::spawn_blocking(move || {
        Language::Python
            .interpreter()
            .args([
                "-c",
                PUBLISH_UNREADABLE,
                &amqp_url(),
                &exchange,
                "orders.get",
            ])
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(published.success(), "the hostile message was not published");

    let copy = recv(&mut dead, "the dead-letter copy of the unreadable message").await;
    assert_eq!(
        copy.envelope.headers.get_str(headers::CODE),
        Some("unreadable")
    );
    assert_eq!(&copy.envelope.payload[..], br#"{"hostile": true}"#);
    copy.ack().await.unwrap();

    let request = bus.request(
        &json!({"after": "unreadable"}),
        Some(&bus.token("web")),
        None,
    );
    bus.send(tr.as_ref(), "orders.get", &request).await;
    let delivered = recv(&mut service, "a request after the unreadable one").await;
    assert_eq!(delivered.envelope.id, request.id);
    delivered.ack().await.unwrap();
    assert!(router.is_running(), "the router process died");
    // Warnings go to the log: a consumer that lost its channel says so.
    let log = std::fs::read_to_string(router.log_path()).unwrap_or_default();
    assert!(
        !log.contains("lost its channel"),
        "the router lost its connection over the message:\n{log}"
    );

    router.kill();
    bus.stop().await;
    fx.cleanup().await;
}
