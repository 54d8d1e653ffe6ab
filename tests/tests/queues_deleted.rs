//! A queue of the bus is deleted under a running router (an operator's
//! mistake, a policy): the router declares the bus topology again and keeps
//! routing requests and replies, and keeps a record of every refusal — it
//! never idles without a consumer, nor loses a dead letter.

// The cases are plain async fns instantiated per transport by
// `on_both_transports!`; a failed expectation must panic.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::json;
use tollgate_bus::{QueueSpec, SubscribeOptions, Topology, headers};
use tollgate_tests::{
    conformance::transport::recv,
    support::{Fixture, TestBus, wait_until},
};

async fn the_router_consumes_again_after_its_queues_were_deleted(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let tr = fx.transport().as_ref();
    bus.register(tr, "billing", "application/json", "2").await;
    let names = &bus.names;
    let deleted = Topology::new()
        .queue(QueueSpec::classic(names.ingress_queue()))
        .queue(QueueSpec::classic(names.replies_queue()));
    tr.delete(&deleted).await.unwrap();
    for queue in [names.ingress_queue(), names.replies_queue()] {
        wait_until(
            &format!("a consumer on {queue} again"),
            Duration::from_secs(20),
            async || tr.inspect(queue).await.is_ok_and(|q| q.consumers >= 1),
        )
        .await;
    }

    // A request routes to the service, and its reply reaches the caller.
    let mut service = tr
        .subscribe(&names.service_queue("billing"), SubscribeOptions::default())
        .await
        .unwrap();
    let (caller_q, mut replies) = bus.caller_queue(tr).await;
    let request = bus.request(&json!({"n": 1}), Some(&bus.token("web")), Some(&caller_q));
    bus.send(tr, "billing.charge", &request).await;
    let delivered = recv(&mut service, "the request after the queues came back").await;
    let env = &delivered.envelope;
    let mut reply = tollgate_bus::Envelope::new(r#"{"ok":true}"#)
        .with_content_type("application/json")
        .with_correlation_id(env.correlation_id.clone().unwrap())
        .transient();
    reply.headers.insert(
        headers::REPLY_CONTEXT,
        env.headers.get_str(headers::REPLY_CONTEXT).unwrap(),
    );
    tr.publish(
        &tollgate_bus::Address::queue(env.reply_to.clone().unwrap()),
        &reply,
    )
    .await
    .unwrap();
    delivered.ack().await.unwrap();
    let answer = recv(&mut replies, "the reply through the new replies queue").await;
    assert_eq!(answer.envelope.payload.as_ref(), br#"{"ok":true}"#);
    answer.ack().await.unwrap();
    bus.stop().await;
}

async fn a_refusal_after_the_dead_letter_queue_was_deleted_still_leaves_its_copy(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let tr = fx.transport().as_ref();
    let names = &bus.names;
    tr.delete(&Topology::new().queue(QueueSpec::classic(names.dead_queue())))
        .await
        .unwrap();
    let (caller_q, mut replies) = bus.caller_queue(tr).await;
    // No credential: refused at authentication.
    let request = bus.request(&json!({"n": 1}), None, Some(&caller_q));
    bus.send(tr, "billing.charge", &request).await;
    let error = recv(&mut replies, "the error reply").await;
    assert_eq!(
        error.envelope.headers.get_str(headers::ERROR),
        Some("token_missing")
    );
    error.ack().await.unwrap();
    // The copy is published after the error reply: wait for the queue to hold it.
    wait_until(
        "the dead-letter queue declared again, with the copy",
        Duration::from_secs(20),
        async || {
            tr.inspect(names.dead_queue())
                .await
                .is_ok_and(|q| q.messages >= 1)
        },
    )
    .await;
    let mut dead = tr
        .subscribe(names.dead_queue(), SubscribeOptions::default())
        .await
        .unwrap();
    let copy = recv(
        &mut dead,
        "the dead-letter copy in the declared-again queue",
    )
    .await;
    assert_eq!(copy.envelope.id, request.id);
    // Recorded with its own verdict (the copy's publish was confirmed into
    // the declared-again queue).
    assert_eq!(
        copy.envelope.headers.get_str(headers::CODE),
        Some("token_missing")
    );
    copy.ack().await.unwrap();
    bus.stop().await;
}

tollgate_tests::on_both_transports!(
    the_router_consumes_again_after_its_queues_were_deleted,
    a_refusal_after_the_dead_letter_queue_was_deleted_still_leaves_its_copy
);
