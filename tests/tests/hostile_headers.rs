//! A header table nested as deep as one RabbitMQ frame allows (25,000
//! levels) does not take the router down: `tollgate serve` runs with deep
//! stacks, refuses the message as `too_large`, dead-letters a copy without
//! the hostile headers, and keeps serving.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use lapin::{
    BasicProperties, Connection, ConnectionProperties,
    options::BasicPublishOptions,
    types::{AMQPValue, FieldArray, FieldTable},
};
use serde_json::json;
use tollgate_bus::{SubscribeOptions, TransportError, headers, stack::DEEP_STACK_BYTES};
use tollgate_tests::{
    conformance::transport::recv,
    support::{Fixture, TestBus, amqp_url, tollgate_binary},
};

const DEPTH: usize = 25_000;

/// Run in a child process with a deep `RUST_MIN_STACK` (lapin serialises the
/// table recursively on its own thread): publishes the hostile message.
#[test]
#[ignore = "helper process of hostile_headers_do_not_take_the_router_down"]
fn publish_hostile_message() {
    let (Ok(exchange), Ok(route)) = (
        std::env::var("HOSTILE_EXCHANGE"),
        std::env::var("HOSTILE_ROUTE"),
    ) else {
        panic!("run by hostile_headers_do_not_take_the_router_down");
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        let mut deep = AMQPValue::Void;
        for _ in 0..DEPTH {
            deep = AMQPValue::FieldArray(FieldArray::from(vec![deep]));
        }
        let mut table = FieldTable::default();
        table.insert("deep".into(), deep);
        let properties = BasicProperties::default()
            .with_message_id("hostile-1".into())
            .with_headers(table);
        let options = BasicPublishOptions::default();
        let confirm = channel
            .basic_publish(exchange.into(), route.into(), options, b"{}", properties)
            .await
            .unwrap();
        confirm.await.unwrap();
        connection.close(200, "done".into()).await.unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_headers_do_not_take_the_router_down() {
    let fx = Fixture::amqp().await;
    let bus = TestBus::prepare(&fx, "").await;
    let tr = fx.transport().clone();
    let instance = format!("{}-r", fx.ns.prefix());
    let mut router = Command::new(tollgate_binary())
        .args(["serve", "--config"])
        .arg(bus.config_path())
        .env("TOLLGATE_INSTANCE", &instance)
        .env("TOLLGATE_AMQP_URL", amqp_url())
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .expect("start tollgate serve");
    let control = bus.names.router_control_queue(&instance);
    for _ in 0..300 {
        if matches!(
            tr.inspect(&control).await,
            Ok(_) | Err(TransportError::PreconditionFailed(_))
        ) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bus.announce(tr.as_ref(), "orders", "application/json", "2")
        .await;
    let mut dead = tr
        .subscribe(&bus.names.dead_queue(), SubscribeOptions::default())
        .await
        .unwrap();
    let mut service = tr
        .subscribe(
            &bus.names.service_queue("orders"),
            SubscribeOptions::default(),
        )
        .await
        .unwrap();

    let exchange = bus.names.ingress_exchange();
    let helper = tokio::task::spawn_blocking(move || {
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "publish_hostile_message",
                "--nocapture",
            ])
            .env("RUST_MIN_STACK", DEEP_STACK_BYTES.to_string())
            .env("HOSTILE_EXCHANGE", exchange)
            .env("HOSTILE_ROUTE", "orders.get")
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
    assert_eq!(copy.envelope.id, "hostile-1");
    assert_eq!(
        copy.envelope.headers.get_str(headers::CODE),
        Some("too_large")
    );
    assert!(
        copy.envelope
            .headers
            .get_str(headers::HEADERS_DROPPED)
            .is_some()
    );
    assert!(copy.envelope.headers.get("deep").is_none());
    copy.ack().await.unwrap();

    // Still serving.
    let request = bus.request(&json!({"after": "hostile"}), Some(&bus.token("web")), None);
    bus.send(tr.as_ref(), "orders.get", &request).await;
    let delivered = recv(&mut service, "a request after the hostile one").await;
    assert_eq!(delivered.envelope.id, request.id);
    delivered.ack().await.unwrap();
    assert!(
        router.try_wait().unwrap().is_none(),
        "the router process died"
    );

    router.kill().ok();
    router.wait().ok();
    bus.stop().await;
    fx.cleanup().await;
}
