//! The service SDK and the caller on RabbitMQ, with the real router (a [`TestBus`]).

// Test code: a failed expectation should panic loudly.
#![allow(clippy::unwrap_used)]

mod sdk_common;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use sdk_common::{foreign_signer, identity_of, recv};
use serde::{Deserialize, Serialize};
use tollgate_bus::{Address, Envelope, SubscribeOptions, Transport, headers};
use tollgate_services::{
    CallError, Caller, HandlerError, Request, RequestOptions, RunningService, Service,
    ServiceBuilder,
};
use tollgate_tests::support::{Fixture, TestBus};

#[derive(Debug, Serialize, Deserialize)]
struct Order {
    item: String,
    qty: u32,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Placed {
    item: String,
    by: String,
}

/// Registered as `orders-svc`, verifying the bus's assertions.
fn orders(router: &TestBus, calls: Arc<AtomicUsize>) -> ServiceBuilder {
    Service::builder("orders")
        .credential(router.registration_token("orders-svc"))
        .bus_key(router.bus_key())
        .handler("place", move |req: Request<Order>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if req.body.qty == 0 {
                    return Err(HandlerError::new("out_of_stock", "none left"));
                }
                Ok(Placed {
                    item: req.body.item,
                    by: req.identity.consumer,
                })
            }
        })
}

/// Runs `orders` on its own connection and waits until the router routes to it.
async fn serve_orders(
    fx: &Fixture,
    router: &TestBus,
    calls: Arc<AtomicUsize>,
) -> (RunningService, Arc<dyn Transport>) {
    let conn = fx.connect().await;
    let running = orders(router, calls)
        .build()
        .unwrap()
        .run(Arc::clone(&conn), router.names.clone())
        .await
        .unwrap();
    router.wait_registered("orders").await;
    (running, conn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_request_and_a_handler_error_round_trip_over_rabbitmq() {
    let fx = Fixture::amqp().await;
    // Its config and topology are declared through the fixture, so cleanup deletes them.
    let router = TestBus::start(&fx).await;
    let names = router.names.clone();
    let (running, service_conn) = serve_orders(&fx, &router, Arc::default()).await;
    let caller_conn = fx.connect().await;
    let caller = Caller::connect(Arc::clone(&caller_conn), names.clone())
        .await
        .unwrap();
    let alice = RequestOptions::with_token(router.token("alice"));

    let order = Order {
        item: "widget".into(),
        qty: 2,
    };
    let placed: Placed = caller
        .request("orders.place", &order, &alice)
        .await
        .unwrap();
    assert_eq!(
        placed,
        Placed {
            item: "widget".into(),
            by: "alice".into()
        }
    );
    let none = Order {
        item: "widget".into(),
        qty: 0,
    };
    let refused = caller
        .request::<_, Placed>("orders.place", &none, &alice)
        .await;
    assert!(
        matches!(&refused, Err(CallError::Rejected { code, stage, .. }) if code == "out_of_stock" && stage == "service"),
        "got {refused:?}"
    );

    running.shutdown().await.unwrap();
    drop(caller);
    caller_conn.close().await.unwrap();
    service_conn.close().await.unwrap();
    router.stop().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_fit_the_handler_is_told_what_is_wrong() {
    let fx = Fixture::amqp().await;
    let router = TestBus::start(&fx).await;
    let names = router.names.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let (running, service_conn) = serve_orders(&fx, &router, Arc::clone(&calls)).await;
    let caller = Caller::connect(fx.transport().clone(), names.clone())
        .await
        .unwrap();
    let alice = RequestOptions::with_token(router.token("alice"));

    let empty = caller
        .request::<_, Placed>("orders.place", &serde_json::json!({}), &alice)
        .await;
    match &empty {
        Err(CallError::Rejected {
            code,
            stage,
            message,
        }) => {
            assert_eq!(
                (code.as_str(), stage.as_str()),
                ("invalid_request", "service")
            );
            assert_eq!(
                message,
                "payload does not match the handler's input: missing field `item` at line 1 column 2"
            );
        }
        other => panic!("expected invalid_request, got {other:?}"),
    }
    let not_json = Envelope::new("{not json").with_content_type("application/json");
    let refused = caller.request_raw("orders.place", not_json, &alice).await;
    assert!(
        matches!(&refused, Err(CallError::Rejected { code, .. }) if code == "bad_payload"),
        "invalid JSON stays bad_payload, got {refused:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no handler ran");

    running.shutdown().await.unwrap();
    drop(caller);
    service_conn.close().await.unwrap();
    router.stop().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_published_around_the_router_is_refused_and_dead_lettered_on_rabbitmq() {
    let fx = Fixture::amqp().await;
    let router = TestBus::start(&fx).await;
    let names = router.names.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let (running, service_conn) = serve_orders(&fx, &router, Arc::clone(&calls)).await;
    let tr = fx.transport();
    let mut dead = tr
        .subscribe(names.dead_queue(), SubscribeOptions::default())
        .await
        .unwrap();

    // Forged identity headers, a forged assertion, straight onto the service queue.
    let mut bypass = Envelope::new(r#"{"item":"free","qty":1}"#)
        .with_content_type("application/json")
        .with_reply_to(names.replies_queue());
    bypass.headers.insert(headers::ROUTE, "orders.place");
    bypass.headers.insert(headers::CONSUMER, "admin");
    let forged = foreign_signer()
        .sign(&identity_of("admin"), "orders.place", &bypass.id)
        .unwrap();
    bypass.headers.insert(headers::ASSERTION, forged);
    tr.publish(&Address::queue(names.service_queue("orders")), &bypass)
        .await
        .unwrap();

    // The service refuses it with a copy in the dead-letter queue, and sends
    // no error reply to the router's replies queue: without a reply context
    // the router could forward nothing and would only record a second copy.
    let d = recv(&mut dead, "the service's copy in the dead-letter queue").await;
    assert_eq!(d.envelope.id, bypass.id);
    let h = &d.envelope.headers;
    assert_eq!(h.get_str(headers::CODE), Some("not_from_bus"));
    assert_eq!(
        h.get(headers::X_DEATH),
        None,
        "the service's copy, not the broker's"
    );
    assert_eq!(h.get(headers::CONSUMER), None, "no forged bus header");
    assert_eq!(h.get(headers::ASSERTION), None);
    d.ack().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no handler saw it");

    running.shutdown().await.unwrap();
    drop(dead);
    service_conn.close().await.unwrap();
    router.stop().await;
    let more = tr.inspect(names.dead_queue()).await.unwrap().messages;
    let replies = tr.inspect(names.replies_queue()).await.unwrap().messages;
    assert_eq!(
        (more, replies),
        (0, 0),
        "no second copy and no reply waiting: the service sent no error reply"
    );
    fx.cleanup().await;
}
