//! A plain AMQP caller whose reply queue the broker named (`amq.gen-…`, a
//! queue declared with an empty name, as RabbitMQ's RPC tutorial does) gets
//! its reply through the router; an attacker who names that queue in its own
//! requests, with a valid token or none, puts nothing into it, and neither
//! does a message published around the router onto an SDK service's queue.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::StreamExt;
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties,
    options::{
        BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
        QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, LongString},
};
use tollgate_bus::{ReplyKey, chain::is_server_named, headers};
use tollgate_tests::support::{Fixture, TestBus, amqp_url, wait_until};

/// Requests of the attacker naming the victim's queue.
const ATTACKS: u32 = 50;

const ORDER: &[u8] = br#"{"customer":{"id":"c-5"},"items":[{"sku":"gadget","qty":1}]}"#;

async fn channel(connection: &Connection) -> Channel {
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    channel
}

/// Publishes an order to `(exchange, routing key)` replying to `reply_to`,
/// with `token` and `reply_key` when given.
async fn request(
    channel: &Channel,
    (exchange, routing_key): (&str, &str),
    reply_to: &str,
    token: Option<&str>,
    reply_key: Option<&str>,
    correlation_id: &str,
) {
    let mut table = FieldTable::default();
    let mut header = |name: &str, value: String| {
        table.insert(
            name.into(),
            AMQPValue::LongString(LongString::from(value.into_bytes())),
        );
    };
    if let Some(token) = token {
        header(headers::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(key) = reply_key {
        header(headers::REPLY_KEY, key.to_owned());
    }
    let properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_correlation_id(correlation_id.into())
        .with_reply_to(reply_to.into())
        .with_message_id(uuid::Uuid::new_v4().to_string().into())
        .with_headers(table);
    channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            ORDER,
            properties,
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

/// Messages waiting in `queue` (the owner's channel: the queue is exclusive).
async fn waiting(channel: &Channel, queue: &str) -> u32 {
    let passive = QueueDeclareOptions {
        passive: true,
        exclusive: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .unwrap()
        .message_count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_named_reply_queue_gets_its_replies_and_nobody_elses() {
    let fx = Fixture::amqp().await;
    let bus = TestBus::start(&fx).await;
    let orders = bus.run_orders(fx.connect().await, |b| b).await;
    let web = bus.token("web");
    let ingress = (bus.names.ingress_exchange(), "orders.create");

    // The victim: a reply queue declared with an empty name, as pika's RPC
    // tutorial does, and its own reply key.
    let victim = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let victim_channel = channel(&victim).await;
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..QueueDeclareOptions::default()
    };
    let queue = victim_channel
        .queue_declare("".into(), exclusive, FieldTable::default())
        .await
        .unwrap()
        .name()
        .to_string();
    assert!(is_server_named(&queue), "the broker named it {queue}");
    let key = ReplyKey::generate();
    let no_ack = BasicConsumeOptions {
        no_ack: true,
        ..BasicConsumeOptions::default()
    };
    let mut replies = victim_channel
        .basic_consume(
            queue.as_str().into(),
            "victim".into(),
            no_ack,
            FieldTable::default(),
        )
        .await
        .unwrap();
    request(
        &victim_channel,
        ingress,
        &queue,
        Some(&web),
        Some(key.secret()),
        "own-1",
    )
    .await;
    let reply = tokio::time::timeout(Duration::from_secs(15), replies.next())
        .await
        .expect("a reply within 15 s")
        .unwrap()
        .unwrap();
    assert_eq!(
        reply.properties.correlation_id().as_ref().unwrap().as_str(),
        "own-1"
    );
    let json: serde_json::Value = serde_json::from_slice(&reply.data).unwrap();
    assert_eq!(json["placed_by"], "web", "{json}");
    victim_channel
        .basic_cancel("victim".into(), BasicCancelOptions::default())
        .await
        .unwrap();

    // The attacker learned the name: with a valid token and no key, with its
    // own key, and without a token.
    let attacker = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let attacker_channel = channel(&attacker).await;
    let own_key = ReplyKey::generate();
    for i in 0..ATTACKS {
        let (token, key) = match i % 3 {
            0 => (Some(web.as_str()), None),
            1 => (Some(web.as_str()), Some(own_key.secret())),
            _ => (None, Some(own_key.secret())),
        };
        request(
            &attacker_channel,
            ingress,
            &queue,
            token,
            key,
            &format!("attack-{i}"),
        )
        .await;
    }
    // Around the router, straight onto the SDK service's queue, even with the
    // victim's own key: the service cannot know the router's binding, so it
    // sends its refusal to no server-named queue (only a dead-letter copy).
    let orders_queue = bus.names.service_queue("orders");
    request(
        &attacker_channel,
        ("", orders_queue.as_str()),
        &queue,
        None,
        Some(key.secret()),
        "bypass",
    )
    .await;
    let tr = fx.transport().as_ref();
    wait_until(
        "every attack refused into the dead-letter queue",
        Duration::from_secs(30),
        async || bus.dead_letters(tr).await > ATTACKS,
    )
    .await;
    assert_eq!(
        waiting(&victim_channel, &queue).await,
        0,
        "an attack got in"
    );

    // The victim's binding still holds: its next reply arrives.
    request(
        &victim_channel,
        ingress,
        &queue,
        Some(&web),
        Some(key.secret()),
        "own-2",
    )
    .await;
    wait_until(
        "the victim's second reply",
        Duration::from_secs(15),
        async || waiting(&victim_channel, &queue).await == 1,
    )
    .await;

    attacker.close(200, "done".into()).await.unwrap();
    victim.close(200, "done".into()).await.unwrap();
    orders.shutdown().await.unwrap();
    let names = bus.names.clone();
    bus.stop().await;
    let mut dead = tr
        .subscribe(
            names.dead_queue(),
            tollgate_bus::SubscribeOptions::prefetch(100),
        )
        .await
        .unwrap();
    let mut codes = std::collections::BTreeMap::new();
    for _ in 0..=ATTACKS {
        let copy = tollgate_tests::conformance::transport::recv(&mut dead, "a refusal").await;
        let code = copy
            .envelope
            .headers
            .get_str(headers::CODE)
            .unwrap()
            .to_owned();
        *codes.entry(code).or_insert(0) += 1;
        copy.ack().await.unwrap();
    }
    let expected = [
        ("bad_reply_to".to_owned(), ATTACKS),
        ("not_from_bus".to_owned(), 1),
    ];
    assert_eq!(codes, expected.into_iter().collect());
    drop(dead);
    assert_eq!(bus_dead_letters_left(tr, &names).await, 0);
    fx.cleanup().await;
}

async fn bus_dead_letters_left(
    tr: &dyn tollgate_bus::Transport,
    names: &tollgate_bus::BusNames,
) -> u32 {
    tr.inspect(names.dead_queue()).await.unwrap().messages
}
