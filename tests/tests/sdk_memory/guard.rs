//! Messages published around the router are refused; service mode verifies tokens.

#![allow(clippy::unwrap_used)]

use super::*;

/// Messages put straight onto the service queue, each with a different flaw.
fn bypass_attempts(
    bus: &Bus,
    reply_to: &str,
    reply_key: Option<&ReplyKey>,
) -> Vec<(&'static str, Envelope)> {
    let signer = &bus.router.assertion_signer();
    let alice = identity_of("alice");
    let message = |route: &str| {
        let mut env = Envelope::new(r#"{"item":"free","qty":1}"#)
            .with_content_type("application/json")
            .with_correlation_id(uuid::Uuid::new_v4().to_string())
            .with_reply_to(reply_to);
        if let Some(key) = reply_key {
            env.headers.insert(headers::REPLY_KEY, key.secret());
        }
        env.headers.insert(headers::ROUTE, route);
        env
    };
    let with_assertion = |mut env: Envelope, token: String| {
        env.headers.insert(headers::ASSERTION, token);
        env
    };
    let mut no_assertion = message("orders.create");
    no_assertion.headers.insert(headers::CONSUMER, "admin");
    no_assertion.headers.insert(headers::AUTH_MODE, "service");
    let forged = {
        let env = message("orders.create");
        let token = foreign_signer().sign(&alice, "orders.create", &env.id);
        with_assertion(env, token.unwrap())
    };
    let other_route = {
        let env = message("orders.create");
        let token = signer.sign(&alice, "orders.explode", &env.id);
        with_assertion(env, token.unwrap())
    };
    let other_message = {
        let env = message("orders.create");
        let token = signer.sign(&alice, "orders.create", "another-message");
        with_assertion(env, token.unwrap())
    };
    let other_service = {
        let env = message("billing.pay");
        let token = signer.sign(&alice, "billing.pay", &env.id);
        with_assertion(env, token.unwrap())
    };
    vec![
        ("no assertion, forged identity headers", no_assertion),
        ("assertion signed by another key", forged),
        ("assertion for another route", other_route),
        ("assertion for another message", other_message),
        ("valid assertion for another service", other_service),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_published_around_the_router_are_refused_and_dead_lettered() {
    let bus = bus().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let running = bus.serve(orders(&bus.router, Arc::clone(&calls))).await;
    let tr = bus.fx.transport();
    let intruder_key = ReplyKey::generate();
    let intruder = intruder_key.queue(&bus.names);
    bus.fx
        .declare(&bus_topology::caller(&bus.names, intruder_key.id()))
        .await
        .unwrap();
    bus.fx
        .declare(&bus_topology::service(&bus.names, "billing"))
        .await
        .unwrap();
    let mut replies = tr
        .subscribe(&intruder, SubscribeOptions::default())
        .await
        .unwrap();
    let mut dead = tr
        .subscribe(bus.names.dead_queue(), SubscribeOptions::default())
        .await
        .unwrap();

    let queue = Address::queue(bus.names.service_queue("orders"));
    let mut expected = BTreeSet::new();
    for (what, env) in bypass_attempts(&bus, &intruder, Some(&intruder_key)) {
        expected.insert(env.id.clone());
        tr.publish(&queue, &env).await.unwrap();
        let refusal = recv(&mut replies, what).await;
        let body = ErrorBody::from_envelope(&refusal.envelope).expect("an error reply");
        assert_eq!(body.error.code, "not_from_bus", "{what}");
        assert_eq!(
            refusal.envelope.correlation_id, env.correlation_id,
            "{what}"
        );
        refusal.ack().await.unwrap();
    }
    // A refused message never writes into a queue that is not its sender's:
    // a service's queue, or a caller queue without the key that opens it.
    for not_own in [
        bypass_attempts(
            &bus,
            &bus.names.service_queue("billing"),
            Some(&intruder_key),
        ),
        bypass_attempts(&bus, &intruder, None),
    ] {
        let (_, env) = not_own.into_iter().next().unwrap();
        expected.insert(env.id.clone());
        tr.publish(&queue, &env).await.unwrap();
    }

    let mut dead_ids = BTreeSet::new();
    for _ in 0..expected.len() {
        let d = recv(&mut dead, "a refused message in the dead-letter queue").await;
        // The service's own sanitized copy, not the broker's dead-lettering.
        let h = &d.envelope.headers;
        assert_eq!(h.get_str(headers::CODE), Some("not_from_bus"));
        assert_eq!(h.get_str(headers::STAGE), Some("service"));
        assert_eq!(h.get(headers::X_DEATH), None);
        assert_eq!(h.get(headers::CONSUMER), None, "no forged bus header");
        assert_eq!(h.get(headers::ASSERTION), None);
        dead_ids.insert(d.envelope.id.clone());
        d.ack().await.unwrap();
    }
    assert_eq!(dead_ids, expected);
    let billing = tr
        .inspect(&bus.names.service_queue("billing"))
        .await
        .unwrap();
    assert_eq!(
        billing.messages, 0,
        "no refusal was written into another service's queue"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "no handler saw a bypass message"
    );
    running.shutdown().await.unwrap();
}

/// A genuine assertion that expired is not refused by the service: it hands
/// the request back (rejects it; the broker dead-letters it to the routers),
/// and the router re-admits only what a router delivered — the broker
/// vouches for it by the router's user — and is younger than
/// `readmit_max_age_secs`. Here one delivered years ago is recorded `stale`,
/// as is one whose latest assertion is ten minutes old but which first
/// entered the bus years ago, and the same request put in the queue by
/// another publisher is recorded
/// as dead-lettered and not re-admitted, however genuine its assertion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_assertion_is_handed_back_and_checked_by_the_router() {
    let bus = bus().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let running = bus.serve(orders(&bus.router, Arc::clone(&calls))).await;
    let tr = bus.fx.transport();
    let mut dead = tr
        .subscribe(bus.names.dead_queue(), SubscribeOptions::default())
        .await
        .unwrap();
    let mut env = Envelope::new(r#"{"item":"free","qty":1}"#)
        .with_content_type("application/json")
        .with_reply_to(bus.names.replies_queue());
    env.headers.insert(headers::ROUTE, "orders.create");
    let years_ago = bus
        .router
        .assertion_signer()
        .with_clock(Arc::new(TestClock::new(TestKit::NOW)));
    let token = years_ago.sign(&identity_of("alice"), "orders.create", &env.id);
    env.headers.insert(headers::ASSERTION, token.unwrap());
    let queue = Address::queue(bus.names.service_queue("orders"));
    // The fixture's connections log in as the router's user: this copy is
    // as the router would have delivered it.
    let mut delivered = env.clone();
    delivered.user_id = tr.user().map(str::to_owned);
    tr.publish(&queue, &delivered).await.unwrap();
    let d = recv(&mut dead, "the router's copy of the stale request").await;
    assert_eq!(d.envelope.id, env.id);
    assert_eq!(d.envelope.headers.get_str(headers::CODE), Some("stale"));
    d.ack().await.unwrap();

    // Re-admitted once before, long ago: its age counts from when it first
    // entered the bus (the header the router put on it then), not from its
    // latest assertion's ten minutes.
    let now = tollgate_bus::time::unix_now();
    let ten_minutes_ago = bus
        .router
        .assertion_signer()
        .with_clock(Arc::new(TestClock::new(now - 600)));
    let mut again = delivered.clone();
    let token = ten_minutes_ago.sign(&identity_of("alice"), "orders.create", &env.id);
    again.headers.insert(headers::ASSERTION, token.unwrap());
    let entered = i64::try_from(TestKit::NOW).unwrap();
    again.headers.insert(headers::ADMITTED_AT, entered);
    tr.publish(&queue, &again).await.unwrap();
    let d = recv(
        &mut dead,
        "the router's copy of the request re-admitted long ago",
    )
    .await;
    assert_eq!(d.envelope.headers.get_str(headers::CODE), Some("stale"));
    d.ack().await.unwrap();

    let other = bus.fx.memory_broker().unwrap().connect_as("someone-else");
    let mut forged = env.clone();
    forged.user_id = tr.user().map(str::to_owned);
    tollgate_bus::Transport::publish(&other, &queue, &forged)
        .await
        .unwrap();
    let d = recv(
        &mut dead,
        "the router's copy of the other publisher's request",
    )
    .await;
    assert_eq!(d.envelope.id, env.id);
    assert_eq!(
        d.envelope.headers.get_str(headers::CODE),
        Some("dead_lettered")
    );
    let reason = d.envelope.headers.get_str(headers::REASON).unwrap();
    assert!(
        reason.contains("no router of this bus delivered it"),
        "{reason}"
    );
    d.ack().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no handler saw either");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_mode_accepts_a_valid_token_and_refuses_a_bad_one() {
    let bus = bus().await;
    let kit = TestKit::new();
    let alice = kit.consumer("alice", Algorithm::ES256);
    let service = Service::builder("ledger")
        .credential(bus.router.registration_token("ledger-svc"))
        .verifier(Arc::new(kit.verifier()))
        .handler("whoami", |req: Request<()>| async move {
            Ok::<_, HandlerError>(req.identity.consumer)
        });
    let running = bus.serve(service).await;
    let tr = bus.fx.transport();
    let probe_key = ReplyKey::generate();
    bus.fx
        .declare(&bus_topology::caller(&bus.names, probe_key.id()))
        .await
        .unwrap();
    let probe = probe_key.queue(&bus.names);
    let mut replies = tr
        .subscribe(&probe, SubscribeOptions::default())
        .await
        .unwrap();
    let mut dead = tr
        .subscribe(bus.names.dead_queue(), SubscribeOptions::default())
        .await
        .unwrap();
    // What a router in service mode delivers: the route and the caller's own token.
    let delivered = |token: String| {
        let mut env = Envelope::new("null")
            .with_content_type("application/json")
            .with_correlation_id(uuid::Uuid::new_v4().to_string())
            .with_reply_to(probe.clone());
        env.headers.insert(headers::REPLY_KEY, probe_key.secret());
        env.headers.insert(headers::ROUTE, "ledger.whoami");
        env.headers
            .insert(headers::AUTHORIZATION, format!("Bearer {token}"));
        env
    };
    let to = Address::new(bus.names.deliver_exchange(), "ledger");
    tr.publish(&to, &delivered(alice.sign(&kit.claims("alice"))))
        .await
        .unwrap();
    let ok = recv(&mut replies, "the reply to a valid token").await;
    assert_eq!(&ok.envelope.payload[..], br#""alice""#);
    ok.ack().await.unwrap();

    let mallory = TestKit::new().consumer("alice", Algorithm::ES256);
    let forged = delivered(mallory.sign(&kit.claims("alice")));
    tr.publish(&to, &forged).await.unwrap();
    let refused = recv(&mut replies, "the refusal of a forged token").await;
    let body = ErrorBody::from_envelope(&refused.envelope).expect("an error reply");
    assert_eq!(body.error.code, "invalid_token");
    refused.ack().await.unwrap();
    let d = recv(&mut dead, "the forged request in the dead-letter queue").await;
    assert_eq!(d.envelope.id, forged.id);
    assert_eq!(
        d.envelope.headers.get_str(headers::CODE),
        Some("invalid_token")
    );
    assert!(
        d.envelope
            .headers
            .iter()
            .all(|(n, _)| !n.eq_ignore_ascii_case(headers::AUTHORIZATION)),
        "the caller's token is not in the dead-letter copy"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_whose_copy_cannot_be_published_is_kept_not_lost() {
    let bus = bus().await;
    let tr = bus.fx.transport();
    let dead = tollgate_bus::Topology::new()
        .queue(tollgate_bus::QueueSpec::classic(bus.names.dead_queue()));
    tr.delete(&dead).await.unwrap();
    let service = orders(&bus.router, Arc::default()).build().unwrap();
    let running = service.run(tr.clone(), bus.names.clone()).await.unwrap();
    let queue = bus.names.service_queue("orders");
    let mut bypass = Envelope::new(r#"{"item":"free","qty":1}"#);
    bypass.headers.insert(headers::ROUTE, "orders.create");
    tr.publish(&Address::queue(&queue), &bypass).await.unwrap();
    // Taken by the service, whose copy then has no queue to go to.
    tollgate_tests::support::wait_until(
        "the service to take the message",
        Duration::from_secs(10),
        async || tr.inspect(&queue).await.unwrap().messages == 0,
    )
    .await;
    running.shutdown().await.unwrap();
    assert_eq!(
        tr.inspect(&queue).await.unwrap().messages,
        1,
        "the refused message was dropped instead of requeued"
    );

    // With the dead-letter queue back, the next instance records it once.
    bus.fx
        .declare(&bus_topology::core(&bus.names))
        .await
        .unwrap();
    let mut dead = tr
        .subscribe(bus.names.dead_queue(), SubscribeOptions::default())
        .await
        .unwrap();
    let service = orders(&bus.router, Arc::default()).build().unwrap();
    let running = service.run(tr.clone(), bus.names.clone()).await.unwrap();
    let copy = recv(&mut dead, "the copy once the queue is back").await;
    assert_eq!(copy.envelope.id, bypass.id);
    assert_eq!(
        copy.envelope.headers.get_str(headers::CODE),
        Some("not_from_bus")
    );
    copy.ack().await.unwrap();
    running.shutdown().await.unwrap();
    drop(dead);
    assert_eq!(tr.inspect(&queue).await.unwrap().messages, 0);
    assert_eq!(
        tr.inspect(bus.names.dead_queue()).await.unwrap().messages,
        0
    );
}
