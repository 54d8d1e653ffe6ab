//! The transport conformance suite: the same cases for `MemoryTransport` and
//! `AmqpTransport`. Instantiate with [`transport_conformance!`](crate::transport_conformance).

use std::time::Duration;

use bytes::Bytes;
use tollgate_bus::{
    Address, Delivery, Envelope, ExchangeKind, ExchangeSpec, HeaderValue, Headers, Overflow,
    QueueSpec, SubscribeOptions, Subscription, Topology, TransportError, headers,
};

use crate::support::Fixture;

/// How long a case waits for a delivery that must come (liveness, not speed).
const DELIVERY_WAIT: Duration = Duration::from_secs(15);

/// Instantiates every transport conformance case as a `#[tokio::test]` in a
/// module named `$name`, each on a fixture from the async expression `$fixture`.
#[macro_export]
macro_rules! transport_conformance {
    ($name:ident, $fixture:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::transport_conformance!(@cases $fixture;
                publish_is_confirmed_before_return,
                headers_and_properties_roundtrip,
                delivery_mode_roundtrips,
                a_publish_names_only_its_own_user,
                subscription_ends_for_good_when_its_queue_is_deleted,
                topic_routing_with_wildcards,
                direct_and_fanout_routing,
                unroutable_publish_is_an_error,
                missing_exchange_is_a_typed_error,
                invalid_headers_are_a_typed_error,
                rejected_without_requeue_reaches_dead_letter,
                rejected_with_requeue_is_redelivered,
                unacked_is_redelivered_when_consumer_goes_away,
                dropping_subscriptions_leaves_the_connection_s_others_alone,
                prefetch_bounds_in_flight,
                single_active_consumer_takes_every_message,
                reply_to_reaches_the_caller,
                delivery_limit_dead_letters_a_poison_message,
                full_queue_with_reject_publish_nacks,
                conflicting_declaration_is_refused,
                exclusive_queue_is_private_to_its_connection,
                cleanup_leaves_no_queues_behind,
                closed_transport_refuses_calls,
            );
        }
    };
    (@cases $fixture:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fx = $fixture.await;
                $crate::conformance::transport::$case(&fx).await;
                fx.cleanup().await;
            }
        )*
    };
}

// === helpers ===

/// The next delivery, or a panic naming what was awaited.
pub async fn recv(sub: &mut Subscription, what: &str) -> Delivery {
    match tokio::time::timeout(DELIVERY_WAIT, sub.next()).await {
        Ok(Some(d)) => d,
        Ok(None) => panic!("subscription ended while waiting for {what}"),
        Err(_) => panic!("no delivery within {DELIVERY_WAIT:?} while waiting for {what}"),
    }
}

fn body(d: &Delivery) -> &[u8] {
    &d.envelope.payload
}

async fn queue_with_dlq(fx: &Fixture, spec: QueueSpec) -> (String, String) {
    let dlx = fx.ns.name("dlx");
    let dlq = fx.ns.name("dlq");
    let name = spec.name.clone();
    let t = Topology::new()
        .exchange(ExchangeSpec::new(&dlx, ExchangeKind::Fanout))
        .queue(QueueSpec::classic(&dlq))
        .queue(spec.dead_letter_to(&dlx, None))
        .bind(&dlx, &dlq, "");
    fx.declare(&t)
        .await
        .expect("declare queue with dead-letter queue");
    (name, dlq)
}

async fn plain_queue(fx: &Fixture, name: &str) -> String {
    let q = fx.ns.name(name);
    fx.declare(&Topology::new().queue(QueueSpec::classic(&q)))
        .await
        .expect("declare queue");
    q
}

// === cases ===

/// `publish` returns only once the broker holds the message: it is countable at once.
pub async fn publish_is_confirmed_before_return(fx: &Fixture) {
    let q = plain_queue(fx, "confirmed").await;
    let t = fx.transport();
    for i in 0..20 {
        t.publish(&Address::queue(&q), &Envelope::new(format!("m{i}")))
            .await
            .expect("publish");
    }
    assert_eq!(t.inspect(&q).await.expect("inspect").messages, 20);
}

/// Every property and header type, nested tables and binary values survive the trip.
pub async fn headers_and_properties_roundtrip(fx: &Fixture) {
    let q = plain_queue(fx, "roundtrip").await;
    let nested = Headers::new()
        .with(
            "level2",
            Headers::new().with("bin", Bytes::from_static(&[0, 255, 1])),
        )
        .with(
            "list",
            vec![
                HeaderValue::from("a"),
                HeaderValue::from(7i32),
                HeaderValue::Void,
            ],
        );
    let sent_headers = Headers::new()
        .with("bool", true)
        .with("i8", -8i8)
        .with("u8", 8u8)
        .with("i16", -16i16)
        .with("u16", 16u16)
        .with("i32", -32i32)
        .with("u32", 32u32)
        .with("i64", -64i64)
        .with("f32", 1.25f32)
        .with("f64", 2.5f64)
        .with(
            "decimal",
            HeaderValue::Decimal {
                scale: 2,
                value: 314,
            },
        )
        .with("text", "héllo ✓")
        .with("binary", Bytes::from_static(b"\x00\x9f\x92\x96"))
        .with("stamp", HeaderValue::Timestamp(1_700_000_000))
        .with("nested", nested);
    let sent = Envelope::new(Bytes::from_static(b"\x00binary\xffpayload"))
        .with_id("msg-1")
        .with_correlation_id("corr-1")
        .with_reply_to("some.reply.queue")
        .with_content_type("application/msgpack")
        .with_headers(sent_headers);
    fx.transport()
        .publish(&Address::queue(&q), &sent)
        .await
        .expect("publish");
    let mut sub = fx
        .transport()
        .subscribe(&q, SubscribeOptions::default())
        .await
        .expect("subscribe");
    let d = recv(&mut sub, "the round-tripped message").await;
    assert_eq!(d.envelope, sent);
    assert_eq!(d.info.routing_key, q);
    assert!(!d.info.redelivered);
    d.ack().await.expect("ack");
}

/// A transient message arrives transient, a persistent one persistent.
pub async fn delivery_mode_roundtrips(fx: &Fixture) {
    let q = plain_queue(fx, "mode").await;
    let transient = Envelope::new("t").transient();
    let persistent = Envelope::new("p");
    for sent in [&transient, &persistent] {
        fx.transport()
            .publish(&Address::queue(&q), sent)
            .await
            .expect("publish");
    }
    let mut sub = fx
        .transport()
        .subscribe(&q, SubscribeOptions::default())
        .await
        .expect("subscribe");
    for sent in [&transient, &persistent] {
        let d = recv(&mut sub, "the message").await;
        assert_eq!(d.envelope.id, sent.id);
        assert_eq!(d.envelope.delivery_mode, sent.delivery_mode);
        d.ack().await.expect("ack");
    }
}

/// A subscription whose queue is deleted ends, and keeps answering `None`.
pub async fn subscription_ends_for_good_when_its_queue_is_deleted(fx: &Fixture) {
    let q = plain_queue(fx, "deleted").await;
    let mut sub = fx
        .transport()
        .subscribe(&q, SubscribeOptions::default())
        .await
        .expect("subscribe");
    fx.transport()
        .delete(&Topology::new().queue(QueueSpec::classic(&q)))
        .await
        .expect("delete");
    for _ in 0..2 {
        let next = tokio::time::timeout(DELIVERY_WAIT, sub.next()).await;
        assert!(matches!(next, Ok(None)), "the subscription ended");
    }
}

/// `*` matches one word, `#` zero or more, on a topic exchange.
pub async fn topic_routing_with_wildcards(fx: &Fixture) {
    let ex = fx.ns.name("topic");
    let (one, many, create) = (fx.ns.name("one"), fx.ns.name("many"), fx.ns.name("create"));
    let t = Topology::new()
        .exchange(ExchangeSpec::topic(&ex))
        .queue(QueueSpec::classic(&one))
        .queue(QueueSpec::classic(&many))
        .queue(QueueSpec::classic(&create))
        .bind(&ex, &one, "orders.*")
        .bind(&ex, &many, "orders.#")
        .bind(&ex, &create, "*.create");
    fx.declare(&t).await.expect("declare");
    let tr = fx.transport();
    for key in [
        "orders.create",
        "orders",
        "orders.item.add",
        "billing.create",
    ] {
        tr.publish(&Address::new(&ex, key), &Envelope::new(key))
            .await
            .expect("publish");
    }
    let count = async |q: &str| tr.inspect(q).await.expect("inspect").messages;
    assert_eq!(count(&one).await, 1, "orders.* takes only orders.create");
    assert_eq!(
        count(&many).await,
        3,
        "orders.# takes orders, orders.create, orders.item.add"
    );
    assert_eq!(
        count(&create).await,
        2,
        "*.create takes orders.create and billing.create"
    );
}

/// Direct exchanges match keys exactly; fanout ignores them.
pub async fn direct_and_fanout_routing(fx: &Fixture) {
    let (direct, fanout) = (fx.ns.name("direct"), fx.ns.name("fanout"));
    let (a, b) = (fx.ns.name("a"), fx.ns.name("b"));
    let t = Topology::new()
        .exchange(ExchangeSpec::new(&direct, ExchangeKind::Direct))
        .exchange(ExchangeSpec::new(&fanout, ExchangeKind::Fanout))
        .queue(QueueSpec::classic(&a))
        .queue(QueueSpec::classic(&b))
        .bind(&direct, &a, "key.a")
        .bind(&fanout, &a, "")
        .bind(&fanout, &b, "");
    fx.declare(&t).await.expect("declare");
    let tr = fx.transport();
    tr.publish(&Address::new(&direct, "key.a"), &Envelope::new("d"))
        .await
        .expect("direct");
    tr.publish(&Address::new(&fanout, "anything"), &Envelope::new("f"))
        .await
        .expect("fanout");
    let err = tr
        .publish(&Address::new(&direct, "key.*"), &Envelope::new("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::Unroutable { .. }),
        "direct does not do wildcards: {err}"
    );
    assert_eq!(tr.inspect(&a).await.expect("inspect a").messages, 2);
    assert_eq!(tr.inspect(&b).await.expect("inspect b").messages, 1);
}

/// A message no queue takes is an error, never a silent success.
pub async fn unroutable_publish_is_an_error(fx: &Fixture) {
    let ex = fx.ns.name("lonely");
    fx.declare(&Topology::new().exchange(ExchangeSpec::topic(&ex)))
        .await
        .expect("declare");
    let tr = fx.transport();
    let err = tr
        .publish(&Address::new(&ex, "nobody.home"), &Envelope::new("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::Unroutable { .. }),
        "got {err}"
    );
    let err = tr
        .publish(
            &Address::queue(fx.ns.name("no-such-queue")),
            &Envelope::new("x"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::Unroutable { .. }),
        "got {err}"
    );
    let q = plain_queue(fx, "after-unroutable").await;
    tr.publish(&Address::queue(&q), &Envelope::new("still works"))
        .await
        .expect("transport still usable");
}

/// A publish to a missing exchange is `NotFound`, and the transport keeps working.
pub async fn missing_exchange_is_a_typed_error(fx: &Fixture) {
    let tr = fx.transport();
    let missing = fx.ns.name("missing-exchange");
    let err = tr
        .publish(&Address::new(&missing, "k"), &Envelope::new("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TransportError::NotFound { kind: "exchange", name } if *name == missing),
        "got {err}"
    );
    let err = tr
        .subscribe(&fx.ns.name("missing-queue"), SubscribeOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::NotFound { kind: "queue", .. }),
        "got {err}"
    );
    let q = plain_queue(fx, "after-missing").await;
    tr.publish(&Address::queue(&q), &Envelope::new("ok"))
        .await
        .expect("transport still usable");
}

/// Headers AMQP cannot carry are refused before anything is sent.
pub async fn invalid_headers_are_a_typed_error(fx: &Fixture) {
    let q = plain_queue(fx, "bad-headers").await;
    let tr = fx.transport();
    let to = Address::queue(&q);
    let long_name = Envelope::new("x").with_headers(Headers::new().with("n".repeat(300), 1i32));
    let deep = (0..100).fold(HeaderValue::Void, |v, _| HeaderValue::Array(vec![v]));
    let too_deep = Envelope::new("x").with_headers(Headers::new().with("deep", deep));
    let huge = Envelope::new("x").with_headers(Headers::new().with("big", "x".repeat(200 * 1024)));
    let long_property = Envelope::new("x").with_correlation_id("c".repeat(300));
    for bad in [long_name, too_deep, huge, long_property] {
        let err = tr.publish(&to, &bad).await.unwrap_err();
        assert!(
            matches!(err, TransportError::InvalidHeaders(_)),
            "got {err}"
        );
    }
    tr.publish(&to, &Envelope::new("fine"))
        .await
        .expect("transport still usable");
    assert_eq!(tr.inspect(&q).await.expect("inspect").messages, 1);
}

/// Reject without requeue sends the message to the queue's dead-letter target.
pub async fn rejected_without_requeue_reaches_dead_letter(fx: &Fixture) {
    let (q, dlq) = queue_with_dlq(fx, QueueSpec::classic(fx.ns.name("work"))).await;
    let tr = fx.transport();
    tr.publish(&Address::queue(&q), &Envelope::new("poison").with_id("p-1"))
        .await
        .expect("publish");
    let mut sub = tr
        .subscribe(&q, SubscribeOptions::default())
        .await
        .expect("subscribe");
    recv(&mut sub, "the message to reject")
        .await
        .reject(false)
        .await
        .expect("reject");
    let mut dead = tr
        .subscribe(&dlq, SubscribeOptions::default())
        .await
        .expect("subscribe dlq");
    let d = recv(&mut dead, "the dead-lettered copy").await;
    assert_eq!(d.envelope.id, "p-1");
    assert_eq!(body(&d), b"poison");
    assert_eq!(
        d.envelope.headers.get_str(headers::X_FIRST_DEATH_REASON),
        Some("rejected")
    );
    assert_eq!(
        d.envelope.headers.get_str(headers::X_FIRST_DEATH_QUEUE),
        Some(q.as_str())
    );
    d.ack().await.expect("ack");
}

/// Reject with requeue hands the message out again, marked redelivered.
pub async fn rejected_with_requeue_is_redelivered(fx: &Fixture) {
    let q = plain_queue(fx, "requeue").await;
    let tr = fx.transport();
    tr.publish(&Address::queue(&q), &Envelope::new("again"))
        .await
        .expect("publish");
    let mut sub = tr
        .subscribe(&q, SubscribeOptions::prefetch(1))
        .await
        .expect("subscribe");
    let first = recv(&mut sub, "the first delivery").await;
    assert!(!first.info.redelivered);
    first.reject(true).await.expect("reject");
    let second = recv(&mut sub, "the redelivery").await;
    assert!(second.info.redelivered);
    assert_eq!(body(&second), b"again");
    second.ack().await.expect("ack");
}

/// Unacked messages of a consumer that goes away go to another, `redelivered` set.
pub async fn unacked_is_redelivered_when_consumer_goes_away(fx: &Fixture) {
    let q = plain_queue(fx, "unacked").await;
    let tr = fx.transport();
    for i in 0..3 {
        tr.publish(&Address::queue(&q), &Envelope::new(format!("m{i}")))
            .await
            .expect("publish");
    }
    let other = fx.connect().await;
    let mut first = other
        .subscribe(&q, SubscribeOptions::prefetch(10))
        .await
        .expect("subscribe");
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(recv(&mut first, "a first delivery").await);
    }
    let stale = held.pop().expect("three deliveries");
    drop(first);
    other.close().await.expect("close");
    assert!(matches!(
        stale.ack().await,
        Err(TransportError::DeliveryStale)
    ));
    let mut second = tr
        .subscribe(&q, SubscribeOptions::prefetch(10))
        .await
        .expect("subscribe again");
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let d = recv(&mut second, "a redelivery").await;
        assert!(d.info.redelivered, "redelivery must be marked");
        bodies.push(String::from_utf8_lossy(body(&d)).into_owned());
        d.ack().await.expect("ack");
    }
    bodies.sort();
    assert_eq!(bodies, ["m0", "m1", "m2"]);
}

/// How many subscriptions [`dropping_subscriptions_leaves_the_connection_s_others_alone`]
/// opens and drops: enough for a race between a consumer's cancel and its
/// channel's close to show.
const DROPPED_SUBSCRIPTIONS: usize = 300;

/// Subscriptions come and go on a connection (a caller's reply queue, a
/// service stopped in a process that goes on) without disturbing the others
/// on it: a delivery held by another subscription meanwhile is still
/// settled, and nothing it holds comes again.
pub async fn dropping_subscriptions_leaves_the_connection_s_others_alone(fx: &Fixture) {
    let (kept, passing) = (
        plain_queue(fx, "kept").await,
        plain_queue(fx, "passing").await,
    );
    let tr = fx.transport();
    tr.publish(&Address::queue(&kept), &Envelope::new("held"))
        .await
        .expect("publish");
    let mut sub = tr
        .subscribe(&kept, SubscribeOptions::prefetch(10))
        .await
        .expect("subscribe");
    let held = recv(&mut sub, "the held delivery").await;
    for i in 0..DROPPED_SUBSCRIPTIONS {
        tr.publish(&Address::queue(&passing), &Envelope::new(format!("p{i}")))
            .await
            .expect("publish to the passing queue");
        let mut passing_sub = tr
            .subscribe(&passing, SubscribeOptions::prefetch(1))
            .await
            .expect("subscribe to the passing queue");
        // Taken and acked on some rounds, left unacked (requeued by the
        // drop) on others, as subscriptions end in real life.
        if i % 2 == 0 {
            recv(&mut passing_sub, "a passing delivery")
                .await
                .ack()
                .await
                .expect("ack a passing delivery");
        }
        drop(passing_sub);
    }
    held.ack()
        .await
        .expect("the held delivery is still settled: its channel lived on");
    tr.publish(&Address::queue(&kept), &Envelope::new("after"))
        .await
        .expect("publish");
    let next = recv(&mut sub, "the next delivery").await;
    assert_eq!(body(&next), b"after", "the held delivery came again");
    assert!(!next.info.redelivered);
    next.ack().await.expect("ack");
}

/// No more than `prefetch` deliveries are unsettled at once.
pub async fn prefetch_bounds_in_flight(fx: &Fixture) {
    let q = plain_queue(fx, "prefetch").await;
    let tr = fx.transport();
    for i in 0..10 {
        tr.publish(&Address::queue(&q), &Envelope::new(format!("m{i}")))
            .await
            .expect("publish");
    }
    let mut sub = tr
        .subscribe(&q, SubscribeOptions::prefetch(3))
        .await
        .expect("subscribe");
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(recv(&mut sub, "a delivery within the prefetch").await);
    }
    // Three are out; the broker keeps the other seven until one is settled.
    assert_eq!(tr.inspect(&q).await.expect("inspect").messages, 7);
    held.pop().expect("held").ack().await.expect("ack");
    held.push(recv(&mut sub, "the delivery freed by an ack").await);
    assert_eq!(tr.inspect(&q).await.expect("inspect").messages, 6);
    for d in held {
        d.ack().await.expect("ack");
    }
}

/// `user_id` reaches the consumer when it names the publisher's own broker
/// user, and is left out when it names another (a relayed message never
/// claims to be its first publisher's; RabbitMQ would refuse it).
pub async fn a_publish_names_only_its_own_user(fx: &Fixture) {
    let q = fx.ns.name("user");
    fx.declare(&Topology::new().queue(QueueSpec::classic(&q)))
        .await
        .expect("declare");
    let tr = fx.transport();
    let own = tr.user().expect("the fixture logs in by name").to_owned();
    let mut sub = tr
        .subscribe(&q, SubscribeOptions::prefetch(10))
        .await
        .expect("subscribe");
    for claimed in [own.as_str(), "someone-else"] {
        let mut envelope = Envelope::new(claimed.to_owned());
        envelope.user_id = Some(claimed.to_owned());
        tr.publish(&Address::queue(&q), &envelope)
            .await
            .expect("publish");
        let d = recv(&mut sub, "the message").await;
        let expected = (claimed == own).then_some(claimed);
        assert_eq!(d.envelope.user_id.as_deref(), expected, "claimed {claimed}");
        d.ack().await.expect("ack");
    }
}

/// On a single-active-consumer queue the first subscriber gets every
/// message; the next takes over when it leaves.
pub async fn single_active_consumer_takes_every_message(fx: &Fixture) {
    let q = fx.ns.name("sac");
    fx.declare(&Topology::new().queue(QueueSpec::classic(&q).single_active_consumer()))
        .await
        .expect("declare");
    let (first_conn, second_conn) = (fx.connect().await, fx.connect().await);
    let mut first = first_conn
        .subscribe(&q, SubscribeOptions::prefetch(100))
        .await
        .expect("subscribe first");
    let mut second = second_conn
        .subscribe(&q, SubscribeOptions::prefetch(100))
        .await
        .expect("subscribe second");
    let tr = fx.transport();
    for i in 0..10 {
        tr.publish(&Address::queue(&q), &Envelope::new(format!("m{i}")))
            .await
            .expect("publish");
    }
    for _ in 0..10 {
        recv(&mut first, "every message, on the active consumer")
            .await
            .ack()
            .await
            .expect("ack");
    }
    drop(first);
    first_conn.close().await.expect("close the active consumer");
    tr.publish(&Address::queue(&q), &Envelope::new("after"))
        .await
        .expect("publish");
    let d = recv(&mut second, "the message after the active consumer left").await;
    assert_eq!(
        body(&d),
        b"after",
        "the second consumer got an earlier message"
    );
    d.ack().await.expect("ack");
    second_conn.close().await.expect("close");
}

/// A reply published to `reply_to` through the default exchange reaches the caller.
pub async fn reply_to_reaches_the_caller(fx: &Fixture) {
    let service_q = plain_queue(fx, "service").await;
    let caller = fx.connect().await;
    let reply_q = fx.ns.name("replies");
    caller
        .declare(&Topology::new().queue(QueueSpec::exclusive(&reply_q)))
        .await
        .expect("declare replies");
    let mut replies = caller
        .subscribe(&reply_q, SubscribeOptions::default())
        .await
        .expect("subscribe replies");
    let request = Envelope::new("ping")
        .with_reply_to(&reply_q)
        .with_correlation_id("c-42");
    caller
        .publish(&Address::queue(&service_q), &request)
        .await
        .expect("request");

    let mut requests = fx
        .transport()
        .subscribe(&service_q, SubscribeOptions::default())
        .await
        .expect("subscribe");
    let req = recv(&mut requests, "the request").await;
    let reply_to = req.envelope.reply_to.clone().expect("reply_to travels");
    let reply = Envelope::new("pong")
        .with_correlation_id(req.envelope.correlation_id.clone().unwrap_or_default());
    fx.transport()
        .publish(&Address::queue(reply_to), &reply)
        .await
        .expect("reply");
    req.ack().await.expect("ack");

    let got = recv(&mut replies, "the reply").await;
    assert_eq!(body(&got), b"pong");
    assert_eq!(got.envelope.correlation_id.as_deref(), Some("c-42"));
    got.ack().await.expect("ack reply");
}

/// A message rejected with requeue past the quorum delivery limit is dead-lettered.
pub async fn delivery_limit_dead_letters_a_poison_message(fx: &Fixture) {
    const LIMIT: u32 = 2;
    let spec = QueueSpec::quorum(fx.ns.name("poison")).delivery_limit(LIMIT);
    let (q, dlq) = queue_with_dlq(fx, spec).await;
    let tr = fx.transport();
    tr.publish(
        &Address::queue(&q),
        &Envelope::new("crash me").with_id("poison-1"),
    )
    .await
    .expect("publish");
    let mut sub = tr
        .subscribe(&q, SubscribeOptions::prefetch(1))
        .await
        .expect("subscribe");
    let mut dead = tr
        .subscribe(&dlq, SubscribeOptions::default())
        .await
        .expect("subscribe dlq");
    let mut deliveries = 0;
    let d = loop {
        tokio::select! {
            d = recv(&mut sub, "a delivery of the poison message") => {
                deliveries += 1;
                assert_eq!(d.info.delivery_count, deliveries - 1);
                d.reject(true).await.expect("reject with requeue");
            }
            d = recv(&mut dead, "the dead-lettered poison message") => break d,
        }
    };
    assert_eq!(
        deliveries,
        LIMIT + 1,
        "delivered once plus once per allowed return"
    );
    assert_eq!(d.envelope.id, "poison-1");
    assert_eq!(
        d.envelope.headers.get_str(headers::X_FIRST_DEATH_REASON),
        Some("delivery_limit")
    );
    d.ack().await.expect("ack");
}

/// A full queue with `reject-publish` overflow makes the publish fail with a nack.
pub async fn full_queue_with_reject_publish_nacks(fx: &Fixture) {
    let q = fx.ns.name("bounded");
    let spec = QueueSpec::classic(&q).max_length(2, Overflow::RejectPublish);
    fx.declare(&Topology::new().queue(spec))
        .await
        .expect("declare");
    let tr = fx.transport();
    for i in 0..2 {
        tr.publish(&Address::queue(&q), &Envelope::new(format!("m{i}")))
            .await
            .expect("fits");
    }
    let err = tr
        .publish(&Address::queue(&q), &Envelope::new("overflow"))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Nacked { .. }), "got {err}");
    assert_eq!(tr.inspect(&q).await.expect("inspect").messages, 2);
}

/// Redeclaring a name with other settings is refused; the same settings are fine.
pub async fn conflicting_declaration_is_refused(fx: &Fixture) {
    let q = fx.ns.name("conflict");
    fx.declare(&Topology::new().queue(QueueSpec::classic(&q)))
        .await
        .expect("declare");
    fx.declare(&Topology::new().queue(QueueSpec::classic(&q)))
        .await
        .expect("same again is fine");
    let other = Topology::new().queue(QueueSpec::classic(&q).max_length(5, Overflow::DropHead));
    let err = fx.transport().declare(&other).await.unwrap_err();
    assert!(
        matches!(err, TransportError::PreconditionFailed(_)),
        "got {err}"
    );
    let ex = fx.ns.name("conflict-ex");
    fx.declare(&Topology::new().exchange(ExchangeSpec::topic(&ex)))
        .await
        .expect("declare ex");
    let other = Topology::new().exchange(ExchangeSpec::new(&ex, ExchangeKind::Fanout));
    let err = fx.transport().declare(&other).await.unwrap_err();
    assert!(
        matches!(err, TransportError::PreconditionFailed(_)),
        "got {err}"
    );
}

/// Another connection cannot consume from an exclusive queue; it vanishes with its owner.
pub async fn exclusive_queue_is_private_to_its_connection(fx: &Fixture) {
    let owner = fx.connect().await;
    let q = fx.ns.name("private");
    owner
        .declare(&Topology::new().queue(QueueSpec::exclusive(&q)))
        .await
        .expect("declare");
    let err = fx
        .transport()
        .subscribe(&q, SubscribeOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::PreconditionFailed(_)),
        "got {err}"
    );
    owner.close().await.expect("close owner");
    let err = fx.transport().inspect(&q).await.unwrap_err();
    assert!(
        matches!(err, TransportError::NotFound { .. }),
        "exclusive queue outlived its owner: {err}"
    );
}

/// Deleting a topology removes its queues and exchanges.
pub async fn cleanup_leaves_no_queues_behind(fx: &Fixture) {
    let ex = fx.ns.name("temp-ex");
    let q = fx.ns.name("temp-q");
    let t = Topology::new()
        .exchange(ExchangeSpec::topic(&ex))
        .queue(QueueSpec::classic(&q))
        .bind(&ex, &q, "#");
    let tr = fx.transport();
    tr.declare(&t).await.expect("declare");
    tr.publish(&Address::new(&ex, "a"), &Envelope::new("left behind"))
        .await
        .expect("publish");
    tr.delete(&t).await.expect("delete");
    let err = tr.inspect(&q).await.unwrap_err();
    assert!(
        matches!(err, TransportError::NotFound { kind: "queue", .. }),
        "got {err}"
    );
    let err = tr
        .publish(&Address::new(&ex, "a"), &Envelope::new("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::NotFound {
                kind: "exchange",
                ..
            }
        ),
        "got {err}"
    );
    tr.delete(&t).await.expect("deleting twice is harmless");
}

/// After `close`, every call fails with `Closed`.
pub async fn closed_transport_refuses_calls(fx: &Fixture) {
    let q = plain_queue(fx, "closing").await;
    let conn = fx.connect().await;
    conn.close().await.expect("close");
    let err = conn
        .publish(&Address::queue(&q), &Envelope::new("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Closed), "got {err}");
    let err = conn
        .subscribe(&q, SubscribeOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Closed), "got {err}");
}
