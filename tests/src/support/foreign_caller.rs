//! One check for every caller written in another language: against
//! `tollgate serve` on RabbitMQ with the example `orders` (JSON) and
//! `inventory` (MessagePack) services, the caller must get a reply, a reply
//! translated from MessagePack, and each refusal a caller can provoke with
//! its code; a request naming a queue it cannot prove is its own gets no
//! reply and a `bad_reply_to` dead-letter copy.

use std::collections::HashMap;

use serde_json::{Value, json};
use tollgate_bus::{SubscribeOptions, headers};
use tollgate_services::examples;

use super::{
    Fixture, RouterProcess, TestBus,
    clients::{Language, bus_args, run_to_end},
};
use crate::conformance::transport::recv;

/// Each case the callers play and the code of the error reply it must get
/// (`None`: a reply, checked on its own).
const CASES: &[(&str, Option<&str>)] = &[
    ("reply", None),
    ("msgpack_reply", None),
    ("token_missing", Some("token_missing")),
    ("token_expired", Some("token_expired")),
    ("invalid_token", Some("invalid_token")),
    ("bare_token", Some("invalid_token")),
    ("forbidden", Some("forbidden")),
    ("no_route", Some("no_route")),
    ("too_large", Some("too_large")),
    ("bad_payload", Some("bad_payload")),
    ("out_of_stock", Some("out_of_stock")),
    ("bad_reply_to", None),
];

/// Runs `program` of `language` as consumer `web` against a fresh bus and
/// checks every case of [`CASES`].
///
/// # Panics
/// When any case does not behave as the README's wire contract says.
pub async fn check_foreign_caller(language: Language, program: &str) {
    let fx = Fixture::amqp().await;
    let bus = TestBus::prepare(&fx, "").await;
    let tr = fx.transport().as_ref();
    let mut router = RouterProcess::spawn(&bus, &format!("{}-r", fx.ns.prefix()));
    router.wait_started(&bus, tr).await;
    let orders = examples::orders::service(bus.registration_token("orders-svc"), bus.bus_key())
        .build()
        .unwrap()
        .run(fx.connect().await, bus.names.clone())
        .await
        .unwrap();
    let inventory =
        examples::inventory::service(bus.registration_token("inventory-svc"), bus.bus_key())
            .build()
            .unwrap()
            .run(fx.connect().await, bus.names.clone())
            .await
            .unwrap();
    router.wait_routing(2).await;

    let mut command = language.command(program);
    command.args(bus_args(&bus, "web"));
    let lines = run_to_end(command).await;
    let by_case: HashMap<&str, &Value> = lines
        .iter()
        .map(|line| (line["case"].as_str().unwrap_or("?"), line))
        .collect();
    for (case, code) in CASES {
        let line = by_case
            .get(case)
            .unwrap_or_else(|| panic!("{program} played no case {case}: {lines:?}"));
        if let Some(code) = code {
            assert_eq!(line["error"], *code, "{case}: {line}");
            assert_eq!(line["body"]["error"]["code"], *code, "{case}: {line}");
            assert_eq!(line["content_type"], "application/json", "{case}: {line}");
        }
    }
    let reply = by_case["reply"];
    assert_eq!(reply["error"], Value::Null, "{reply}");
    assert_eq!(reply["body"]["placed_by"], "web", "{reply}");
    let translated = by_case["msgpack_reply"];
    assert_eq!(translated["error"], Value::Null, "{translated}");
    assert_eq!(translated["content_type"], "application/json");
    assert_eq!(
        translated["body"],
        json!({"sku": "widget", "reserved": 2, "remaining": 98}),
        "the MessagePack reply, in the caller's JSON"
    );

    orders.shutdown().await.unwrap();
    inventory.shutdown().await.unwrap();
    router.terminate();
    // Every refusal of the router left a copy with its code, and the request
    // naming a queue it could not prove got `bad_reply_to`.
    let refused: HashMap<&str, &str> = CASES
        .iter()
        .filter(|(case, code)| {
            *case == "bad_reply_to" || (code.is_some() && *case != "out_of_stock")
        })
        .map(|(case, code)| {
            let id = by_case[case]["message_id"].as_str().unwrap();
            (id, code.unwrap_or("bad_reply_to"))
        })
        .collect();
    let mut dead = tr
        .subscribe(bus.names.dead_queue(), SubscribeOptions::prefetch(50))
        .await
        .unwrap();
    let mut found = 0;
    while found < refused.len() {
        let copy = recv(&mut dead, "the dead-letter copies of the refusals").await;
        if let Some(code) = refused.get(copy.envelope.id.as_str()) {
            assert_eq!(
                copy.envelope.headers.get_str(headers::CODE),
                Some(*code),
                "the copy of message {}",
                copy.envelope.id
            );
            found += 1;
        }
        copy.ack().await.unwrap();
    }
    drop(dead);
    bus.stop().await;
    fx.cleanup().await;
}
