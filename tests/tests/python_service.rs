//! A service written in Python from README's service-side wire contract only
//! (`clients/python/service.py`: pika, PyJWT), behind `tollgate serve` on
//! RabbitMQ: it registers and is admitted, answers through the router, and
//! refuses messages published around the router.

#![allow(clippy::unwrap_used)]

use std::{ffi::OsString, sync::Arc, time::Duration};

use serde_json::{Value, json};
use tollgate_auth::{AssertionAlg, AssertionSigner, Identity, testkit::TestClock};
use tollgate_bus::{Address, Envelope, SubscribeOptions, Subscription, bus_topology, headers};
use tollgate_tests::{
    conformance::transport::recv,
    support::{
        Fixture, RouterProcess, TestBus,
        clients::{Language, Running, bus_args},
        wait_until,
    },
};

/// The Python service's next event line.
fn next_event(service: &mut Running) -> Value {
    tokio::task::block_in_place(|| service.next_line()).expect("the service printed an event")
}

/// The next reply on `replies`: its error code (if any) and JSON body.
async fn reply(replies: &mut Subscription, what: &str) -> (Option<String>, Value, Envelope) {
    let d = recv(replies, what).await;
    let envelope = d.envelope.clone();
    d.ack().await.unwrap();
    let code = envelope.headers.get_str(headers::ERROR).map(str::to_owned);
    let body = serde_json::from_slice(&envelope.payload).unwrap();
    (code, body, envelope)
}

/// A bus with `tollgate serve` running and the Python `calc` service
/// admitted and routed to, started with the key arguments `keys` gives.
async fn bus_with_python_calc(
    fx: &Fixture,
    keys: impl FnOnce(&TestBus) -> Vec<OsString>,
) -> (TestBus, RouterProcess, Running) {
    let bus = TestBus::prepare(fx, "").await;
    let tr = fx.transport().as_ref();
    // Declared here with the router's arguments (and recorded for cleanup):
    // the service's own declaration must match them.
    fx.declare(&bus_topology::service(&bus.names, "calc"))
        .await
        .unwrap();
    let mut router = RouterProcess::spawn(&bus, &format!("{}-r", fx.ns.prefix()));
    router.wait_started(&bus, tr).await;
    let mut command = Language::Python.command("service.py");
    command
        .args(bus_args(&bus, "calc-svc"))
        .args(["--service", "calc"])
        .args(keys(&bus));
    let mut service = Running::spawn(command);
    let ready = next_event(&mut service);
    assert_eq!(ready["event"], "ready", "{ready}");
    router.wait_routing(1).await;
    (bus, router, service)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_service_registers_answers_and_refuses_what_did_not_pass_the_bus() {
    let fx = Fixture::amqp().await;
    let (bus, mut router, mut service) = bus_with_python_calc(&fx, |bus| {
        let bus_key = bus.dir.join("bus.pub.pem");
        std::fs::write(&bus_key, &bus.assertion_public_pem).unwrap();
        vec!["--bus-key".into(), bus_key.into()]
    })
    .await;
    let tr = fx.transport().as_ref();

    // Through the router: an answer, and the service's own error.
    let (key, mut replies) = bus.caller_queue(tr).await;
    let alice = bus.token("alice");
    let add = bus.request(&json!({"a": 2, "b": 3}), Some(&alice), Some(&key));
    bus.send(tr, "calc.add", &add).await;
    let (code, body, envelope) = reply(&mut replies, "the sum").await;
    assert_eq!(code, None, "{body}");
    assert_eq!(body, json!({"sum": 5, "caller": "alice"}));
    assert_eq!(envelope.correlation_id, add.correlation_id);
    let unknown = bus.request(&json!({}), Some(&alice), Some(&key));
    bus.send(tr, "calc.divide", &unknown).await;
    let (code, body, _) = reply(&mut replies, "the unknown method's error").await;
    assert_eq!(code.as_deref(), Some("unknown_method"), "{body}");
    assert_eq!(body["error"]["stage"], "service");

    // Around the router, straight onto the service queue: no assertion, an
    // assertion signed by another key, and a genuine one for another message.
    let (forger_private, _) = tollgate_auth::generate_assertion_key().unwrap();
    let forger = AssertionSigner::from_pem(forger_private.as_bytes()).unwrap();
    let genuine = bus.assertion_signer();
    let who = Identity::new("alice");
    let mut bypasses = Vec::new();
    for signer in [None, Some(&forger), Some(&genuine)] {
        let mut request = bus.request(&json!({"a": 1, "b": 1}), None, Some(&key));
        request.headers.insert(headers::ROUTE, "calc.add");
        if let Some(signer) = signer {
            let mid = if std::ptr::eq(signer, &genuine) {
                "another-message"
            } else {
                request.id.as_str()
            };
            let assertion = signer.sign(&who, "calc.add", mid).unwrap();
            request.headers.insert(headers::ASSERTION, assertion);
        }
        tr.publish(&Address::queue(bus.names.service_queue("calc")), &request)
            .await
            .unwrap();
        bypasses.push(request);
    }
    for request in &bypasses {
        let (code, body, envelope) = reply(&mut replies, "a refusal").await;
        assert_eq!(code.as_deref(), Some("not_from_bus"), "{body}");
        assert_eq!(body["error"]["code"], "not_from_bus");
        assert!(
            bypasses
                .iter()
                .any(|r| r.correlation_id == envelope.correlation_id),
            "a refusal of {:?} answers one of the bypasses",
            request.id
        );
        let event = next_event(&mut service);
        assert_eq!(event["event"], "refused", "{event}");
    }

    // A request the router delivered ten minutes ago, whose assertion expired
    // while it waited: handed back, not refused; the router re-admits it
    // with a fresh assertion and the service serves it (no refusal, no
    // dead-letter copy: the copies below are the bypasses' only).
    let now = tollgate_bus::time::unix_now();
    let ten_minutes_ago = bus
        .assertion_signer()
        .with_clock(Arc::new(TestClock::new(now - 600)));
    let mut late = bus.request(&json!({"a": 4, "b": 4}), None, None);
    late.headers.insert(headers::ROUTE, "calc.add");
    let assertion = ten_minutes_ago.sign(&who, "calc.add", &late.id).unwrap();
    late.headers.insert(headers::ASSERTION, assertion);
    // As the router delivered it: the fixture logs in as the router's user.
    late.user_id = tr.user().map(str::to_owned);
    tr.publish(&Address::queue(bus.names.service_queue("calc")), &late)
        .await
        .unwrap();
    let event = next_event(&mut service);
    assert_eq!(event["event"], "handed_back", "{event}");
    assert_eq!(event["message_id"], late.id.as_str());
    wait_until(
        "the router to re-admit it",
        Duration::from_secs(10),
        async || {
            router
                .metrics()
                .contains(r#"tollgate_readmissions_total{outcome="readmitted"} 1"#)
        },
    )
    .await;

    // Stopped, it deregisters and leaves nothing unsettled in its queue.
    let status = tokio::task::block_in_place(|| service.terminate());
    assert!(status.success(), "the service exited with {status}");
    assert_eq!(next_event(&mut service)["event"], "stopped");
    wait_until(
        "the router to drop the deregistered service",
        Duration::from_secs(10),
        async || router.registered_services() == Some(0.0),
    )
    .await;
    let queue = bus.names.service_queue("calc");
    wait_until(
        "the service queue to be empty",
        Duration::from_secs(10),
        async || tr.inspect(&queue).await.unwrap().messages == 0,
    )
    .await;
    router.terminate();

    // One dead-letter copy per bypass, clean of the sender's reserved headers.
    let mut dead = tr
        .subscribe(bus.names.dead_queue(), SubscribeOptions::prefetch(10))
        .await
        .unwrap();
    let mut copied = Vec::new();
    for _ in &bypasses {
        let copy = recv(&mut dead, "a dead-letter copy").await;
        let h = &copy.envelope.headers;
        assert_eq!(h.get_str(headers::CODE), Some("not_from_bus"));
        assert_eq!(h.get_str(headers::STAGE), Some("service"));
        assert_eq!(h.get_str(headers::ROUTE), Some("calc.add"));
        assert!(
            h.get(headers::ASSERTION).is_none(),
            "the assertion was copied"
        );
        assert!(
            h.get(headers::REPLY_KEY).is_none(),
            "the reply key was copied"
        );
        copied.push(copy.envelope.id.clone());
        copy.ack().await.unwrap();
    }
    copied.sort();
    let mut sent: Vec<String> = bypasses.iter().map(|r| r.id.clone()).collect();
    sent.sort();
    assert_eq!(copied, sent);
    drop(dead);
    assert_eq!(
        tr.inspect(bus.names.dead_queue()).await.unwrap().messages,
        0,
        "no other dead-letter copy"
    );
    drop(replies);
    bus.stop().await;
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_service_holding_only_its_secret_is_served_with_hs256_and_refuses_other_keys() {
    let fx = Fixture::amqp().await;
    let signer = |bus: &TestBus| bus.assertion_signer();
    let (bus, mut router, mut service) = bus_with_python_calc(&fx, |bus| {
        let secret = bus.dir.join("calc.secret");
        let text = signer(bus).service_secret("calc").unwrap().to_text();
        std::fs::write(&secret, format!("{text}\n")).unwrap();
        vec!["--bus-secret-file".into(), secret.into()]
    })
    .await;
    let tr = fx.transport().as_ref();

    // Served through the router although the service holds no public key:
    // the router signed HS256 because the service asked for it.
    let (key, mut replies) = bus.caller_queue(tr).await;
    let add = bus.request(
        &json!({"a": 2, "b": 3}),
        Some(&bus.token("alice")),
        Some(&key),
    );
    bus.send(tr, "calc.add", &add).await;
    let (code, body, _) = reply(&mut replies, "the sum").await;
    assert_eq!(code, None, "{body}");
    assert_eq!(body, json!({"sum": 5, "caller": "alice"}));

    // Around the router: HS256 with a secret that is not calc's (another
    // bus key's), and the bus's own Ed25519 assertion, which a service
    // holding only its secret does not take.
    let (forger_private, _) = tollgate_auth::generate_assertion_key().unwrap();
    let forger = AssertionSigner::from_pem(forger_private.as_bytes()).unwrap();
    let genuine = signer(&bus);
    let who = Identity::new("alice");
    for (signer, alg) in [
        (&forger, AssertionAlg::HS256),
        (&genuine, AssertionAlg::EdDSA),
    ] {
        let mut request = bus.request(&json!({"a": 1, "b": 1}), None, Some(&key));
        request.headers.insert(headers::ROUTE, "calc.add");
        let assertion = signer.sign_for(alg, &who, "calc.add", &request.id).unwrap();
        request.headers.insert(headers::ASSERTION, assertion);
        tr.publish(&Address::queue(bus.names.service_queue("calc")), &request)
            .await
            .unwrap();
        let (code, body, envelope) = reply(&mut replies, "a refusal").await;
        assert_eq!(code.as_deref(), Some("not_from_bus"), "{alg:?}: {body}");
        assert_eq!(envelope.correlation_id, request.correlation_id);
        assert_eq!(next_event(&mut service)["event"], "refused");
    }

    let status = tokio::task::block_in_place(|| service.terminate());
    assert!(status.success(), "the service exited with {status}");
    router.terminate();
    drop(replies);
    bus.stop().await;
    fx.cleanup().await;
}
