//! A handler that panics: every panicking request is answered
//! `handler_failed` and dead-lettered, and the service keeps serving, even
//! after more panics than its prefetch and when the panic's payload itself
//! panics when dropped (the path a `catch_unwind` around the handler alone
//! misses: the delivery was dropped unsettled, holding a prefetch slot).

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_services::{HandlerError, Request};
use tollgate_tests::support::{Fixture, TestBus, wait_until};

use super::{order, refused_code, web_caller};

/// Prefetch of the service under test: fewer than the panics it takes.
const PREFETCH: u16 = 2;
/// Requests of each kind of panic.
const EACH: usize = 3;

#[derive(Deserialize)]
struct Explode {
    how: String,
}

/// A panic payload that panics again when dropped.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("the panic's payload exploded too");
    }
}

/// A body whose decoding panics.
struct PanicsOnDecode;

impl<'de> Deserialize<'de> for PanicsOnDecode {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        panic!("decoding exploded");
    }
}

async fn a_panicking_handler_answers_handler_failed_and_keeps_serving(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let service = bus
        .run_orders(fx.connect().await, |b| {
            b.prefetch(PREFETCH)
                .handler("explode", |req: Request<Explode>| async move {
                    if req.body.how == "payload" {
                        std::panic::panic_any(PanicsOnDrop);
                    }
                    panic!("the handler exploded");
                    #[allow(unreachable_code)]
                    Ok::<Value, HandlerError>(Value::Null)
                })
                .handler("undecodable", |_: Request<PanicsOnDecode>| async move {
                    Ok::<Value, HandlerError>(Value::Null)
                })
        })
        .await;
    let (caller, options) = web_caller(&bus, fx.connect().await).await;

    let mut panicked = 0;
    for _ in 0..EACH {
        for (route, body) in [
            ("orders.explode", json!({"how": "plain"})),
            ("orders.explode", json!({"how": "payload"})),
            ("orders.undecodable", json!({})),
        ] {
            let answer = caller.request::<_, Value>(route, &body, &options).await;
            assert_eq!(refused_code(answer), "handler_failed", "{route} {body}");
            panicked += 1;
        }
    }
    assert!(panicked > usize::from(PREFETCH));

    let mut created = 0;
    for n in 0..5 {
        let reply: Value = caller
            .request("orders.create", &order(&format!("c-{n}")), &options)
            .await
            .unwrap();
        assert_eq!(reply["placed_by"], "web");
        created += 1;
    }
    assert_eq!(created, 5);

    // Each panic left one copy for operators (published before the ack).
    let expected = u32::try_from(panicked).unwrap();
    let tr = fx.transport().as_ref();
    wait_until(
        &format!("{expected} dead letters"),
        Duration::from_secs(15),
        async || bus.dead_letters(tr).await >= expected,
    )
    .await;
    service.shutdown().await.unwrap();
    assert_eq!(bus.dead_letters(tr).await, expected, "one copy per panic");
    let service_queue = tr
        .inspect(&bus.names.service_queue("orders"))
        .await
        .unwrap();
    assert_eq!(service_queue.messages, 0, "nothing left unanswered");
    caller.close();
    bus.stop().await;
}

tollgate_tests::on_both_transports!(a_panicking_handler_answers_handler_failed_and_keeps_serving);
