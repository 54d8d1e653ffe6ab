//! Dead letters: a copy in `<ns>.dead`, whether the router or a service's
//! SDK wrote it, carries the verdict and a bounded, sanitized part of the
//! refused message — never a credential, a forged bus header, a broker
//! header or a hostile table — and the queue itself is bounded, dropping its
//! oldest letters.

// The cases are plain async fns instantiated per transport by
// `on_both_transports!`; a failed expectation must panic.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use lapin::{
    BasicProperties, Connection, ConnectionProperties,
    options::{BasicPublishOptions, ConfirmSelectOptions},
    types::{AMQPValue, FieldArray, FieldTable, LongString},
};
use serde_json::json;
use tollgate_bus::{Envelope, HeaderValue, Headers, ReplyKey, SubscribeOptions, headers};
use tollgate_tests::{
    conformance::transport::recv,
    support::{Fixture, TestBus, amqp_url, wait_until},
};

/// The only `x-tollgate-*` headers a dead-letter copy may carry: the verdict.
const VERDICT: [&str; 6] = [
    headers::CODE,
    headers::STAGE,
    headers::REASON,
    headers::ROUTE,
    headers::HEADERS_DROPPED,
    headers::PAYLOAD_DROPPED,
];

/// Headers no copy may carry, whatever the sender wrote.
fn forged() -> Vec<(String, HeaderValue)> {
    let death = Headers::new()
        .with("reason", "rejected")
        .with("queue", "elsewhere");
    [
        (headers::CONSUMER, HeaderValue::from("admin")),
        ("X-Tollgate-Code", "ok".into()),
        (headers::ASSERTION, "forged".into()),
        (headers::REPLY_CONTEXT, "forged".into()),
        (headers::X_DEATH, vec![HeaderValue::from(death)].into()),
        (headers::X_FIRST_DEATH_REASON, "rejected".into()),
        (headers::X_DELIVERY_COUNT, 7i64.into()),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v))
    .collect()
}

/// Checks what every copy must hold to: nothing the bus did not write under
/// `x-tollgate-*`, no broker header, no credential, a bounded table.
fn assert_sanitized(copy: &Envelope, what: &str) {
    let h = &copy.headers;
    for (name, _) in h.iter() {
        assert!(
            !name.eq_ignore_ascii_case(headers::AUTHORIZATION),
            "{what}: a credential in the copy"
        );
        assert!(
            !headers::is_broker_header(name),
            "{what}: broker header `{name}` in the copy"
        );
        assert!(
            !headers::is_reserved(name) || VERDICT.contains(&name),
            "{what}: `{name}` was not written by the bus"
        );
    }
    let sender = h.iter().filter(|(n, _)| !headers::is_reserved(n)).count();
    assert!(sender <= 64, "{what}: {sender} sender headers");
    assert!(
        h.encoded_len() < 20 * 1024,
        "{what}: {} bytes",
        h.encoded_len()
    );
}

/// `depth` tables, one inside the other.
fn nested_tables(depth: usize) -> HeaderValue {
    (0..depth).fold(HeaderValue::from("bottom"), |v, _| {
        HeaderValue::Table(Headers::new().with("t", v))
    })
}

fn wide_table(keys: usize) -> Headers {
    (0..keys)
        .map(|i| {
            (
                format!("h{i}"),
                HeaderValue::from(i32::try_from(i).unwrap()),
            )
        })
        .collect()
}

/// One hostile request: what it adds to a valid request, and the expected code.
struct Case {
    name: &'static str,
    route: &'static str,
    envelope: Envelope,
    code: &'static str,
    /// A header the sender set that the copy must keep.
    kept: Option<&'static str>,
    /// Sender headers the copy must not carry.
    dropped: Vec<&'static str>,
}

fn cases(bus: &TestBus, caller_q: &ReplyKey) -> Vec<Case> {
    let req = |consumer: &str, extra: Vec<(String, HeaderValue)>| {
        let mut e = bus.request(
            &json!({"sku": "a"}),
            Some(&bus.token(consumer)),
            Some(caller_q),
        );
        for (n, v) in forged().into_iter().chain(extra) {
            e.headers.insert(n, v);
        }
        e
    };
    let one = |n: &str, v: HeaderValue| vec![(n.to_owned(), v)];
    let second_credential = one(
        "Authorization",
        format!("Bearer {}", bus.token("web")).into(),
    );
    let mut huge = req("web", one("trace-id", "t-5".into()));
    huge.payload = vec![b' '; 2 * 1024 * 1024].into();
    vec![
        Case {
            name: "forged headers and two credentials",
            route: "orders.get",
            envelope: req("web", {
                let mut extra = second_credential;
                extra.extend(one("trace-id", "t-1".into()));
                extra
            }),
            code: "ambiguous_credential",
            kept: Some("trace-id"),
            dropped: vec![],
        },
        Case {
            name: "a 10,000-key table",
            route: "orders.get",
            envelope: req("web", wide_table(10_000).into_iter().collect()),
            code: "too_large",
            kept: None,
            dropped: vec!["h0", "h9999"],
        },
        Case {
            name: "a nested 10,000-key table",
            route: "orders.get",
            envelope: req("web", one("wide", wide_table(10_000).into())),
            code: "too_large",
            kept: None,
            dropped: vec!["wide"],
        },
        Case {
            name: "a table nested 30 deep",
            route: "billing.charge",
            envelope: req("reader", {
                let mut extra = one("deep", nested_tables(30));
                extra.extend(one("trace-id", "t-4".into()));
                extra
            }),
            code: "forbidden",
            kept: Some("trace-id"),
            dropped: vec!["deep"],
        },
        Case {
            name: "a 2 MiB payload",
            route: "orders.get",
            envelope: huge,
            code: "too_large",
            kept: Some("trace-id"),
            dropped: vec![],
        },
    ]
}

async fn a_refused_request_s_copy_carries_the_verdict_and_nothing_hostile(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let tr = fx.transport().as_ref();
    bus.register(tr, "orders", "application/json", "2").await;
    let (caller_q, _replies) = bus.caller_queue(tr).await;
    let mut dead = tr
        .subscribe(bus.names.dead_queue(), SubscribeOptions::prefetch(10))
        .await
        .unwrap();

    for case in cases(&bus, &caller_q) {
        let what = case.name;
        bus.send(tr, case.route, &case.envelope).await;
        let copy = recv(&mut dead, &format!("the copy of `{what}`")).await;
        let c = &copy.envelope;
        assert_eq!(c.id, case.envelope.id, "{what}");
        assert_eq!(c.headers.get_str(headers::CODE), Some(case.code), "{what}");
        assert_sanitized(c, what);
        for name in &case.dropped {
            assert!(c.headers.get(name).is_none(), "{what}: `{name}` copied");
        }
        if let Some(name) = case.kept {
            assert_eq!(
                c.headers.get(name),
                case.envelope.headers.get(name),
                "{what}"
            );
        }
        if !case.dropped.is_empty() {
            assert!(
                c.headers.get_str(headers::HEADERS_DROPPED).is_some(),
                "{what}: the copy does not say headers were left out"
            );
        }
        if case.envelope.payload.len() > 1024 * 1024 {
            assert!(c.payload.is_empty(), "{what}: the payload was copied");
            assert!(c.headers.get_str(headers::PAYLOAD_DROPPED).is_some());
        } else {
            assert_eq!(c.payload, case.envelope.payload, "{what}");
        }
        copy.ack().await.unwrap();
    }
    // Exactly one copy each: with the consumer cancelled, nothing is left.
    drop(dead);
    bus.stop().await;
    assert_eq!(
        tr.inspect(&bus_dead_queue(fx)).await.unwrap().messages,
        0,
        "a refusal left more than one copy"
    );
}

/// The dead-letter queue of the fixture's bus (the test bus's namespace is the fixture's).
fn bus_dead_queue(fx: &Fixture) -> String {
    tollgate_bus::BusNames::new(fx.ns.prefix())
        .dead_queue()
        .to_owned()
}

/// Refuses `count` requests (no credential) with `body`, waits for their
/// error replies, stops the router (so every copy is published) and returns
/// the ids in the order sent.
async fn refuse_and_stop(fx: &Fixture, bus: TestBus, count: usize, body: &str) -> Vec<String> {
    let tr = fx.transport().as_ref();
    let (caller_q, mut replies) = bus.caller_queue(tr).await;
    let mut ids = Vec::new();
    for _ in 0..count {
        let request = bus.request(&json!(body), None, Some(&caller_q));
        bus.send(tr, "orders.get", &request).await;
        ids.push(request.id);
    }
    for i in 0..count {
        let reply = recv(&mut replies, &format!("error reply {i}")).await;
        reply.ack().await.unwrap();
    }
    // A stopping router settles what it holds: every copy is in the queue.
    bus.stop().await;
    ids
}

/// The ids waiting in the dead-letter queue, oldest first, counted with no
/// consumer on it and then read.
async fn dead_ids(fx: &Fixture, expected: u32) -> Vec<String> {
    let tr = fx.transport().as_ref();
    let dead = bus_dead_queue(fx);
    assert_eq!(tr.inspect(&dead).await.unwrap().messages, expected);
    let mut sub = tr
        .subscribe(&dead, SubscribeOptions::prefetch(100))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..expected {
        let d = recv(&mut sub, &format!("dead letter {i}")).await;
        ids.push(d.envelope.id.clone());
        d.ack().await.unwrap();
    }
    ids
}

/// A config with `bound` under `[dead_letters]` whose router takes one
/// message at a time, so refusals reach the queue in the order sent.
fn one_at_a_time(bound: &str) -> String {
    format!("[dead_letters]\n{bound}\n[router]\nprefetch = 1\n")
}

async fn the_dead_letter_queue_keeps_only_its_newest_letters_past_its_length(fx: &Fixture) {
    let bus = TestBus::start_with(fx, &one_at_a_time("max_length = 3")).await;
    let sent = refuse_and_stop(fx, bus, 5, "{}").await;
    assert_eq!(dead_ids(fx, 3).await, sent[2..]);
}

async fn the_dead_letter_queue_keeps_only_its_newest_letters_past_its_bytes(fx: &Fixture) {
    // Each copy's body is 992 bytes: two fit in 2,500, three do not.
    let bus = TestBus::start_with(fx, &one_at_a_time("max_length_bytes = 2500")).await;
    let body = "x".repeat(990);
    let sent = refuse_and_stop(fx, bus, 5, &body).await;
    assert_eq!(dead_ids(fx, 2).await, sent[3..]);
}

tollgate_tests::on_both_transports!(
    a_refused_request_s_copy_carries_the_verdict_and_nothing_hostile,
    the_dead_letter_queue_keeps_only_its_newest_letters_past_its_length,
    the_dead_letter_queue_keeps_only_its_newest_letters_past_its_bytes
);

// === A service's refusal ===

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes()))
}

/// A raw AMQP header table: a table nested `depth` deep, credentials in two
/// letter cases, forged bus and broker headers, and one plain header.
fn hostile_table(depth: usize, token: &str) -> FieldTable {
    let mut deep = text("bottom");
    for _ in 0..depth {
        let mut level = FieldTable::default();
        level.insert("t".into(), deep);
        deep = AMQPValue::FieldTable(level);
    }
    let mut table = FieldTable::default();
    table.insert("deep".into(), deep);
    table.insert("authorization".into(), text(&format!("Bearer {token}")));
    table.insert("Authorization".into(), text(&format!("Bearer {token}")));
    table.insert(headers::ROUTE.into(), text("orders.create"));
    table.insert(headers::CONSUMER.into(), text("admin"));
    table.insert(headers::CODE.into(), text("ok"));
    table.insert(
        headers::X_DEATH.into(),
        AMQPValue::FieldArray(FieldArray::from(vec![text("old")])),
    );
    table.insert(headers::X_DELIVERY_COUNT.into(), AMQPValue::LongLongInt(3));
    table.insert("trace-id".into(), text("t-sdk"));
    table
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_an_sdk_service_refuses_leaves_one_sanitized_copy() {
    let fx = Fixture::amqp().await;
    let bus = TestBus::start(&fx).await;
    let service_conn = fx.connect().await;
    let orders = bus
        .run_orders(std::sync::Arc::clone(&service_conn), |b| b)
        .await;
    let tr = fx.transport().as_ref();
    let service_queue = bus.names.service_queue("orders");

    // Straight onto the service queue, around the router, with a raw client.
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    // 100 levels: past what AMQP carries onward (32) and what a copy keeps
    // (8); deeper tables need deep-stack processes (`hostile_headers.rs`), as
    // lapin in this test process parses on 2 MiB threads.
    let properties = BasicProperties::default()
        .with_message_id("bypass-1".into())
        .with_content_type("application/json".into())
        .with_headers(hostile_table(100, &bus.token("web")));
    let body = br#"{"customer":{"id":"c-1"},"items":[{"sku":"widget","qty":1}]}"#;
    channel
        .basic_publish(
            "".into(),
            service_queue.as_str().into(),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    connection.close(200, "done".into()).await.unwrap();

    let mut dead = tr
        .subscribe(bus.names.dead_queue(), SubscribeOptions::prefetch(10))
        .await
        .unwrap();
    let copy = recv(&mut dead, "the service's copy of the bypass message").await;
    let c = &copy.envelope;
    assert_eq!(c.id, "bypass-1");
    assert_eq!(c.headers.get_str(headers::CODE), Some("not_from_bus"));
    assert_eq!(c.headers.get_str(headers::STAGE), Some("service"));
    assert_eq!(c.headers.get_str(headers::ROUTE), Some("orders.create"));
    assert_sanitized(c, "the service's copy");
    assert!(c.headers.get("deep").is_none(), "the deep table was copied");
    assert!(c.headers.get_str(headers::HEADERS_DROPPED).is_some());
    assert_eq!(c.headers.get_str("trace-id"), Some("t-sdk"));
    assert_eq!(&c.payload[..], body);
    copy.ack().await.unwrap();

    // The service acked the original; with every consumer cancelled, the
    // copy was the only one and nothing waits in the service queue.
    drop(dead);
    orders.shutdown().await.unwrap();
    wait_until(
        "the service's consumer to go",
        Duration::from_secs(10),
        async || tr.inspect(&service_queue).await.unwrap().consumers == 0,
    )
    .await;
    assert_eq!(tr.inspect(&service_queue).await.unwrap().messages, 0);
    assert_eq!(
        tr.inspect(bus.names.dead_queue()).await.unwrap().messages,
        0,
        "more than one copy (the broker's dead-lettering too?)"
    );
    bus.stop().await;
    service_conn.close().await.unwrap();
    fx.cleanup().await;
}
