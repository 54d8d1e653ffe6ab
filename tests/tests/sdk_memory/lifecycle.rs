//! Registration and heartbeats, graceful shutdown, poison messages.

#![allow(clippy::unwrap_used)]

use super::*;

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
    let token = bus.router.registration_token("orders-svc");
    let service = orders(&bus.router, Arc::default())
        .credential(token.as_str())
        .heartbeat(Duration::from_millis(50));
    let running = bus.serve(service).await;
    let bearer = format!("Bearer {token}");

    let mut next = async |what: &str| {
        let d = recv(&mut control, what).await;
        let a = Announcement::from_bytes(&d.envelope.payload).unwrap();
        if a != Announcement::Discover {
            assert_eq!(
                d.envelope.headers.get_str(headers::AUTHORIZATION),
                Some(bearer.as_str()),
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
    let service = orders(&bus.router, Arc::default()).handler("slow", move |req: Request<u32>| {
        let (started, held) = (started_tx.clone(), Arc::clone(&held));
        async move {
            started.send(()).ok();
            held.notified().await;
            Ok::<_, HandlerError>(req.body + 1)
        }
    });
    let running = bus.serve(service).await;
    let alice = as_alice(&bus);
    let request = bus.caller.request::<u32, u32>("orders.slow", &41, &alice);
    let stop = async {
        // Bounded: a refused request (the gate said no) must fail the test, not hang it.
        let handler = tokio::time::timeout(sdk_common::WAIT, started.recv()).await;
        handler.expect("the handler to start").unwrap();
        let shutdown = tokio::spawn(running.shutdown());
        // Deregistration comes first; then the service stops consuming and waits.
        loop {
            let d = recv(&mut control, "the deregistration").await;
            let a = Announcement::from_bytes(&d.envelope.payload).unwrap();
            if matches!(a, Announcement::Deregister { .. }) {
                break;
            }
        }
        // Deregistered, it drains: still running while the handler is held
        // (checked at that milestone, not after a sleep).
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
    // The real router admits the service, then stops: with no router and the
    // replies queue deleted, every reply is unroutable. The broker's delivery
    // limit is the quorum queues' safety net.
    let fx = Fixture::memory().await;
    let router = TestBus::start_with(&fx, "queue_type = \"quorum\"").await;
    let names = router.names.clone();
    assert_eq!(names.queue_type(), tollgate_bus::QueueKind::Quorum);
    let calls = Arc::new(AtomicUsize::new(0));
    let running = orders(&router, Arc::clone(&calls))
        .build()
        .unwrap()
        .run(fx.transport().clone(), names.clone())
        .await
        .unwrap();
    router.wait_registered("orders").await;
    let signer = router.assertion_signer();
    router.stop().await;
    let tr = fx.transport();
    let replies =
        tollgate_bus::Topology::new().queue(tollgate_bus::QueueSpec::quorum(names.replies_queue()));
    tr.delete(&replies).await.unwrap();
    // No router runs here: the broker's dead letter stays raw in the poison
    // queue (a router would record it clean in `<ns>.dead`).
    let mut dead = tr
        .subscribe(names.poison_queue(), SubscribeOptions::default())
        .await
        .unwrap();

    let mut env = Envelope::new(r#"{"item":"widget","qty":1}"#)
        .with_content_type("application/json")
        .with_correlation_id("c-1")
        .with_reply_to(names.replies_queue());
    let token = signer
        .sign(&identity_of("alice"), "orders.create", &env.id)
        .unwrap();
    env.headers.insert(headers::ROUTE, "orders.create");
    env.headers.insert(headers::ASSERTION, token);
    // The service replies into the replies queue only beside a reply context
    // (opaque to it; the router would check it).
    env.headers
        .insert(headers::REPLY_CONTEXT, "sealed-by-the-router");
    tr.publish(&Address::new(names.deliver_exchange(), "orders"), &env)
        .await
        .unwrap();

    let d = recv(&mut dead, "the message in the poison queue").await;
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
