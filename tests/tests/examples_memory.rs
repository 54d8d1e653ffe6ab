//! The example services (`tollgate_services::examples`) on the memory
//! transport, called through a `Caller` and the stand-in router of the SDK
//! tests; billing-legacy also through the translation mapping of
//! `tollgate.example.toml`.

// Test code: a failed expectation should panic loudly.
#![allow(clippy::unwrap_used)]

mod sdk_common;

use std::path::PathBuf;

use bytes::Bytes;
use sdk_common::{Bus, bus};
use serde::de::DeserializeOwned;
use serde_json::json;
use tollgate_bus::{
    Envelope,
    config::Config,
    translate::{Codec, Format, Translator},
};
use tollgate_services::{
    CallError, RequestOptions, RunningService, ServiceBuilder, TokenSource,
    examples::{
        billing_legacy::{self, v2},
        inventory, orders,
    },
};

impl Bus {
    /// Runs the example service `build` returns, registered with `account`'s token.
    async fn run(
        &self,
        account: &str,
        build: fn(TokenSource, tollgate_auth::AssertionVerifier) -> ServiceBuilder,
    ) -> RunningService {
        let credential = TokenSource::fixed(account);
        build(credential, self.keys.verifier.clone())
            .build()
            .unwrap()
            .run(self.fx.transport().clone(), self.names.clone())
            .await
            .unwrap()
    }
}

/// Options of consumer `consumer` (the stand-in takes the token as the consumer).
fn as_consumer(consumer: &str, content_type: &str, version: &str) -> RequestOptions {
    RequestOptions::with_token(consumer)
        .content_type(content_type)
        .schema_version(version)
}

fn json_as(consumer: &str, version: &str) -> RequestOptions {
    as_consumer(consumer, "application/json", version)
}

fn msgpack_as(consumer: &str) -> RequestOptions {
    as_consumer(consumer, inventory::CONTENT_TYPE, inventory::SCHEMA_VERSION)
}

/// The (code, stage) of a rejection; panics on anything else.
fn rejection<T: std::fmt::Debug>(result: Result<T, CallError>) -> (String, String) {
    match result {
        Err(CallError::Rejected { code, stage, .. }) => (code, stage),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn refused_by_service(code: &str) -> (String, String) {
    (code.to_owned(), "service".to_owned())
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the repository root")
        .to_path_buf()
}

// === orders ===

fn order(items: &[(&str, u32)]) -> orders::CreateOrder {
    orders::CreateOrder {
        customer: orders::Customer { id: "c-42".into() },
        items: items
            .iter()
            .map(|(sku, qty)| orders::Item {
                sku: (*sku).into(),
                qty: *qty,
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_create_then_get_returns_the_order_placed_by_the_verified_consumer() {
    let bus = bus().await;
    let running = bus.run("orders-svc", orders::service).await;
    let created: orders::OrderCreated = bus
        .caller
        .request(
            "orders.create",
            &order(&[("widget", 2), ("sprocket", 1)]),
            &json_as("web", "2"),
        )
        .await
        .unwrap();
    assert_eq!(created.placed_by, "web");
    assert_eq!(created.total_cents, 2 * 250 + 75);
    let lookup = orders::GetOrder {
        order_id: created.order_id.clone(),
    };
    let found: orders::Order = bus
        .caller
        .request("orders.get", &lookup, &json_as("reporting", "2"))
        .await
        .unwrap();
    assert_eq!(found.order_id, created.order_id);
    assert_eq!(found.items, order(&[("widget", 2), ("sprocket", 1)]).items);
    assert_eq!(
        found.placed_by, "web",
        "the placer, not the reader, is recorded"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_refuses_empty_orders_and_zero_quantities_and_unknown_ids_are_not_found() {
    let bus = bus().await;
    let running = bus.run("orders-svc", orders::service).await;
    let as_web = json_as("web", "2");
    let empty = bus
        .caller
        .request::<_, orders::OrderCreated>("orders.create", &order(&[]), &as_web)
        .await;
    assert_eq!(rejection(empty), refused_by_service("invalid_request"));
    let zero = bus
        .caller
        .request::<_, orders::OrderCreated>("orders.create", &order(&[("widget", 0)]), &as_web)
        .await;
    assert_eq!(rejection(zero), refused_by_service("invalid_request"));
    let unknown = orders::GetOrder {
        order_id: "ord-000001".into(),
    };
    let missing = bus
        .caller
        .request::<_, orders::Order>("orders.get", &unknown, &as_web)
        .await;
    assert_eq!(
        rejection(missing),
        refused_by_service("not_found"),
        "refused orders were not stored"
    );
    running.shutdown().await.unwrap();
}

// === inventory ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_reserves_in_messagepack_and_refuses_more_than_is_left() {
    let bus = bus().await;
    let running = bus.run("inventory-svc", inventory::service).await;
    let reserve = |sku: &str, qty| inventory::Reserve {
        sku: sku.into(),
        qty,
    };
    let reservation: inventory::Reservation = bus
        .caller
        .request(
            "inventory.reserve",
            &reserve("gadget", 5),
            &msgpack_as("web"),
        )
        .await
        .unwrap();
    assert_eq!(reservation.remaining, 20);
    let too_many = bus
        .caller
        .request::<_, inventory::Reservation>(
            "inventory.reserve",
            &reserve("sprocket", 4),
            &msgpack_as("web"),
        )
        .await;
    assert_eq!(
        rejection(too_many),
        refused_by_service(inventory::OUT_OF_STOCK)
    );

    let get = inventory::GetStock {
        sku: "gadget".into(),
    };
    let payload = Codec::MessagePack.to_vec(&get).unwrap();
    let reply = bus
        .caller
        .request_raw("inventory.get", Envelope::new(payload), &msgpack_as("web"))
        .await
        .unwrap();
    assert_eq!(reply.content_type.as_deref(), Some(inventory::CONTENT_TYPE));
    let stock: inventory::Stock = Codec::MessagePack.from_slice(&reply.payload).unwrap();
    assert_eq!(stock.available, 20, "the reservation took from the stock");
    running.shutdown().await.unwrap();
}

// === billing-legacy ===

fn v1_charge(amount_cents: u64) -> billing_legacy::Charge {
    billing_legacy::Charge {
        customer: billing_legacy::Customer {
            number: "c-42".into(),
        },
        amount_cents,
        currency: "EUR".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_legacy_charges_in_schema_v1_and_refuses_zero_amounts_and_v2_bodies() {
    let bus = bus().await;
    let running = bus.run("billing-svc", billing_legacy::service).await;
    let as_v1 = json_as("web", billing_legacy::SCHEMA_VERSION);
    let invoice: billing_legacy::Invoice = bus
        .caller
        .request("billing-legacy.charge", &v1_charge(1_549), &as_v1)
        .await
        .unwrap();
    assert_eq!(invoice.amount_cents, 1_549);
    assert_eq!(invoice.customer.number, "c-42");
    assert_eq!(invoice.status, billing_legacy::CHARGED);
    let zero = bus
        .caller
        .request::<_, billing_legacy::Invoice>("billing-legacy.charge", &v1_charge(0), &as_v1)
        .await;
    assert_eq!(rejection(zero), refused_by_service("invalid_request"));
    // Without the router's mapping, a v2 body does not fit the v1 service.
    let v2_body = json!({ "customer": { "id": "c-42" }, "total": { "cents": 100 } });
    let untranslated = bus
        .caller
        .request::<_, billing_legacy::Invoice>("billing-legacy.charge", &v2_body, &as_v1)
        .await;
    assert_eq!(
        rejection(untranslated),
        refused_by_service("invalid_request")
    );
    running.shutdown().await.unwrap();
}

/// Sends `body` (JSON, version 2) to billing-legacy the way the router would:
/// the request and the reply through `translator`.
async fn call_through_mapping<T: DeserializeOwned>(
    bus: &Bus,
    translator: &Translator,
    body: &v2::Charge,
) -> T {
    let caller = Format::new(Codec::Json, "2");
    let service = Format::new(Codec::Json, billing_legacy::SCHEMA_VERSION);
    let v2_payload = Bytes::from(serde_json::to_vec(body).unwrap());
    let v1_payload = translator
        .request(billing_legacy::NAME, &v2_payload, &caller, &service)
        .unwrap();
    let reply = bus
        .caller
        .request_raw(
            "billing-legacy.charge",
            Envelope::new(v1_payload),
            &json_as("web", billing_legacy::SCHEMA_VERSION),
        )
        .await
        .unwrap();
    let v2_reply = translator
        .reply(billing_legacy::NAME, &reply.payload, &service, &caller)
        .unwrap();
    serde_json::from_slice(&v2_reply).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_legacy_serves_v2_callers_through_the_example_configs_mapping() {
    let config = Config::load(&repo_root().join("tollgate.example.toml")).unwrap();
    let translator = Translator::new(&config.translation.mappings).unwrap();
    let bus = bus().await;
    let running = bus.run("billing-svc", billing_legacy::service).await;
    let charge = v2::Charge {
        customer: v2::Customer { id: "c-42".into() },
        total: v2::Total { cents: 1_549 },
        currency: None,
        client_hints: Some(json!({ "ui": "web", "locale": "de-DE" })),
    };
    let invoice: v2::Invoice = call_through_mapping(&bus, &translator, &charge).await;
    assert_eq!(
        invoice,
        v2::Invoice {
            invoice_id: "inv-000001".into(),
            customer: v2::Customer { id: "c-42".into() },
            total: v2::Total { cents: 1_549 },
            currency: "EUR".into(),
            status: billing_legacy::CHARGED.into(),
        }
    );
    // Nothing of v1 leaks back to the v2 caller.
    let raw: serde_json::Value = call_through_mapping(&bus, &translator, &charge).await;
    assert_eq!(
        raw,
        json!({
            "invoice_id": "inv-000002",
            "customer": { "id": "c-42" },
            "total": { "cents": 1_549 },
            "currency": "EUR",
            "status": "charged",
        })
    );
    running.shutdown().await.unwrap();
}
