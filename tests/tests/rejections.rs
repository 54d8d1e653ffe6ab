//! Every refusal path of the router on RabbitMQ: one error reply to the
//! caller, one dead-letter copy with the reason and without the credential,
//! nothing delivered to any service, and the router still serving.

// The cases are plain async fns instantiated per transport by
// `on_both_transports!`; a failed expectation must panic.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use tollgate_bus::{Envelope, ErrorBody, Headers, ReplyKey, SubscribeOptions, Transport, headers};
use tollgate_tests::{
    conformance::transport::recv,
    support::{Fixture, TestBus},
};

struct Case {
    name: &'static str,
    route: &'static str,
    envelope: Envelope,
    code: &'static str,
    stage: &'static str,
    replies: bool,
}

fn cases(bus: &TestBus, caller_q: &ReplyKey) -> Vec<Case> {
    let web = bus.token("web");
    let body = json!({"sku": "a"});
    let req = |token: Option<&str>| bus.request(&body, token, Some(caller_q));
    let expired = bus.token_with("web", -120, json!({}));
    let mut bad_signature = web.clone();
    bad_signature.truncate(web.len() - 4);
    bad_signature.push_str("AAAA");
    let alg_none = {
        let b64 = |s: &str| tollgate_auth::testkit::b64(s);
        let claims = format!(
            r#"{{"key":"web","exp":{}}}"#,
            tollgate_tests::support::now() + 300
        );
        format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&claims))
    };
    let mut two_credentials = req(Some(&web));
    two_credentials
        .headers
        .insert("Authorization", format!("Bearer {web}"));
    let mut not_json = req(Some(&web));
    not_json.payload = bytes::Bytes::from_static(b"{not json");
    let huge = {
        let mut e = req(Some(&web));
        e.payload = vec![b' '; 2 * 1024 * 1024].into();
        e
    };
    let many_headers = req(Some(&web)).with_headers(
        (0..100)
            .map(|i| (format!("h{i}"), 1i32.into()))
            .chain([
                (
                    headers::AUTHORIZATION.to_owned(),
                    format!("Bearer {web}").into(),
                ),
                (headers::REPLY_KEY.to_owned(), caller_q.secret().into()),
            ])
            .collect::<Headers>(),
    );
    let mut bad_reply_to = req(Some(&web));
    bad_reply_to.reply_to = Some(bus.names.service_queue("billing"));
    vec![
        Case {
            name: "no credential",
            route: "orders.get",
            envelope: req(None),
            code: "token_missing",
            stage: "authenticate",
            replies: true,
        },
        Case {
            name: "expired",
            route: "orders.get",
            envelope: req(Some(&expired)),
            code: "token_expired",
            stage: "authenticate",
            replies: true,
        },
        Case {
            name: "bad signature",
            route: "orders.get",
            envelope: req(Some(&bad_signature)),
            code: "invalid_token",
            stage: "authenticate",
            replies: true,
        },
        Case {
            name: "alg none",
            route: "orders.get",
            envelope: req(Some(&alg_none)),
            code: "invalid_token",
            stage: "authenticate",
            replies: true,
        },
        Case {
            name: "two credentials",
            route: "orders.get",
            envelope: two_credentials,
            code: "ambiguous_credential",
            stage: "authenticate",
            replies: true,
        },
        Case {
            name: "forbidden",
            route: "billing.charge",
            envelope: req(Some(&bus.token("reader"))),
            code: "forbidden",
            stage: "authorize",
            replies: true,
        },
        Case {
            name: "unknown consumer route",
            route: "orders.get",
            envelope: req(Some(&bus.token("intruder"))),
            code: "forbidden",
            stage: "authorize",
            replies: true,
        },
        Case {
            name: "invalid route",
            route: "orders",
            envelope: req(Some(&web)),
            code: "forbidden",
            stage: "authorize",
            replies: true,
        },
        Case {
            name: "unknown service",
            route: "ghost.haunt",
            envelope: req(Some(&web)),
            code: "no_route",
            stage: "route",
            replies: true,
        },
        Case {
            name: "untranslatable",
            route: "inventory.reserve",
            envelope: not_json,
            code: "bad_payload",
            stage: "translate",
            replies: true,
        },
        Case {
            name: "too large",
            route: "orders.get",
            envelope: huge,
            code: "too_large",
            stage: "limits",
            replies: true,
        },
        Case {
            name: "too many headers",
            route: "orders.get",
            envelope: many_headers,
            code: "too_large",
            stage: "limits",
            replies: true,
        },
        Case {
            name: "reply_to a service queue",
            route: "orders.get",
            envelope: bad_reply_to,
            code: "bad_reply_to",
            stage: "limits",
            replies: false,
        },
    ]
}

async fn every_refusal_gets_one_error_reply_and_one_dead_letter_and_delivers_nothing(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let tr = fx.transport().as_ref();
    bus.register(tr, "orders", "application/json", "2").await;
    bus.register(tr, "inventory", "application/msgpack", "2")
        .await;
    let (caller_q, mut replies) = bus.countable_caller_queue(fx).await;
    let mut dead = tr
        .subscribe(bus.names.dead_queue(), SubscribeOptions::prefetch(100))
        .await
        .unwrap();

    let cases = cases(&bus, &caller_q);
    for case in &cases {
        bus.send(tr, case.route, &case.envelope).await;
        let copy = recv(
            &mut dead,
            &format!("the dead-letter copy of `{}`", case.name),
        )
        .await;
        let h = &copy.envelope.headers;
        assert_eq!(copy.envelope.id, case.envelope.id, "{}", case.name);
        assert_eq!(h.get_str(headers::CODE), Some(case.code), "{}", case.name);
        assert_eq!(h.get_str(headers::STAGE), Some(case.stage), "{}", case.name);
        assert!(
            h.get_str(headers::REASON).is_some_and(|r| !r.is_empty()),
            "{}",
            case.name
        );
        assert!(
            h.iter()
                .all(|(n, _)| !n.eq_ignore_ascii_case("authorization")),
            "{}: credential in DLQ",
            case.name
        );
        copy.ack().await.unwrap();
        if case.replies {
            let reply = recv(&mut replies, &format!("the error reply to `{}`", case.name)).await;
            assert_eq!(
                reply.envelope.correlation_id, case.envelope.correlation_id,
                "{}",
                case.name
            );
            assert_eq!(
                reply.envelope.content_type.as_deref(),
                Some("application/json")
            );
            assert_eq!(
                reply.envelope.headers.get_str(headers::ERROR),
                Some(case.code),
                "{}",
                case.name
            );
            let body = ErrorBody::from_envelope(&reply.envelope).expect("an error body");
            assert_eq!(
                (body.error.code.as_str(), body.error.stage.as_str()),
                (case.code, case.stage)
            );
            reply.ack().await.unwrap();
        }
    }

    // Still serving: a valid request is delivered.
    let ok = bus.request(
        &json!({"sku": "b"}),
        Some(&bus.token("web")),
        Some(&caller_q),
    );
    bus.send(tr, "orders.get", &ok).await;
    let mut orders = tr
        .subscribe(
            &bus.names.service_queue("orders"),
            SubscribeOptions::default(),
        )
        .await
        .unwrap();
    let delivered = recv(&mut orders, "the valid request after all refusals").await;
    assert_eq!(
        delivered.envelope.id, ok.id,
        "no refused message reached the service"
    );
    delivered.ack().await.unwrap();

    // Exactly one reply and one copy each: once the router stopped and every
    // consumer is cancelled (an unacked extra copy goes back to its queue),
    // nothing else is waiting anywhere.
    let names = bus.names.clone();
    bus.stop().await;
    drop((replies, dead, orders));
    for queue in [
        caller_q.queue(&names),
        names.dead_queue().to_owned(),
        names.service_queue("orders"),
        names.service_queue("inventory"),
        names.service_queue("billing"),
    ] {
        assert_eq!(
            tr.inspect(&queue).await.unwrap().messages,
            0,
            "{queue} holds extra messages"
        );
    }
}

async fn a_reply_without_a_valid_context_is_dead_lettered_not_forwarded(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let tr: &dyn Transport = fx.transport().as_ref();
    let (caller_q, _replies) = bus.caller_queue(tr).await;
    let mut dead = tr
        .subscribe(bus.names.dead_queue(), SubscribeOptions::default())
        .await
        .unwrap();
    let mut forged = Envelope::new("{}").with_correlation_id("c");
    forged.headers.insert(
        headers::REPLY_CONTEXT,
        format!("{}.forged", caller_q.queue(&bus.names)),
    );
    tr.publish(
        &tollgate_bus::Address::queue(bus.names.replies_queue()),
        &forged,
    )
    .await
    .unwrap();
    let copy = recv(&mut dead, "the refused reply").await;
    assert_eq!(
        copy.envelope.headers.get_str(headers::CODE),
        Some("not_from_bus")
    );
    copy.ack().await.unwrap();
    assert_eq!(
        tr.inspect(&caller_q.queue(&bus.names))
            .await
            .unwrap()
            .messages,
        0
    );
    bus.stop().await;
}

tollgate_tests::on_both_transports!(
    every_refusal_gets_one_error_reply_and_one_dead_letter_and_delivers_nothing,
    a_reply_without_a_valid_context_is_dead_lettered_not_forwarded
);
