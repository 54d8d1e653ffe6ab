//! Attacks on the reply path, through the real router: a request cannot make
//! the router write into another caller's queue, and a service cannot use a
//! reply context for anything but one reply to the request it came with.

// The cases are plain async fns instantiated per transport by
// `on_both_transports!`; a failed expectation must panic.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tollgate_bus::{
    Address, BusNames, Envelope, ReplyKey, SubscribeOptions, Subscription, Transport,
    config::Config, headers, router::Router,
};
use tollgate_tests::{
    conformance::transport::recv,
    support::{Fixture, TestBus, wait_until},
};

/// Unauthenticated requests naming the victim's queue (the flood of the report).
const FLOOD: usize = 200;

async fn a_request_cannot_make_the_router_write_into_another_callers_queue(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let tr = fx.transport().as_ref();
    bus.register(tr, "orders", "application/json", "2").await;
    let (victim, victim_replies) = bus.countable_caller_queue(fx).await;
    let (attacker, _attacker_replies) = bus.caller_queue(tr).await;
    let victim_queue = victim.queue(&bus.names);
    let web = bus.token("web");

    // An authenticated caller names the victim's queue: without a key, with
    // its own key, with a key that is not base64, with the queue id as key.
    let mut attacks = Vec::new();
    for key in [
        None,
        Some(attacker.secret()),
        Some("%%%"),
        Some(victim.id()),
    ] {
        let mut request = bus.request(&json!({"sku": "a"}), Some(&web), None);
        request.reply_to = Some(victim_queue.clone());
        if let Some(key) = key {
            request.headers.insert(headers::REPLY_KEY, key);
        }
        attacks.push(request);
    }
    // And a flood of unauthenticated requests naming it.
    for _ in 0..FLOOD {
        let mut request = bus.request(&json!({"sku": "a"}), None, None);
        request.reply_to = Some(victim_queue.clone());
        attacks.push(request);
    }
    for request in &attacks {
        bus.send(tr, "orders.get", request).await;
    }
    let expected = u32::try_from(attacks.len()).unwrap();
    wait_until(
        "every attack refused into the dead-letter queue",
        Duration::from_secs(60),
        async || bus.dead_letters(tr).await >= expected,
    )
    .await;

    // The victim's own request still gets its (error) reply: the first and
    // only message its queue ever holds.
    let own = bus.request(&json!({"sku": "a"}), None, Some(&victim));
    bus.send(tr, "orders.get", &own).await;
    let mut victim_replies = victim_replies;
    let first = recv(&mut victim_replies, "the victim's own error reply").await;
    assert_eq!(first.envelope.correlation_id, own.correlation_id);
    assert_eq!(
        first.envelope.headers.get_str(headers::ERROR),
        Some("token_missing")
    );
    first.ack().await.unwrap();
    let names = bus.names.clone();
    bus.stop().await;
    drop(victim_replies);
    assert_eq!(
        tr.inspect(&victim_queue).await.unwrap().messages,
        0,
        "the victim received something it did not ask for"
    );
    assert_eq!(bad_reply_to_copies(tr, &names, expected).await, expected);
    assert_eq!(
        tr.inspect(&names.service_queue("orders"))
            .await
            .unwrap()
            .messages,
        0,
        "no attack reached the service"
    );
}

/// How many of the first `n` dead letters say `bad_reply_to` (none carries a reply key).
async fn bad_reply_to_copies(tr: &dyn Transport, names: &BusNames, n: u32) -> u32 {
    let mut dead = tr
        .subscribe(names.dead_queue(), SubscribeOptions::prefetch(500))
        .await
        .unwrap();
    let mut bad_reply_to = 0;
    for _ in 0..n {
        let copy = recv(&mut dead, "a dead-letter copy").await;
        if copy.envelope.headers.get_str(headers::CODE) == Some("bad_reply_to") {
            bad_reply_to += 1;
        }
        assert!(
            copy.envelope.headers.get(headers::REPLY_KEY).is_none(),
            "a reply key in a dead-letter copy"
        );
        copy.ack().await.unwrap();
    }
    bad_reply_to
}

/// A service's reply carrying `context`, answering `correlation_id`.
fn reply(context: &str, correlation_id: &str, body: &str) -> Envelope {
    let mut reply = Envelope::new(body.to_owned())
        .with_content_type("application/json")
        .with_correlation_id(correlation_id)
        .transient();
    reply.headers.insert(headers::REPLY_CONTEXT, context);
    reply
}

/// Stops the bus, then counts what is left in `caller`'s queue once its
/// consumer is gone: replies nobody should have sent it.
async fn left_for_the_caller(
    tr: &dyn Transport,
    bus: TestBus,
    caller: &ReplyKey,
    replies: Subscription,
) -> u32 {
    let queue = caller.queue(&bus.names);
    bus.stop().await;
    drop(replies);
    tr.inspect(&queue).await.unwrap().messages
}

/// A bus whose `orders` service the test plays, a caller's queue and the
/// dead letters, all subscribed.
struct Calls {
    bus: TestBus,
    service: Subscription,
    caller: ReplyKey,
    replies: Subscription,
    dead: Subscription,
}

impl Calls {
    /// Starts the bus with `config` on top of the test bus's.
    async fn start(fx: &Fixture, config: &str) -> Self {
        let bus = TestBus::start_with(fx, config).await;
        let tr = fx.transport().as_ref();
        bus.register(tr, "orders", "application/json", "2").await;
        let service = tr
            .subscribe(
                &bus.names.service_queue("orders"),
                SubscribeOptions::default(),
            )
            .await
            .unwrap();
        let (caller, replies) = bus.countable_caller_queue(fx).await;
        let dead = tr
            .subscribe(bus.names.dead_queue(), SubscribeOptions::default())
            .await
            .unwrap();
        Self {
            bus,
            service,
            caller,
            replies,
            dead,
        }
    }
}

/// A held call's context is taken only while the router holds the call:
/// its replay finds the hold gone.
async fn a_held_calls_reply_context_answers_its_own_request_once(fx: &Fixture) {
    answers_its_own_request_once(fx, "", "not held here").await;
}

/// A call delivered durably is remembered in the set of used contexts.
async fn a_durable_calls_reply_context_answers_its_own_request_once(fx: &Fixture) {
    answers_its_own_request_once(fx, "[router]\nhold_calls = 0\n", "already used").await;
}

/// Replies with the contexts of two requests through a router configured by
/// `config`: each answers its own request once; a replay is refused with a
/// reason containing `replayed`.
async fn answers_its_own_request_once(fx: &Fixture, config: &str, replayed: &str) {
    let tr = fx.transport().as_ref();
    let Calls {
        bus,
        mut service,
        caller,
        mut replies,
        mut dead,
    } = Calls::start(fx, config).await;
    let first = bus.request(&json!({"n": 1}), Some(&bus.token("web")), Some(&caller));
    let second = bus.request(&json!({"n": 2}), Some(&bus.token("web")), Some(&caller));
    bus.send(tr, "orders.get", &first).await;
    bus.send(tr, "orders.get", &second).await;
    let mut contexts = Vec::new();
    for _ in 0..2 {
        let d = recv(&mut service, "a request at the service").await;
        let context = d
            .envelope
            .headers
            .get_str(headers::REPLY_CONTEXT)
            .unwrap()
            .to_owned();
        assert!(
            d.envelope.headers.get(headers::REPLY_KEY).is_none(),
            "the caller's reply key reached the service"
        );
        contexts.push((d.envelope.correlation_id.clone().unwrap(), context));
        d.ack().await.unwrap();
    }
    contexts.sort_by_key(|(correlation, _)| *correlation != first.correlation_id.clone().unwrap());
    let [
        (first_correlation, first_context),
        (second_correlation, second_context),
    ] = <[_; 2]>::try_from(contexts).unwrap();

    // Opaque: nothing of the caller's queue or format is readable in it.
    let raw = URL_SAFE_NO_PAD.decode(&first_context).unwrap();
    let readable = String::from_utf8_lossy(&raw);
    assert!(
        !readable.contains(caller.id()),
        "the caller's queue is readable"
    );
    assert!(!readable.contains("application/json"));

    let to_replies = Address::queue(bus.names.replies_queue());
    let refused = async |dead: &mut Subscription, what: &str| {
        let copy = recv(dead, what).await;
        assert_eq!(
            copy.envelope.headers.get_str(headers::CODE),
            Some("not_from_bus"),
            "{what}"
        );
        let reason = copy
            .envelope
            .headers
            .get_str(headers::REASON)
            .unwrap()
            .to_owned();
        copy.ack().await.unwrap();
        reason
    };

    // The first context answers the first request, once.
    let answer = reply(&first_context, &first_correlation, r#"{"n":1}"#);
    tr.publish(&to_replies, &answer).await.unwrap();
    let got = recv(&mut replies, "the reply to the first request").await;
    assert_eq!(
        got.envelope.correlation_id.as_deref(),
        Some(first_correlation.as_str())
    );
    got.ack().await.unwrap();
    tr.publish(&to_replies, &answer).await.unwrap();
    let why = refused(&mut dead, "the replayed reply").await;
    assert!(why.contains(replayed), "{why}");
    let forged = reply(&first_context, &first_correlation, r#"{"forged":"error"}"#);
    tr.publish(&to_replies, &forged).await.unwrap();
    let why = refused(&mut dead, "a second, different reply with the same context").await;
    assert!(why.contains(replayed), "{why}");

    // It cannot answer another request, error reply or not.
    let mut cross = reply(&first_context, &second_correlation, r#"{"error":{}}"#);
    cross.headers.insert(headers::ERROR, "forbidden");
    tr.publish(&to_replies, &cross).await.unwrap();
    let why = refused(&mut dead, "the first context on the second request").await;
    assert!(why.contains("correlation id"), "{why}");

    // The second request's own context still works.
    tr.publish(
        &to_replies,
        &reply(&second_context, &second_correlation, r#"{"n":2}"#),
    )
    .await
    .unwrap();
    let got = recv(&mut replies, "the reply to the second request").await;
    assert_eq!(
        got.envelope.correlation_id.as_deref(),
        Some(second_correlation.as_str())
    );
    got.ack().await.unwrap();

    assert_eq!(
        left_for_the_caller(tr, bus, &caller, replies).await,
        0,
        "the caller got a forged reply"
    );
}

async fn a_reply_after_the_reply_timeout_is_refused(fx: &Fixture) {
    let tr = fx.transport().as_ref();
    let Calls {
        bus,
        mut service,
        caller,
        replies,
        mut dead,
    } = Calls::start(fx, "[router]\nreply_timeout_secs = 1").await;
    let request = bus.request(&json!({"n": 1}), Some(&bus.token("web")), Some(&caller));
    bus.send(tr, "orders.get", &request).await;
    let d = recv(&mut service, "the request").await;
    let context = d
        .envelope
        .headers
        .get_str(headers::REPLY_CONTEXT)
        .unwrap()
        .to_owned();
    let correlation = d.envelope.correlation_id.clone().unwrap();
    d.ack().await.unwrap();
    // The context's expiry is in whole seconds: past it, once the clock moved on by two.
    let sealed_at = tollgate_tests::support::now();
    wait_until(
        "the reply timeout to pass",
        Duration::from_secs(10),
        async || tollgate_tests::support::now() >= sealed_at + 2,
    )
    .await;
    tr.publish(
        &Address::queue(bus.names.replies_queue()),
        &reply(&context, &correlation, "{}"),
    )
    .await
    .unwrap();
    let copy = recv(&mut dead, "the late reply").await;
    assert_eq!(
        copy.envelope.headers.get_str(headers::REASON),
        Some("reply context expired")
    );
    copy.ack().await.unwrap();
    assert_eq!(
        left_for_the_caller(tr, bus, &caller, replies).await,
        0,
        "the caller got the late reply"
    );
}

/// A held call's reply is taken only by the router that holds the call, and
/// only once: replayed into another router's own replies queue, or into the
/// shared one, it is refused — no router keeps a record of the context, the
/// hold is the record.
async fn a_held_calls_reply_replayed_through_another_router_is_refused(fx: &Fixture) {
    let tr = fx.transport().as_ref();
    let Calls {
        bus,
        mut service,
        caller,
        mut replies,
        mut dead,
    } = Calls::start(fx, "").await;
    // Router A (the test bus's) takes and holds the call…
    let request = bus.request(&json!({"n": 1}), Some(&bus.token("web")), Some(&caller));
    bus.send(tr, "orders.get", &request).await;
    let held = recv(&mut service, "the held call").await;
    let held_reply_to = held.envelope.reply_to.clone().unwrap();
    assert!(
        bus.names.is_router_replies_queue(&held_reply_to),
        "the call is held: {held_reply_to}"
    );
    let answer = reply(
        held.envelope
            .headers
            .get_str(headers::REPLY_CONTEXT)
            .unwrap(),
        held.envelope.correlation_id.as_deref().unwrap(),
        r#"{"n":1}"#,
    );
    held.ack().await.unwrap();

    // …while router B of the same bus runs beside it, its instance known.
    let config_b = bus.dir.join("tollgate-b.toml");
    let config = std::fs::read_to_string(bus.config_path()).unwrap();
    std::fs::write(&config_b, format!("instance = \"b\"\n{config}")).unwrap();
    let stop_b = CancellationToken::new();
    let router_b = Router::from_config(&Config::load(&config_b).unwrap())
        .unwrap()
        .start(fx.connect().await, stop_b.clone())
        .await
        .unwrap();

    // The service's reply passes A, once.
    tr.publish(&Address::queue(held_reply_to.as_str()), &answer)
        .await
        .unwrap();
    let got = recv(&mut replies, "the reply").await;
    assert_eq!(got.envelope.correlation_id, request.correlation_id);
    got.ack().await.unwrap();

    // Replayed into B's own queue, and into the shared one (A's or B's).
    for queue in [
        bus.names.router_replies_queue("b"),
        bus.names.replies_queue().to_owned(),
    ] {
        tr.publish(&Address::queue(queue.as_str()), &answer)
            .await
            .unwrap();
        let copy = recv(&mut dead, "the replayed reply's dead-letter copy").await;
        assert_eq!(
            copy.envelope.headers.get_str(headers::CODE),
            Some("not_from_bus"),
            "replayed into {queue}"
        );
        let reason = copy.envelope.headers.get_str(headers::REASON).unwrap();
        assert!(reason.contains("not held here"), "{reason}");
        copy.ack().await.unwrap();
    }

    stop_b.cancel();
    router_b.wait().await.unwrap();
    assert_eq!(
        left_for_the_caller(tr, bus, &caller, replies).await,
        0,
        "the caller got a replayed reply"
    );
}

async fn a_context_sealed_by_one_router_opens_on_another_whose_key_file_is_laid_out_differently(
    fx: &Fixture,
) {
    // Router A delivers durably: a call it held would go back to the ingress
    // queue when it stops, and router B would deliver it again.
    let bus = TestBus::prepare(fx, "[router]\nhold_calls = 0\n").await;
    let tr = fx.transport().as_ref();
    // The same bus key, written another way: CRLF line ends, blank lines, indentation.
    let pem = std::fs::read_to_string(bus.dir.join("bus.pem")).unwrap();
    let relaid: String = pem
        .lines()
        .map(|line| format!("  {line}\r\n\r\n"))
        .collect();
    std::fs::write(bus.dir.join("bus-copy.pem"), relaid).unwrap();
    let copy_config = bus.dir.join("tollgate-copy.toml");
    let config = std::fs::read_to_string(bus.config_path()).unwrap();
    assert!(config.contains("\"bus.pem\""));
    std::fs::write(
        &copy_config,
        config.replace("\"bus.pem\"", "\"bus-copy.pem\""),
    )
    .unwrap();
    // Each router on a connection of its own, as two router processes are:
    // one stopping router's channels closing beside the next one's opening
    // on a shared connection made the broker close it once in CI
    // ("CHANNEL_ERROR - expected 'channel.open'").
    let start = async |path: &std::path::Path, shutdown: &CancellationToken| {
        Router::from_config(&Config::load(path).unwrap())
            .unwrap()
            .start(fx.connect().await, shutdown.clone())
            .await
            .unwrap()
    };

    // Router A seals the request's context…
    let stop_a = CancellationToken::new();
    let router_a = start(&bus.config_path(), &stop_a).await;
    bus.announce(tr, "orders", "application/json", "2").await;
    wait_until(
        "the service to be routable",
        Duration::from_secs(20),
        async || router_a.registry.resolve("orders").is_some(),
    )
    .await;
    let mut service = tr
        .subscribe(
            &bus.names.service_queue("orders"),
            SubscribeOptions::default(),
        )
        .await
        .unwrap();
    let (caller, mut replies) = bus.caller_queue(tr).await;
    let request = bus.request(&json!({"n": 1}), Some(&bus.token("web")), Some(&caller));
    bus.send(tr, "orders.get", &request).await;
    let d = recv(&mut service, "the request").await;
    let context = d
        .envelope
        .headers
        .get_str(headers::REPLY_CONTEXT)
        .unwrap()
        .to_owned();
    let correlation = d.envelope.correlation_id.clone().unwrap();
    d.ack().await.unwrap();
    stop_a.cancel();
    router_a.wait().await.unwrap();

    // …router B, whose key file holds the same key laid out differently, opens it.
    let stop_b = CancellationToken::new();
    let router_b = start(&copy_config, &stop_b).await;
    tr.publish(
        &Address::queue(bus.names.replies_queue()),
        &reply(&context, &correlation, r#"{"n":1}"#),
    )
    .await
    .unwrap();
    let got = recv(&mut replies, "the reply forwarded by the other router").await;
    assert_eq!(
        got.envelope.correlation_id.as_deref(),
        Some(correlation.as_str())
    );
    assert_eq!(got.envelope.payload.as_ref(), br#"{"n":1}"#);
    got.ack().await.unwrap();
    stop_b.cancel();
    router_b.wait().await.unwrap();
    assert_eq!(bus.dead_letters(tr).await, 0, "nothing refused");
    bus.stop().await;
}

tollgate_tests::on_both_transports!(
    a_context_sealed_by_one_router_opens_on_another_whose_key_file_is_laid_out_differently,
    a_request_cannot_make_the_router_write_into_another_callers_queue,
    a_held_calls_reply_context_answers_its_own_request_once,
    a_held_calls_reply_replayed_through_another_router_is_refused,
    a_durable_calls_reply_context_answers_its_own_request_once,
    a_reply_after_the_reply_timeout_is_refused
);
