//! Gateway mode end to end on RabbitMQ: request → router → service → reply,
//! translated both ways; identity and assertion as the service sees them.

// The cases are plain async fns instantiated per transport by
// `on_both_transports!`; a failed expectation must panic.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use tollgate_auth::AssertionVerifier;
use tollgate_bus::{
    Address, Envelope, SubscribeOptions, header_map::HeaderValue, headers, translate::Codec,
};
use tollgate_tests::{
    conformance::transport::recv,
    support::{Fixture, TestBus},
};

async fn a_json_v2_caller_reaches_a_msgpack_v1_service_and_gets_its_reply_back_in_json_v2(
    fx: &Fixture,
) {
    let bus = TestBus::start(fx).await;
    let tr = fx.transport().as_ref();
    bus.register(tr, "billing", "application/msgpack", "1")
        .await;
    let mut service = tr
        .subscribe(
            &bus.names.service_queue("billing"),
            SubscribeOptions::default(),
        )
        .await
        .unwrap();
    let (caller_q, mut replies) = bus.caller_queue(tr).await;

    let body = json!({"customer": {"id": "c-7"}, "amount": {"cents": 1250}});
    let mut request = bus.request(&body, Some(&bus.token("web")), Some(&caller_q));
    request.headers.insert(headers::CALLER_SCHEMA_VERSION, "2");
    bus.send(tr, "billing.charge", &request).await;

    // The service sees MessagePack, schema v1, mapped fields, and the caller's identity in an assertion.
    let delivered = recv(&mut service, "the request at the billing service").await;
    let env = &delivered.envelope;
    assert_eq!(env.content_type.as_deref(), Some("application/msgpack"));
    assert_eq!(env.headers.get_str(headers::SCHEMA_VERSION), Some("1"));
    let seen: Value = Codec::MessagePack.from_slice(&env.payload).unwrap();
    assert_eq!(
        seen,
        json!({"customer": {"number": "c-7"}, "amount_cents": 1250, "currency": "EUR"})
    );
    assert!(
        env.headers.get(headers::AUTHORIZATION).is_none(),
        "the credential is stripped"
    );
    for informational in [
        headers::AUTH_MODE,
        headers::CONSUMER,
        headers::SUBJECT,
        headers::GROUPS,
        headers::SCOPES,
    ] {
        assert!(
            env.headers.get(informational).is_none(),
            "{informational}: identity headers are off by default"
        );
    }
    let verifier = AssertionVerifier::from_public_pem(bus.assertion_public_pem.as_bytes()).unwrap();
    let asserted = verifier
        .verify(
            env.headers.get_str(headers::ASSERTION).unwrap(),
            "billing.charge",
            &env.id,
        )
        .unwrap();
    assert_eq!(asserted.identity.consumer, "web");
    // A held call: its reply comes back to the router that holds it.
    let reply_to = env.reply_to.as_deref().unwrap();
    assert!(bus.names.is_router_replies_queue(reply_to), "{reply_to}");

    // The service replies in its own format, copying the reply context.
    let reply_body =
        json!({"customer": {"number": "c-7"}, "amount_cents": 1250, "status": "charged"});
    let mut reply = Envelope::new(Codec::MessagePack.to_vec(&reply_body).unwrap())
        .with_content_type("application/msgpack")
        .with_correlation_id(env.correlation_id.clone().unwrap());
    reply.headers.insert(
        headers::REPLY_CONTEXT,
        env.headers.get_str(headers::REPLY_CONTEXT).unwrap(),
    );
    tr.publish(&Address::queue(env.reply_to.clone().unwrap()), &reply)
        .await
        .unwrap();
    delivered.ack().await.unwrap();

    // The caller gets JSON v2 with the inverse mapping applied.
    let got = recv(&mut replies, "the translated reply").await;
    assert_eq!(got.envelope.correlation_id, request.correlation_id);
    assert_eq!(
        got.envelope.content_type.as_deref(),
        Some("application/json")
    );
    let back: Value = serde_json::from_slice(&got.envelope.payload).unwrap();
    assert_eq!(
        back,
        json!({"customer": {"id": "c-7"}, "amount": {"cents": 1250}, "status": "charged"})
    );
    got.ack().await.unwrap();
    bus.stop().await;
}

async fn forged_bus_headers_never_reach_a_service_as_identity(fx: &Fixture) {
    forged_headers_are_replaced(fx, false).await;
}

async fn identity_headers_when_configured_are_the_router_s_own(fx: &Fixture) {
    forged_headers_are_replaced(fx, true).await;
}

/// A caller forges every bus header; the service sees only the router's:
/// the route and the assertion, and the identity headers when
/// `identity_headers` is on (the caller's verified identity, never the
/// forged one).
async fn forged_headers_are_replaced(fx: &Fixture, identity_headers: bool) {
    let bus = TestBus::start_adjusted(fx, "", |config| {
        config.auth.identity_headers = identity_headers;
    })
    .await;

    let tr = fx.transport().as_ref();
    bus.register(tr, "orders", "application/json", "2").await;
    let mut service = tr
        .subscribe(
            &bus.names.service_queue("orders"),
            SubscribeOptions::default(),
        )
        .await
        .unwrap();

    let mut request = bus.request(&json!({"sku": "a"}), Some(&bus.token("reader")), None);
    let forged_assertion = "eyJhbGciOiJFZERTQSJ9.eyJjb25zdW1lciI6ImFkbWluIn0.c2ln";
    for (name, value) in [
        (headers::CONSUMER, "admin"),
        ("X-Tollgate-Consumer", "admin"),
        (headers::SCOPES, "everything"),
        (headers::ASSERTION, forged_assertion),
        (headers::REPLY_CONTEXT, "forged.context"),
        (headers::ROUTE, "billing.refund"),
    ] {
        request.headers.insert(name, value);
    }
    bus.send(tr, "orders.get", &request).await;
    let d = recv(&mut service, "the request").await;
    let h = &d.envelope.headers;
    if identity_headers {
        assert_eq!(h.get_str(headers::CONSUMER), Some("reader"));
        assert_eq!(h.get_str(headers::AUTH_MODE), Some("gateway"));
        assert!(
            matches!(h.get(headers::SCOPES), Some(HeaderValue::Array(_))),
            "the verified scopes, as an array, not the forged string"
        );
    } else {
        for name in [headers::CONSUMER, headers::SCOPES, headers::AUTH_MODE] {
            assert!(
                h.get(name).is_none(),
                "{name}: the forged header is gone, no other written"
            );
        }
    }
    assert_eq!(h.get_str(headers::ROUTE), Some("orders.get"));
    assert!(h.get("X-Tollgate-Consumer").is_none());
    assert!(
        h.get(headers::REPLY_CONTEXT).is_none(),
        "no reply_to, no context; the forged one is gone"
    );
    let verifier = AssertionVerifier::from_public_pem(bus.assertion_public_pem.as_bytes()).unwrap();
    let asserted = verifier
        .verify(
            h.get_str(headers::ASSERTION).unwrap(),
            "orders.get",
            &d.envelope.id,
        )
        .unwrap();
    assert_eq!(asserted.identity.consumer, "reader");
    d.ack().await.unwrap();
    bus.stop().await;
}

tollgate_tests::on_both_transports!(
    a_json_v2_caller_reaches_a_msgpack_v1_service_and_gets_its_reply_back_in_json_v2,
    forged_bus_headers_never_reach_a_service_as_identity,
    identity_headers_when_configured_are_the_router_s_own
);
