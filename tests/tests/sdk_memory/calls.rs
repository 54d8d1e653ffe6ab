//! Typed calls, concurrency, typed errors, panics, fire-and-forget, timeouts.

#![allow(clippy::unwrap_used)]

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_request_round_trips_with_the_verified_identity() {
    let bus = bus().await;
    let running = bus.serve(orders(&bus.router, Arc::default())).await;
    let created: Created = bus
        .caller
        .request("orders.create", &create("widget", 3), &as_alice(&bus))
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
    // Handlers hold until the test saw the prefetch's worth of them running.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let (n, m, g) = (Arc::clone(&now), Arc::clone(&max), Arc::clone(&gate));
    let calc = Service::builder("calc")
        .credential(bus.router.registration_token("calc-svc"))
        .bus_key(bus.router.bus_key())
        .prefetch(4)
        .handler("double", move |req: Request<u64>| {
            let (now, max, gate) = (Arc::clone(&n), Arc::clone(&m), Arc::clone(&g));
            async move {
                max.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                gate.acquire().await.unwrap().forget();
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, HandlerError>(req.body * 2)
            }
        });
    let running = bus.serve(calc).await;
    let alice = as_alice(&bus);
    let calls = (0..40u64).map(|i| {
        let (caller, alice) = (&bus.caller, &alice);
        async move {
            let doubled: u64 = caller.request("calc.double", &i, alice).await.unwrap();
            (i, doubled)
        }
    });
    // Four handlers run and hold; the other 36 requests wait in the queue.
    let queue = bus.names.service_queue("calc");
    let tr = bus.fx.transport();
    let release = async {
        wait_until(
            "four handlers to run and 36 requests to wait",
            Duration::from_secs(10),
            async || {
                now.load(Ordering::SeqCst) == 4
                    && tr.inspect(&queue).await.is_ok_and(|q| q.messages == 36)
            },
        )
        .await;
        gate.add_permits(40);
    };
    let (answered, ()) = tokio::join!(futures_util::future::join_all(calls), release);
    for (i, doubled) in answered {
        assert_eq!(doubled, i * 2);
    }
    let most = max.load(Ordering::SeqCst);
    assert_eq!(
        most, 4,
        "handlers ran {most} at once; expected concurrency bounded by the prefetch of 4"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_unknown_methods_and_bad_bodies_are_typed_rejections() {
    let bus = bus().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let running = bus.serve(orders(&bus.router, Arc::clone(&calls))).await;
    let out_of_stock = bus
        .caller
        .request("orders.create", &create("widget", 0), &as_alice(&bus))
        .await;
    assert_eq!(
        rejected_code(out_of_stock),
        ("out_of_stock".into(), "service".into())
    );
    let unknown = bus
        .caller
        .request("orders.refund", &create("widget", 1), &as_alice(&bus))
        .await;
    assert_eq!(rejected_code(unknown).0, "unknown_method");
    let bad = bus
        .caller
        .request("orders.create", &"not an order", &as_alice(&bus))
        .await;
    // Valid JSON that is no order: the service says it does not fit.
    assert_eq!(rejected_code(bad).0, "invalid_request");
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
    let running = bus.serve(orders(&bus.router, Arc::default())).await;
    for _ in 0..3 {
        let exploded = bus
            .caller
            .request("orders.explode", &create("bomb", 1), &as_alice(&bus))
            .await;
        assert_eq!(
            rejected_code(exploded),
            ("handler_failed".into(), "service".into())
        );
    }
    let created: Created = bus
        .caller
        .request("orders.create", &create("widget", 1), &as_alice(&bus))
        .await
        .unwrap();
    assert_eq!(created.by, "alice");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_and_forget_publish_reaches_the_handler_without_a_reply() {
    let bus = bus().await;
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let service =
        orders(&bus.router, Arc::default()).handler("note", move |req: Request<String>| {
            let seen = seen_tx.clone();
            async move {
                seen.send((req.body, req.identity.consumer, req.correlation_id))
                    .ok();
                Ok::<_, HandlerError>(())
            }
        });
    let running = bus.serve(service).await;
    bus.caller
        .publish("orders.note", "remember the milk", &as_alice(&bus))
        .await
        .unwrap();
    let got = tokio::time::timeout(sdk_common::WAIT, seen.recv()).await;
    assert_eq!(
        got.unwrap().unwrap(),
        ("remember the milk".to_owned(), "alice".to_owned(), None)
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_times_out_and_keeps_working() {
    let bus = bus().await;
    let stall = Arc::new(Notify::new());
    let held = Arc::clone(&stall);
    let service = orders(&bus.router, Arc::default()).handler("stall", move |_: Request<()>| {
        let held = Arc::clone(&held);
        async move {
            held.notified().await;
            Ok::<_, HandlerError>(())
        }
    });
    let running = bus.serve(service).await;
    let quick = as_alice(&bus).timeout(Duration::from_millis(200));
    let stalled: Result<(), _> = bus.caller.request("orders.stall", &(), &quick).await;
    assert!(
        matches!(stalled, Err(CallError::Timeout { after }) if after == Duration::from_millis(200)),
        "got {stalled:?}"
    );
    // The late reply is dropped; the caller still serves other requests.
    stall.notify_one();
    let created: Created = bus
        .caller
        .request("orders.create", &create("widget", 1), &as_alice(&bus))
        .await
        .unwrap();
    assert_eq!(created.qty, 1);
    running.shutdown().await.unwrap();
}
