//! A caller that is a plain AMQP client using RabbitMQ's direct reply-to
//! (`amq.rabbitmq.reply-to`, no reply queue at all) gets its reply through
//! the router, as the README's wire contract says.

use std::time::Duration;

use futures_util::StreamExt;
use lapin::{
    BasicProperties, Connection, ConnectionProperties,
    options::{BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions},
    types::{AMQPValue, FieldTable, LongString},
};
use tollgate_tests::support::{Fixture, TestBus, amqp_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_amqp_client_with_direct_reply_to_gets_its_reply() {
    let fx = Fixture::amqp().await;
    let bus = TestBus::start(&fx).await;
    let orders = bus.run_orders(fx.connect().await, |b| b).await;

    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let no_ack = BasicConsumeOptions {
        no_ack: true,
        ..BasicConsumeOptions::default()
    };
    let mut replies = channel
        .basic_consume(
            "amq.rabbitmq.reply-to".into(),
            "".into(),
            no_ack,
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut headers = FieldTable::default();
    let credential = format!("Bearer {}", bus.token("web"));
    headers.insert(
        "authorization".into(),
        AMQPValue::LongString(LongString::from(credential.into_bytes())),
    );
    let properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_correlation_id("plain-1".into())
        .with_reply_to("amq.rabbitmq.reply-to".into())
        .with_message_id("plain-msg-1".into())
        .with_headers(headers);
    let body = br#"{"customer":{"id":"c-5"},"items":[{"sku":"gadget","qty":1}]}"#;
    channel
        .basic_publish(
            bus.names.ingress_exchange().into(),
            "orders.create".into(),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await
        .unwrap()
        .await
        .unwrap();

    let reply = tokio::time::timeout(Duration::from_secs(15), replies.next())
        .await
        .expect("a reply within 15 s")
        .expect("the consumer is open")
        .unwrap();
    assert_eq!(
        reply
            .properties
            .correlation_id()
            .as_ref()
            .map(|c| c.as_str()),
        Some("plain-1")
    );
    let json: serde_json::Value = serde_json::from_slice(&reply.data).unwrap();
    assert_eq!(json["placed_by"], "web", "{json}");
    assert_eq!(json["total_cents"], 1299);

    connection.close(200, "done".into()).await.unwrap();
    orders.shutdown().await.unwrap();
    bus.stop().await;
    fx.cleanup().await;
}
