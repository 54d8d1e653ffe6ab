//! The example services (`tollgate_services::examples`) on the memory
//! transport, called through a `Caller` and the real router (the SDK tests'
//! [`Bus`]); billing-legacy also through the translation mapping of
//! `tollgate.example.toml`, run by that router.

// Test code: a failed expectation should panic loudly.
#![allow(clippy::unwrap_used)]

mod sdk_common;

use std::path::PathBuf;

use sdk_common::{Bus, bus, bus_with};
use serde::de::DeserializeOwned;
use serde_json::json;
use tollgate_bus::{Envelope, config::Config, translate::Codec};
use tollgate_services::{
    CallError, RequestOptions, RunningService, ServiceBuilder, TokenSource,
    examples::{
        billing_legacy::{self, v2},
        inventory, orders,
    },
};

impl Bus {
    /// Runs the example service `build` returns, registered with a
    /// registration token of the service account `account`, and waits until
    /// the router routes to it.
    async fn run(
        &self,
        account: &str,
        build: fn(TokenSource, tollgate_auth::AssertionVerifier) -> ServiceBuilder,
    ) -> RunningService {
        let credential = TokenSource::fixed(self.router.registration_token(account));
        self.serve(build(credential, self.router.bus_key())).await
    }

    /// Options with a valid token of `consumer`, in `content_type` and `version`.
    fn options(&self, consumer: &str, content_type: &str, version: &str) -> RequestOptions {
        self.as_consumer(consumer)
            .content_type(content_type)
            .schema_version(version)
    }

    fn json_as(&self, consumer: &str, version: &str) -> RequestOptions {
        self.options(consumer, "application/json", version)
    }

    fn msgpack_as(&self, consumer: &str) -> RequestOptions {
        self.options(consumer, inventory::CONTENT_TYPE, inventory::SCHEMA_VERSION)
    }
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
            &bus.json_as("web", "2"),
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
        .request("orders.get", &lookup, &bus.json_as("reader", "2"))
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
    let as_web = bus.json_as("web", "2");
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
            &bus.msgpack_as("web"),
        )
        .await
        .unwrap();
    assert_eq!(reservation.remaining, 20);
    let too_many = bus
        .caller
        .request::<_, inventory::Reservation>(
            "inventory.reserve",
            &reserve("sprocket", 4),
            &bus.msgpack_as("web"),
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
        .request_raw(
            "inventory.get",
            Envelope::new(payload),
            &bus.msgpack_as("web"),
        )
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
    let as_v1 = bus.json_as("web", billing_legacy::SCHEMA_VERSION);
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
    // Sent as v1, so no mapping applies: a v2 body does not fit the v1 service.
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

/// Sends `body` (JSON, version 2) to billing-legacy: the router maps the
/// request to v1 and the reply back to v2.
async fn call_through_mapping<T: DeserializeOwned>(bus: &Bus, body: &v2::Charge) -> T {
    bus.caller
        .request("billing-legacy.charge", body, &bus.json_as("web", "2"))
        .await
        .unwrap()
}

/// The translation mappings that close `tollgate.example.toml`, as TOML.
fn example_mappings() -> String {
    let example = std::fs::read_to_string(repo_root().join("tollgate.example.toml")).unwrap();
    let start = example
        .find("[[translation.mappings]]")
        .expect("the example config has mappings");
    example[start..].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_legacy_serves_v2_callers_through_the_example_configs_mapping() {
    let bus = bus_with(&example_mappings()).await;
    let example = Config::load(&repo_root().join("tollgate.example.toml")).unwrap();
    let ours = Config::load(&bus.router.config_path()).unwrap();
    for mapping in &example.translation.mappings {
        assert!(
            ours.translation.mappings.contains(mapping),
            "the router runs with the example's mapping {mapping:?}"
        );
    }
    let running = bus.run("billing-svc", billing_legacy::service).await;
    let charge = v2::Charge {
        customer: v2::Customer { id: "c-42".into() },
        total: v2::Total { cents: 1_549 },
        currency: None,
        client_hints: Some(json!({ "ui": "web", "locale": "de-DE" })),
    };
    let invoice: v2::Invoice = call_through_mapping(&bus, &charge).await;
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
    let raw: serde_json::Value = call_through_mapping(&bus, &charge).await;
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
