//! Hostile tokens and authorization headers through the real router (issue 11):
//! repeated JSON keys, loose bearer headers, missing required claims, tokens
//! older than the maximum age, and tokens used for another purpose than theirs
//! (a registration token on a route, a caller token in an announcement). Each is refused with an error
//! reply, while the same token in an exact header reaches the service.

// The cases are plain async fns instantiated per transport by
// `on_both_transports!`; a failed expectation must panic.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use tollgate_bus::{
    Address, ErrorBody, SubscribeOptions, Transport, headers,
    registry::{Announcement, Registration},
};
use tollgate_tests::{
    conformance::transport::recv,
    support::{Fixture, REGISTRATION_AUDIENCE, TestBus, now},
};

/// Sends `orders.get` with `authorization` set to `header` (none when `None`)
/// and returns the code of the router's error reply.
async fn refusal_code(bus: &TestBus, tr: &dyn Transport, header: Option<&str>) -> String {
    let (caller_q, mut replies) = bus.caller_queue(tr).await;
    let mut request = bus.request(&json!({"sku": "a"}), None, Some(&caller_q));
    if let Some(value) = header {
        request.headers.insert(headers::AUTHORIZATION, value);
    }
    bus.send(tr, "orders.get", &request).await;
    let reply = recv(&mut replies, "the router's answer").await;
    assert_eq!(reply.envelope.correlation_id, request.correlation_id);
    let code = ErrorBody::from_envelope(&reply.envelope)
        .map(|b| b.error.code)
        .unwrap_or_else(|| panic!("{header:?} was delivered, not refused"));
    reply.ack().await.unwrap();
    code
}

/// Sends `orders.get` with `header` and checks that the orders queue gets it.
async fn delivered(bus: &TestBus, tr: &dyn Transport, header: &str) {
    let mut service = tr
        .subscribe(
            &bus.names.service_queue("orders"),
            SubscribeOptions::default(),
        )
        .await
        .unwrap();
    let mut request = bus.request(&json!({"sku": "a"}), None, None);
    request.headers.insert(headers::AUTHORIZATION, header);
    bus.send(tr, "orders.get", &request).await;
    let got = recv(&mut service, "the control request at the service").await;
    assert_eq!(got.envelope.correlation_id, request.correlation_id);
    got.ack().await.unwrap();
}

async fn a_key_repeated_in_the_header_or_claims_is_refused(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let tr = fx.transport().as_ref();
    bus.register(tr, "orders", "application/json", "1").await;
    let key = bus.key("reader");
    let (exp, iat) = (now() + 300, now());
    let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#, key.kid);
    let claims = |extra: &str| format!(r#"{{"key":"reader","iat":{iat},"exp":{exp}{extra}}}"#);
    // The control: the honest token is delivered.
    delivered(
        &bus,
        tr,
        &format!("Bearer {}", key.sign_raw(&header, &claims(""))),
    )
    .await;
    let forged = [
        // The last `alg` is the real one: a lenient parser verifies it.
        (
            format!(r#"{{"alg":"none","alg":"HS256","kid":"{}"}}"#, key.kid),
            claims(""),
        ),
        (
            format!(r#"{{"alg":"HS256","kid":"x","kid":"{}"}}"#, key.kid),
            claims(""),
        ),
        (header.clone(), claims(&format!(r#","exp":{}"#, exp + 60))),
        (header.clone(), claims(r#","sub":"a","sub":"admin""#)),
        (
            header.clone(),
            claims(r#","scope":"","scope":"orders.write""#),
        ),
        (header.clone(), claims(r#","ctx":{"t":1,"t":2}"#)),
    ];
    for (h, c) in forged {
        let token = key.sign_raw(&h, &c);
        assert_eq!(
            refusal_code(&bus, tr, Some(&format!("Bearer {token}"))).await,
            "invalid_token",
            "{h} {c}"
        );
    }
    bus.stop().await;
}

async fn only_an_exact_bearer_header_is_accepted(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let tr = fx.transport().as_ref();
    bus.register(tr, "orders", "application/json", "1").await;
    let token = bus.token("reader");
    delivered(&bus, tr, &format!("Bearer {token}")).await;
    delivered(&bus, tr, &format!("bEaReR {token}")).await;
    for loose in [
        token.clone(),
        format!(" Bearer {token}"),
        format!("Bearer {token} "),
        format!("Bearer  {token}"),
        format!("Bearer {token}\n"),
        format!("Bearer {token}\r\n"),
        format!("Bearer\t{token}"),
        format!("Basic {token}"),
        format!("Bearer {token} extra"),
    ] {
        assert_eq!(
            refusal_code(&bus, tr, Some(&loose)).await,
            "invalid_token",
            "{loose:?}"
        );
    }
    for missing in [None, Some(""), Some("Bearer ")] {
        assert_eq!(
            refusal_code(&bus, tr, missing).await,
            "token_missing",
            "{missing:?}"
        );
    }
    bus.stop().await;
}

async fn required_claims_and_the_maximum_token_age_are_enforced(fx: &Fixture) {
    let extra = "[auth.verifier]\nrequired_claims = [\"jti\", \"sub\"]\nmax_token_age_secs = 600\n";
    let bus = TestBus::start_with(fx, extra).await;
    let tr = fx.transport().as_ref();
    bus.register(tr, "orders", "application/json", "1").await;
    delivered(&bus, tr, &format!("Bearer {}", bus.token("reader"))).await;
    let key = bus.key("reader");
    let t = now();
    let full = json!({"key": "reader", "sub": "r", "jti": "j-1", "iat": t, "exp": t + 300});
    let without = |claim: &str| {
        let mut claims = full.clone();
        claims.as_object_mut().unwrap().remove(claim);
        claims
    };
    let with = |claim: &str, value: u64| {
        let mut claims = full.clone();
        claims[claim] = value.into();
        claims
    };
    for (claims, code) in [
        (without("jti"), "invalid_token"),
        (without("sub"), "invalid_token"),
        (without("iat"), "invalid_token"),
        (with("iat", t - 700), "token_expired"),
        (with("iat", t + 120), "invalid_token"),
    ] {
        let header = format!("Bearer {}", key.sign(&claims));
        assert_eq!(
            refusal_code(&bus, tr, Some(&header)).await,
            code,
            "{claims}"
        );
    }
    delivered(
        &bus,
        tr,
        &format!("Bearer {}", key.sign(&with("iat", t - 500))),
    )
    .await;
    bus.stop().await;
}

async fn a_registration_token_is_refused_on_a_route(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let tr = fx.transport().as_ref();
    bus.register(tr, "orders", "application/json", "1").await;
    delivered(&bus, tr, &format!("Bearer {}", bus.token("web"))).await;
    // The same caller, allowed on the route, but the token is for registering.
    let registration = bus.token_with("web", 300, json!({"aud": REGISTRATION_AUDIENCE}));
    assert_eq!(
        refusal_code(&bus, tr, Some(&format!("Bearer {registration}"))).await,
        "invalid_token"
    );
    let mixed = bus.token_with(
        "web",
        300,
        json!({"aud": ["tollgate", REGISTRATION_AUDIENCE]}),
    );
    assert_eq!(
        refusal_code(&bus, tr, Some(&format!("Bearer {mixed}"))).await,
        "invalid_token"
    );
    bus.stop().await;
}

async fn a_caller_token_does_not_register_a_service(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let tr = fx.transport().as_ref();
    let register = Announcement::Register(Registration {
        service: "orders".into(),
        instance: "orders-caller-token".into(),
        content_type: "application/json".into(),
        schema_version: "1".into(),
        ttl_secs: 30,
        assertion: Default::default(),
    });
    let with_caller_token = register
        .to_envelope(Some(&bus.token("orders-svc")))
        .unwrap();
    tr.publish(
        &Address::new(bus.names.control_exchange(), ""),
        &with_caller_token,
    )
    .await
    .unwrap();
    // Announcements are judged in order: once billing is in, orders was judged.
    bus.register(tr, "billing", "application/json", "1").await;
    assert!(bus.registry().resolve("orders").is_none());
    let web = format!("Bearer {}", bus.token("web"));
    assert_eq!(refusal_code(&bus, tr, Some(&web)).await, "no_route");
    // The control: the service account's registration token registers it.
    bus.register(tr, "orders", "application/json", "1").await;
    delivered(&bus, tr, &web).await;
    bus.stop().await;
}

tollgate_tests::on_both_transports!(
    a_registration_token_is_refused_on_a_route,
    a_caller_token_does_not_register_a_service,
    a_key_repeated_in_the_header_or_claims_is_refused,
    only_an_exact_bearer_header_is_accepted,
    required_claims_and_the_maximum_token_age_are_enforced
);
