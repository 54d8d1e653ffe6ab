//! The client against the local RabbitMQ (`TOLLGATE_AMQP_URL`, default
//! guest on 127.0.0.1:5672). Every test uses queues of its own name and
//! deletes them.

#![allow(clippy::unwrap_used)] // test helpers panic with the error, as the tests do

use std::{str::FromStr, time::Duration};

use tollgate_wire::{
    AMQPUri, AMQPValue, BasicProperties, Channel, Connection, Consumer, Delivery, FieldTable,
    LongString, QueueOptions, WireError,
};

const WAIT: Duration = Duration::from_secs(15);

fn url() -> String {
    std::env::var("TOLLGATE_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

async fn connect() -> Connection {
    let uri = AMQPUri::from_str(&url()).unwrap();
    Connection::open(&uri, "tollgate-wire-test").await.unwrap()
}

fn unique(what: &str) -> String {
    format!("tgt-wire-{what}-{}", uuid::Uuid::new_v4().simple())
}

async fn queue(channel: &Channel, what: &str) -> String {
    let name = unique(what);
    channel
        .queue_declare(&name, QueueOptions::default(), FieldTable::default())
        .await
        .unwrap();
    name
}

async fn next(consumer: &mut Consumer) -> Delivery {
    tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("a delivery in time")
        .expect("the consumer is open")
}

fn with_id(id: &str) -> BasicProperties {
    BasicProperties::default().with_message_id(id.into())
}

#[tokio::test]
async fn a_confirmed_publish_is_delivered_and_acked() {
    let conn = connect().await;
    let ch = conn.channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let q = queue(&ch, "roundtrip").await;
    let body = vec![7u8; 300_000]; // more than one frame
    let confirmation = ch
        .publish("", &q, true, with_id("m-1"), &body)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert!(confirmation.acked && confirmation.returned.is_none());

    let consumer_channel = conn.channel().await.unwrap();
    consumer_channel.qos(10).await.unwrap();
    let mut consumer = consumer_channel
        .consume(&q, "c-1", FieldTable::default())
        .await
        .unwrap();
    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.body, body);
    assert_eq!(
        delivery
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str()),
        Some("m-1")
    );
    assert!(!delivery.redelivered);
    delivery.acker.ack().unwrap();
    consumer_channel.close().await.unwrap();
    let state = ch
        .queue_declare(
            &q,
            QueueOptions {
                passive: true,
                ..QueueOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!((state.messages, state.consumers), (0, 0));
    ch.queue_delete(&q).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_return_reaches_only_its_own_publish() {
    let conn = connect().await;
    let ch = conn.channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let q = queue(&ch, "returns").await;
    let mut confirms = Vec::new();
    for i in 0..50 {
        let key = if i % 5 == 0 {
            unique("nowhere")
        } else {
            q.clone()
        };
        let confirm = ch
            .publish("", &key, true, with_id(&i.to_string()), b"x")
            .unwrap();
        confirms.push((i % 5 == 0, confirm));
    }
    for (unroutable, confirm) in confirms {
        let confirmation = confirm.wait().await.unwrap();
        assert!(confirmation.acked);
        assert_eq!(confirmation.returned.is_some(), unroutable);
    }
    let state = ch.queue_delete(&q).await.unwrap();
    assert_eq!(state, 40);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn refusals_carry_the_broker_s_reply_code_and_spare_the_connection() {
    let conn = connect().await;
    let ch = conn.channel().await.unwrap();
    let missing = ch
        .queue_declare(
            &unique("missing"),
            QueueOptions {
                passive: true,
                ..QueueOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(missing.reply_code(), Some(404), "{missing}");
    assert!(!ch.is_open());

    let ch = conn.channel().await.unwrap();
    let q = queue(&ch, "conflict").await;
    let conflict = ch
        .queue_declare(
            &q,
            QueueOptions {
                durable: true,
                ..QueueOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(conflict.reply_code(), Some(406), "{conflict}");

    let ch = conn.channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let no_exchange = ch
        .publish(&unique("no-exchange"), "k", true, with_id("x"), b"x")
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    assert!(
        matches!(no_exchange, WireError::ChannelClosed { code: 404, .. }),
        "{no_exchange}"
    );
    assert!(conn.is_open());
    let ch = conn.channel().await.unwrap();
    ch.queue_delete(&q).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_binary_long_string_header_is_delivered_intact() {
    let conn = connect().await;
    let ch = conn.channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let q = queue(&ch, "binary").await;
    let binary = vec![0xff, 0xfe, 0x00, 0x80];
    let mut headers = FieldTable::default();
    headers.insert(
        "bin".into(),
        AMQPValue::LongString(LongString::from(binary.clone())),
    );
    ch.publish("", &q, true, with_id("b").with_headers(headers), b"x")
        .unwrap()
        .wait()
        .await
        .unwrap();
    let mut consumer = ch
        .consume(&q, "c-bin", FieldTable::default())
        .await
        .unwrap();
    let delivery = next(&mut consumer).await;
    let headers = delivery.properties.headers().clone().unwrap();
    match headers.inner().get("bin") {
        Some(AMQPValue::LongString(s)) => assert_eq!(s.as_bytes(), &binary[..]),
        other => panic!("got {other:?}"),
    }
    delivery.acker.ack().unwrap();
    ch.queue_delete(&q).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn prefetch_bounds_the_unacked_deliveries() {
    let conn = connect().await;
    let ch = conn.channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let q = queue(&ch, "prefetch").await;
    for i in 0..5 {
        ch.publish("", &q, true, with_id(&i.to_string()), b"x")
            .unwrap()
            .wait()
            .await
            .unwrap();
    }
    let consumer_channel = conn.channel().await.unwrap();
    consumer_channel.qos(2).await.unwrap();
    let mut consumer = consumer_channel
        .consume(&q, "c-prefetch", FieldTable::default())
        .await
        .unwrap();
    let first = next(&mut consumer).await;
    let second = next(&mut consumer).await;
    // Two held unacked: the queue keeps the other three ready.
    let ready = |ch: Channel, q: String| async move {
        let passive = QueueOptions {
            passive: true,
            ..QueueOptions::default()
        };
        ch.queue_declare(&q, passive, FieldTable::default())
            .await
            .unwrap()
            .messages
    };
    assert_eq!(ready(ch.clone(), q.clone()).await, 3);
    first.acker.ack().unwrap();
    second.acker.reject(true).unwrap();
    let mut seen = 0;
    while seen < 4 {
        next(&mut consumer).await.acker.ack().unwrap();
        seen += 1;
    }
    consumer_channel.close().await.unwrap();
    assert_eq!(ready(ch.clone(), q.clone()).await, 0);
    ch.queue_delete(&q).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_consumer_ends_when_its_queue_is_deleted() {
    let conn = connect().await;
    let ch = conn.channel().await.unwrap();
    let q = queue(&ch, "cancelled").await;
    let consumer_channel = conn.channel().await.unwrap();
    let mut consumer = consumer_channel
        .consume(&q, "c-cancel", FieldTable::default())
        .await
        .unwrap();
    ch.queue_delete(&q).await.unwrap();
    let end = tokio::time::timeout(WAIT, consumer.next()).await.unwrap();
    assert!(end.is_none());
    assert!(consumer_channel.is_open());
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_refused_login_is_a_403() {
    let uri = AMQPUri::from_str("amqp://nobody:wrong@127.0.0.1:5672/%2f").unwrap();
    let err = Connection::open(&uri, "tollgate-wire-test")
        .await
        .unwrap_err();
    assert_eq!(err.reply_code(), Some(403), "{err}");
}
