//! What the broker dead-letters on its own (a consumer's reject without
//! requeue, a quorum queue's delivery limit, an expiry) holds what the sender
//! sent: the router turns it into a clean copy, so `<ns>.dead` never holds a
//! credential or a forged header. Through the real router, on both transports.

// The cases are plain async fns instantiated per transport by
// `on_both_transports!`; a failed expectation must panic.
#![allow(clippy::unwrap_used)]

use tollgate_bus::{Address, Envelope, SubscribeOptions, headers};
use tollgate_tests::{
    conformance::transport::recv,
    support::{Fixture, TestBus},
};

async fn what_the_broker_dead_letters_reaches_the_dead_letter_queue_clean(fx: &Fixture) {
    let bus = TestBus::start(fx).await;
    let tr = fx.transport().as_ref();
    let service_queue = bus.names.service_queue("orders");
    let mut raw = Envelope::new(r#"{"sku":"a"}"#).with_correlation_id("c-1");
    for (name, value) in [
        (headers::AUTHORIZATION, "Bearer secret-token"),
        ("Authorization", "Bearer other-secret"),
        ("x-tollgate-consumer", "admin"),
        (headers::REPLY_KEY, "caller-secret"),
        ("trace-id", "t-1"),
    ] {
        raw.headers.insert(name, value);
    }
    tr.publish(&Address::queue(service_queue.as_str()), &raw)
        .await
        .unwrap();
    // Its consumer rejects it without requeue: the broker dead-letters it.
    let mut service = tr
        .subscribe(&service_queue, SubscribeOptions::prefetch(1))
        .await
        .unwrap();
    let mut dead = tr
        .subscribe(bus.names.dead_queue(), SubscribeOptions::default())
        .await
        .unwrap();
    recv(&mut service, "the raw message")
        .await
        .reject(false)
        .await
        .unwrap();

    let copy = recv(&mut dead, "the clean copy").await;
    let h = &copy.envelope.headers;
    assert_eq!(copy.envelope.id, raw.id);
    assert_eq!(h.get_str(headers::CODE), Some("dead_lettered"));
    assert_eq!(h.get_str(headers::STAGE), Some("broker"));
    let reason = h.get_str(headers::REASON).unwrap();
    assert!(
        reason.contains(&service_queue) && reason.contains("rejected"),
        "{reason}"
    );
    assert_eq!(
        h.get_str("trace-id"),
        Some("t-1"),
        "the sender's plain headers stay"
    );
    for (name, _) in h.iter() {
        let name = name.to_ascii_lowercase();
        assert_ne!(
            name, "authorization",
            "a credential in the dead-letter queue"
        );
        assert_ne!(name, headers::X_DEATH);
        assert!(
            !name.starts_with("x-first-death") && !name.starts_with("x-last-death"),
            "{name}"
        );
        assert_ne!(name, "x-tollgate-consumer");
        assert_ne!(name, headers::REPLY_KEY);
    }
    copy.ack().await.unwrap();

    let names = bus.names.clone();
    bus.stop().await;
    drop((dead, service));
    for queue in [
        names.dead_queue(),
        names.poison_queue(),
        service_queue.as_str(),
    ] {
        assert_eq!(
            tr.inspect(queue).await.unwrap().messages,
            0,
            "{queue} holds more than the one clean copy"
        );
    }
}

tollgate_tests::on_both_transports!(
    what_the_broker_dead_letters_reaches_the_dead_letter_queue_clean
);
