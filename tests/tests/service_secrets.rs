//! Services holding their own assertion secret, through the real router:
//! the router signs their assertions with HS256 once every instance asks for
//! it (Ed25519 while any instance does not), calls are served either way, and
//! a service cannot use its own secret to reach another service around the
//! router.

// The cases are plain async fns instantiated per transport by
// `on_both_transports!`; a failed expectation must panic.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use tollgate_auth::{ASSERTION_TYP, AssertionAlg, DEFAULT_ISSUER, ServiceSecret};
use tollgate_bus::{Address, Envelope, SubscribeOptions, headers};
use tollgate_services::{Caller, RequestOptions, RunningService};
use tollgate_tests::{
    conformance::transport::recv,
    support::{Fixture, TestBus, now},
};

/// How the router signs `orders`' assertions now.
fn orders_assertion(bus: &TestBus) -> Option<AssertionAlg> {
    bus.registry()
        .resolve("orders")
        .map(|contract| contract.assertion)
}

/// A bus whose `orders` instance holds its secret (and the public key), the
/// router signing HS256 for it.
async fn bus_with_orders_holding_its_secret(fx: &Fixture) -> (TestBus, RunningService) {
    let bus = TestBus::start(fx).await;
    let secret = bus.assertion_signer().service_secret("orders").unwrap();
    let orders = bus
        .run_orders(fx.connect().await, |builder| builder.service_secret(secret))
        .await;
    assert_eq!(orders_assertion(&bus), Some(AssertionAlg::HS256));
    (bus, orders)
}

/// One `orders.create` through the router; the reply's order id.
async fn create_order(caller: &Caller, bus: &TestBus) -> String {
    let options = RequestOptions::with_token(bus.token("web"))
        .timeout(Duration::from_secs(10))
        .schema_version("2");
    let body = json!({"customer": {"id": "c-1"}, "items": [{"sku": "widget", "qty": 2}]});
    let reply: Value = caller
        .request("orders.create", &body, &options)
        .await
        .unwrap();
    reply["order_id"].as_str().unwrap().to_owned()
}

/// An HS256 assertion for `route` made with `secret`, claiming `consumer`.
fn hs256_assertion(
    secret: &ServiceSecret,
    route: &str,
    message_id: &str,
    consumer: &str,
) -> String {
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some(ASSERTION_TYP.to_owned());
    let claims = json!({
        "iss": DEFAULT_ISSUER, "iat": now(), "exp": now() + 30, "consumer": consumer,
        "groups": [], "scopes": [], "claims": {}, "route": route, "mid": message_id,
    });
    let key = URL_SAFE_NO_PAD.decode(secret.to_text()).unwrap();
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&key).unwrap()).unwrap()
}

async fn a_service_holding_its_secret_is_served_with_hs256_and_cannot_forge_for_another(
    fx: &Fixture,
) {
    let (bus, orders) = bus_with_orders_holding_its_secret(fx).await;
    let signer = bus.assertion_signer();
    let caller = Caller::connect(fx.connect().await, bus.names.clone())
        .await
        .unwrap();
    let order = create_order(&caller, &bus).await;
    assert!(!order.is_empty());

    // `billing` holds its own secret and mints an assertion for an orders
    // route, published straight onto orders' queue: refused, dead-lettered.
    let tr = fx.transport().as_ref();
    let mut dead = tr
        .subscribe(bus.names.dead_queue(), SubscribeOptions::default())
        .await
        .unwrap();
    let billing_secret = signer.service_secret("billing").unwrap();
    let mut forged = Envelope::new(
        json!({"customer": {"id": "x"}, "items": [{"sku": "free", "qty": 9}]})
            .to_string()
            .into_bytes(),
    )
    .with_content_type("application/json");
    forged.headers.insert(headers::ROUTE, "orders.create");
    forged.headers.insert(headers::CONSUMER, "admin");
    let assertion = hs256_assertion(&billing_secret, "orders.create", &forged.id, "admin");
    forged.headers.insert(headers::ASSERTION, assertion);
    tr.publish(&Address::queue(bus.names.service_queue("orders")), &forged)
        .await
        .unwrap();
    let d = recv(&mut dead, "the refused forgery's dead letter").await;
    assert_eq!(d.envelope.id, forged.id);
    assert_eq!(
        d.envelope.headers.get_str(headers::CODE),
        Some("not_from_bus")
    );
    d.ack().await.unwrap();

    // The same forgery made with orders' own secret would pass: the secret
    // is what separates the services.
    let genuine = hs256_assertion(
        &signer.service_secret("orders").unwrap(),
        "orders.create",
        "m-1",
        "admin",
    );
    let verifier = tollgate_auth::AssertionVerifier::from_service_secret(
        "orders",
        &signer.service_secret("orders").unwrap(),
    );
    assert!(verifier.verify(&genuine, "orders.create", "m-1").is_ok());

    orders.shutdown().await.unwrap();
    drop(dead);
    bus.stop().await;
}

async fn the_router_signs_ed25519_while_any_instance_checks_it(fx: &Fixture) {
    let (bus, moved) = bus_with_orders_holding_its_secret(fx).await;
    // A second instance that knows only the public key joins.
    let old = bus.run_orders(fx.connect().await, |builder| builder).await;
    bus.wait_for(
        || orders_assertion(&bus) == Some(AssertionAlg::EdDSA),
        "the router to sign Ed25519 for the old instance",
    )
    .await;
    let caller = Caller::connect(fx.connect().await, bus.names.clone())
        .await
        .unwrap();
    for _ in 0..6 {
        create_order(&caller, &bus).await;
    }
    // The old instance leaves: HS256 again, and calls still served.
    old.shutdown().await.unwrap();
    bus.wait_for(
        || orders_assertion(&bus) == Some(AssertionAlg::HS256),
        "the router to sign HS256 once every instance asks for it",
    )
    .await;
    create_order(&caller, &bus).await;
    moved.shutdown().await.unwrap();
    bus.stop().await;
}

tollgate_tests::on_both_transports!(
    a_service_holding_its_secret_is_served_with_hs256_and_cannot_forge_for_another,
    the_router_signs_ed25519_while_any_instance_checks_it
);
