//! The service SDK and the caller on the memory transport, with a stand-in router.

// Test code: a failed expectation should panic loudly.
#![allow(clippy::unwrap_used)]

mod sdk_common;

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use sdk_common::{Bus, BusKeys, bus, identity_of, recv, stays_quiet};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};
use tollgate_auth::{
    Algorithm,
    testkit::{TestClock, TestKit},
};
use tollgate_bus::{
    Address, BusNames, Envelope, ErrorBody, SubscribeOptions, bus_topology, headers,
    registry::Announcement,
};
use tollgate_services::{
    CallError, HandlerError, Request, RequestOptions, Service, ServiceBuilder,
};
use tollgate_tests::support::Fixture;

#[derive(Debug, Serialize, Deserialize)]
struct Create {
    item: String,
    qty: u32,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Created {
    item: String,
    qty: u32,
    by: String,
}

/// `orders.create`: refuses a quantity of 0 with `out_of_stock`; `orders.explode` panics.
fn orders(keys: &BusKeys, calls: Arc<AtomicUsize>) -> ServiceBuilder {
    let explode_calls = Arc::clone(&calls);
    Service::builder("orders")
        .credential("svc-orders-token")
        .bus_key(keys.verifier.clone())
        .handler("create", move |req: Request<Create>| {
            let calls = Arc::clone(&calls);
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                if req.body.qty == 0 {
                    return Err(HandlerError::new("out_of_stock", "none left"));
                }
                Ok(Created {
                    item: req.body.item,
                    qty: req.body.qty,
                    by: req.identity.consumer,
                })
            }
        })
        .handler("explode", move |req: Request<Create>| {
            explode_calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if req.body.qty > 0 {
                    panic!("the handler exploded");
                }
                Ok::<_, HandlerError>(())
            }
        })
}

fn as_alice() -> RequestOptions {
    RequestOptions::with_token("alice")
}

fn create(item: &str, qty: u32) -> Create {
    Create {
        item: item.into(),
        qty,
    }
}

fn rejected_code(result: Result<Created, CallError>) -> (String, String) {
    match result {
        Err(CallError::Rejected { code, stage, .. }) => (code, stage),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_request_round_trips_with_the_verified_identity() {
    let bus = bus().await;
    let service = orders(&bus.keys, Arc::default()).build().unwrap();
    let running = service
        .run(bus.fx.transport().clone(), bus.names.clone())
        .await
        .unwrap();
    let created: Created = bus
        .caller
        .request("orders.create", &create("widget", 3), &as_alice())
        .await
        .unwrap();
    assert_eq!(
        created,
        Created {
            item: "widget".into(),
            qty: 3,
            by: "alice".into()
        }
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_on_one_caller_each_get_their_own_reply() {
    let bus = bus().await;
    let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (n, m) = (Arc::clone(&now), Arc::clone(&max));
    let service = Service::builder("calc")
        .credential("svc-calc-token")
        .bus_key(bus.keys.verifier.clone())
        .prefetch(4)
        .handler("double", move |req: Request<u64>| {
            let (now, max) = (Arc::clone(&n), Arc::clone(&m));
            async move {
                max.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, HandlerError>(req.body * 2)
            }
        })
        .build()
        .unwrap();
    let running = service
        .run(bus.fx.transport().clone(), bus.names.clone())
        .await
        .unwrap();
    let calls = (0..40u64).map(|i| {
        let caller = &bus.caller;
        async move {
            let doubled: u64 = caller
                .request("calc.double", &i, &as_alice())
                .await
                .unwrap();
            (i, doubled)
        }
    });
    for (i, doubled) in futures_util::future::join_all(calls).await {
        assert_eq!(doubled, i * 2);
    }
    let most = max.load(Ordering::SeqCst);
    assert!(
        (2..=4).contains(&most),
        "handlers ran {most} at once; expected concurrency bounded by the prefetch of 4"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_unknown_methods_and_bad_bodies_are_typed_rejections() {
    let bus = bus().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let service = orders(&bus.keys, Arc::clone(&calls)).build().unwrap();
    let running = service
        .run(bus.fx.transport().clone(), bus.names.clone())
        .await
        .unwrap();
    let out_of_stock = bus
        .caller
        .request("orders.create", &create("widget", 0), &as_alice())
        .await;
    assert_eq!(
        rejected_code(out_of_stock),
        ("out_of_stock".into(), "service".into())
    );
    let unknown = bus
        .caller
        .request("orders.refund", &create("widget", 1), &as_alice())
        .await;
    assert_eq!(rejected_code(unknown).0, "unknown_method");
    let bad = bus
        .caller
        .request("orders.create", &"not an order", &as_alice())
        .await;
    assert_eq!(rejected_code(bad).0, "bad_payload");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "only the decodable request ran"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_handler_failed_and_the_service_keeps_serving() {
    let bus = bus().await;
    let service = orders(&bus.keys, Arc::default()).build().unwrap();
    let running = service
        .run(bus.fx.transport().clone(), bus.names.clone())
        .await
        .unwrap();
    for _ in 0..3 {
        let exploded = bus
            .caller
            .request("orders.explode", &create("bomb", 1), &as_alice())
            .await;
        assert_eq!(
            rejected_code(exploded),
            ("handler_failed".into(), "service".into())
        );
    }
    let created: Created = bus
        .caller
        .request("orders.create", &create("widget", 1), &as_alice())
        .await
        .unwrap();
    assert_eq!(created.by, "alice");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_and_forget_publish_reaches_the_handler_without_a_reply() {
    let bus = bus().await;
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let service = orders(&bus.keys, Arc::default())
        .handler("note", move |req: Request<String>| {
            let seen = seen_tx.clone();
            async move {
                seen.send((req.body, req.identity.consumer, req.correlation_id))
                    .ok();
                Ok::<_, HandlerError>(())
            }
        })
        .build()
        .unwrap();
    let running = service
        .run(bus.fx.transport().clone(), bus.names.clone())
        .await
        .unwrap();
    bus.caller
        .publish("orders.note", "remember the milk", &as_alice())
        .await
        .unwrap();
    let got = tokio::time::timeout(sdk_common::WAIT, seen.recv()).await;
    assert_eq!(
        got.unwrap().unwrap(),
        ("remember the milk".to_owned(), "alice".to_owned(), None)
    );
    running.shutdown().await.unwrap();
}

/// Messages put straight onto the service queue, each with a different flaw.
fn bypass_attempts(bus: &Bus, reply_to: &str) -> Vec<(&'static str, Envelope)> {
    let signer = &bus.keys.signer;
    let alice = identity_of("alice");
    let message = |route: &str| {
        let mut env = Envelope::new(r#"{"item":"free","qty":1}"#)
            .with_content_type("application/json")
            .with_correlation_id(uuid::Uuid::new_v4().to_string())
            .with_reply_to(reply_to);
        env.headers.insert(headers::ROUTE, route);
        env
    };
    let with_assertion = |mut env: Envelope, token: String| {
        env.headers.insert(headers::ASSERTION, token);
        env
    };
    let mut no_assertion = message("orders.create");
    no_assertion.headers.insert(headers::CONSUMER, "admin");
    no_assertion.headers.insert(headers::AUTH_MODE, "service");
    let forged = {
        let env = message("orders.create");
        let token = BusKeys::generate()
            .signer
            .sign(&alice, "orders.create", &env.id);
        with_assertion(env, token.unwrap())
    };
    let other_route = {
        let env = message("orders.create");
        let token = signer.sign(&alice, "orders.explode", &env.id);
        with_assertion(env, token.unwrap())
    };
    let other_message = {
        let env = message("orders.create");
        let token = signer.sign(&alice, "orders.create", "another-message");
        with_assertion(env, token.unwrap())
    };
    let expired = {
        let env = message("orders.create");
        let past = signer
            .clone()
            .with_clock(Arc::new(TestClock::new(TestKit::NOW)));
        let token = past.sign(&alice, "orders.create", &env.id);
        with_assertion(env, token.unwrap())
    };
    let other_service = {
        let env = message("billing.pay");
        let token = signer.sign(&alice, "billing.pay", &env.id);
        with_assertion(env, token.unwrap())
    };
    vec![
        ("no assertion, forged identity headers", no_assertion),
        ("assertion signed by another key", forged),
        ("assertion for another route", other_route),
        ("assertion for another message", other_message),
        ("expired assertion", expired),
        ("valid assertion for another service", other_service),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_published_around_the_router_are_refused_and_dead_lettered() {
    let bus = bus().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let service = orders(&bus.keys, Arc::clone(&calls)).build().unwrap();
    let running = service
        .run(bus.fx.transport().clone(), bus.names.clone())
        .await
        .unwrap();
    let tr = bus.fx.transport();
    let intruder = bus.names.caller_queue("intruder");
    bus.fx
        .declare(&bus_topology::caller(&bus.names, "intruder"))
        .await
        .unwrap();
    bus.fx
        .declare(&bus_topology::service(&bus.names, "billing"))
        .await
        .unwrap();
    let mut replies = tr
        .subscribe(&intruder, SubscribeOptions::default())
        .await
        .unwrap();
    let mut dead = tr
        .subscribe(&bus.names.dead_queue(), SubscribeOptions::default())
        .await
        .unwrap();

    let queue = Address::queue(bus.names.service_queue("orders"));
    let mut expected = BTreeSet::new();
    for (what, env) in bypass_attempts(&bus, &intruder) {
        expected.insert(env.id.clone());
        tr.publish(&queue, &env).await.unwrap();
        let refusal = recv(&mut replies, what).await;
        let body = ErrorBody::from_envelope(&refusal.envelope).expect("an error reply");
        assert_eq!(body.error.code, "not_from_bus", "{what}");
        assert_eq!(
            refusal.envelope.correlation_id, env.correlation_id,
            "{what}"
        );
        refusal.ack().await.unwrap();
    }
    // A refused message never writes into a queue the router would refuse as reply_to.
    let into_billing = bypass_attempts(&bus, &bus.names.service_queue("billing"))
        .swap_remove(0)
        .1;
    expected.insert(into_billing.id.clone());
    tr.publish(&queue, &into_billing).await.unwrap();

    let mut dead_ids = BTreeSet::new();
    for _ in 0..expected.len() {
        let d = recv(&mut dead, "a refused message in the dead-letter queue").await;
        assert_eq!(
            d.envelope.headers.get_str(headers::X_FIRST_DEATH_REASON),
            Some("rejected")
        );
        dead_ids.insert(d.envelope.id.clone());
        d.ack().await.unwrap();
    }
    assert_eq!(dead_ids, expected);
    let billing = tr
        .inspect(&bus.names.service_queue("billing"))
        .await
        .unwrap();
    assert_eq!(
        billing.messages, 0,
        "no refusal was written into another service's queue"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "no handler saw a bypass message"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_mode_accepts_a_valid_token_and_refuses_a_bad_one() {
    let bus = bus().await;
    let kit = TestKit::new();
    let alice = kit.consumer("alice", Algorithm::ES256);
    let service = Service::builder("ledger")
        .credential("svc-ledger-token")
        .verifier(Arc::new(kit.verifier()))
        .handler("whoami", |req: Request<()>| async move {
            Ok::<_, HandlerError>(req.identity.consumer)
        })
        .build()
        .unwrap();
    let running = service
        .run(bus.fx.transport().clone(), bus.names.clone())
        .await
        .unwrap();
    let tr = bus.fx.transport();
    bus.fx
        .declare(&bus_topology::caller(&bus.names, "probe"))
        .await
        .unwrap();
    let probe = bus.names.caller_queue("probe");
    let mut replies = tr
        .subscribe(&probe, SubscribeOptions::default())
        .await
        .unwrap();
    let mut dead = tr
        .subscribe(&bus.names.dead_queue(), SubscribeOptions::default())
        .await
        .unwrap();
    // What a router in service mode delivers: the route and the caller's own token.
    let delivered = |token: String| {
        let mut env = Envelope::new("null")
            .with_content_type("application/json")
            .with_correlation_id(uuid::Uuid::new_v4().to_string())
            .with_reply_to(probe.clone());
        env.headers.insert(headers::ROUTE, "ledger.whoami");
        env.headers
            .insert(headers::AUTHORIZATION, format!("Bearer {token}"));
        env
    };
    let to = Address::new(bus.names.deliver_exchange(), "ledger");
    tr.publish(&to, &delivered(alice.sign(&kit.claims("alice"))))
        .await
        .unwrap();
    let ok = recv(&mut replies, "the reply to a valid token").await;
    assert_eq!(&ok.envelope.payload[..], br#""alice""#);
    ok.ack().await.unwrap();

    let mallory = TestKit::new().consumer("alice", Algorithm::ES256);
    let forged = delivered(mallory.sign(&kit.claims("alice")));
    tr.publish(&to, &forged).await.unwrap();
    let refused = recv(&mut replies, "the refusal of a forged token").await;
    let body = ErrorBody::from_envelope(&refused.envelope).expect("an error reply");
    assert_eq!(body.error.code, "invalid_token");
    refused.ack().await.unwrap();
    let d = recv(&mut dead, "the forged request in the dead-letter queue").await;
    assert_eq!(d.envelope.id, forged.id);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_times_out_and_keeps_working() {
    let bus = bus().await;
    let stall = Arc::new(Notify::new());
    let held = Arc::clone(&stall);
    let service = orders(&bus.keys, Arc::default())
        .handler("stall", move |_: Request<()>| {
            let held = Arc::clone(&held);
            async move {
                held.notified().await;
                Ok::<_, HandlerError>(())
            }
        })
        .build()
        .unwrap();
    let running = service
        .run(bus.fx.transport().clone(), bus.names.clone())
        .await
        .unwrap();
    let quick = as_alice().timeout(Duration::from_millis(200));
    let stalled: Result<(), _> = bus.caller.request("orders.stall", &(), &quick).await;
    assert!(
        matches!(stalled, Err(CallError::Timeout { after }) if after == Duration::from_millis(200)),
        "got {stalled:?}"
    );
    // The late reply is dropped; the caller still serves other requests.
    stall.notify_one();
    let created: Created = bus
        .caller
        .request("orders.create", &create("widget", 1), &as_alice())
        .await
        .unwrap();
    assert_eq!(created.qty, 1);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_heartbeats_answers_discover_and_deregisters() {
    let bus = bus().await;
    let tr = bus.fx.transport();
    let listener = format!("{}.test-ctl", bus.names.namespace());
    bus.fx
        .declare(&bus_topology::control_listener(&bus.names, &listener))
        .await
        .unwrap();
    let mut control = tr
        .subscribe(&listener, SubscribeOptions::default())
        .await
        .unwrap();
    let service = orders(&bus.keys, Arc::default())
        .heartbeat(Duration::from_millis(50))
        .build()
        .unwrap();
    let running = service
        .run(bus.fx.transport().clone(), bus.names.clone())
        .await
        .unwrap();

    let mut next = async |what: &str| {
        let d = recv(&mut control, what).await;
        let a = Announcement::from_bytes(&d.envelope.payload).unwrap();
        if a != Announcement::Discover {
            assert_eq!(
                d.envelope.headers.get_str(headers::AUTHORIZATION),
                Some("Bearer svc-orders-token"),
                "every announcement of the service carries its credential"
            );
        }
        d.ack().await.unwrap();
        a
    };
    let Announcement::Register(first) = next("the registration").await else {
        panic!("the first announcement must be a registration");
    };
    assert_eq!(first.service, "orders");
    assert_eq!(first.instance, running.instance());
    assert_eq!(first.content_type, "application/json");
    assert_eq!(first.ttl_secs, 1);
    assert_eq!(
        next("a heartbeat").await,
        Announcement::Heartbeat(first.clone())
    );

    let discover = Announcement::Discover.to_envelope(None).unwrap();
    tr.publish(&Address::new(bus.names.control_exchange(), ""), &discover)
        .await
        .unwrap();
    loop {
        match next("the answer to discover").await {
            Announcement::Register(r) => break assert_eq!(r, first),
            Announcement::Heartbeat(_) | Announcement::Discover => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
    running.shutdown().await.unwrap();
    loop {
        match next("the deregistration").await {
            Announcement::Deregister { service, instance } => {
                assert_eq!(
                    (service.as_str(), instance.as_str()),
                    ("orders", first.instance.as_str())
                );
                break;
            }
            Announcement::Heartbeat(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        stays_quiet(&mut control, Duration::from_millis(200)).await,
        "no heartbeat after the deregistration"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_an_in_flight_handler() {
    let bus = bus().await;
    let tr = bus.fx.transport();
    let listener = format!("{}.test-ctl", bus.names.namespace());
    bus.fx
        .declare(&bus_topology::control_listener(&bus.names, &listener))
        .await
        .unwrap();
    let mut control = tr
        .subscribe(&listener, SubscribeOptions::default())
        .await
        .unwrap();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let held = Arc::clone(&release);
    let service = orders(&bus.keys, Arc::default())
        .handler("slow", move |req: Request<u32>| {
            let (started, held) = (started_tx.clone(), Arc::clone(&held));
            async move {
                started.send(()).ok();
                held.notified().await;
                Ok::<_, HandlerError>(req.body + 1)
            }
        })
        .build()
        .unwrap();
    let running = service
        .run(bus.fx.transport().clone(), bus.names.clone())
        .await
        .unwrap();
    let alice = as_alice();
    let request = bus.caller.request::<u32, u32>("orders.slow", &41, &alice);
    let stop = async {
        started.recv().await.unwrap();
        let shutdown = tokio::spawn(running.shutdown());
        // Deregistration comes first; then the service stops consuming and waits.
        loop {
            let d = recv(&mut control, "the deregistration").await;
            let a = Announcement::from_bytes(&d.envelope.payload).unwrap();
            if matches!(a, Announcement::Deregister { .. }) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !shutdown.is_finished(),
            "shutdown waits for the in-flight handler"
        );
        release.notify_one();
        shutdown.await.unwrap()
    };
    let (reply, stopped) = tokio::join!(request, stop);
    assert_eq!(reply.unwrap(), 42, "the in-flight request was answered");
    stopped.unwrap();
    let queue = bus.names.service_queue("orders");
    let info = tr.inspect(&queue).await.unwrap();
    assert_eq!((info.consumers, info.messages), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_reply_keeps_failing_is_dead_lettered_after_the_delivery_limit() {
    // No router here: the replies queue is deleted, so every reply is unroutable.
    let fx = Fixture::memory().await;
    let names = BusNames::new(fx.ns.prefix());
    fx.declare(&bus_topology::core(&names)).await.unwrap();
    let keys = BusKeys::generate();
    let calls = Arc::new(AtomicUsize::new(0));
    let running = orders(&keys, Arc::clone(&calls))
        .build()
        .unwrap()
        .run(fx.transport().clone(), names.clone())
        .await
        .unwrap();
    let tr = fx.transport();
    let replies =
        tollgate_bus::Topology::new().queue(tollgate_bus::QueueSpec::quorum(names.replies_queue()));
    tr.delete(&replies).await.unwrap();
    let mut dead = tr
        .subscribe(&names.dead_queue(), SubscribeOptions::default())
        .await
        .unwrap();

    let mut env = Envelope::new(r#"{"item":"widget","qty":1}"#)
        .with_content_type("application/json")
        .with_correlation_id("c-1")
        .with_reply_to(names.replies_queue());
    let token = keys
        .signer
        .sign(&identity_of("alice"), "orders.create", &env.id)
        .unwrap();
    env.headers.insert(headers::ROUTE, "orders.create");
    env.headers.insert(headers::ASSERTION, token);
    tr.publish(&Address::new(names.deliver_exchange(), "orders"), &env)
        .await
        .unwrap();

    let d = recv(&mut dead, "the poison message in the dead-letter queue").await;
    assert_eq!(d.envelope.id, env.id);
    assert_eq!(
        d.envelope.headers.get_str(headers::X_FIRST_DEATH_REASON),
        Some("delivery_limit")
    );
    assert!(
        calls.load(Ordering::SeqCst) > 1,
        "it was retried before it was dead-lettered"
    );
    running.shutdown().await.unwrap();
}
