//! A publish's verdict on RabbitMQ is its own, even when routable and
//! unroutable publishes share one confirm channel.
//!
//! lapin hands the broker's `basic.return` of an unroutable message to
//! whichever publisher confirm it completes next, which may be another,
//! routable publish's (on a multiple ack, or an earlier publish's confirm
//! arriving between the return and its own). Unchecked, a routable message
//! looks unroutable (the router would refuse a message the service also
//! gets) and the unroutable one looks delivered — lost. The transport checks
//! that a return is its publish's own; a return handed to the wrong publish
//! goes to the rescue queue, so every unroutable message is either reported
//! to its publisher or kept there.

use std::time::Duration;

use futures_util::future::join_all;
use tollgate_bus::{
    Address, AmqpConfig, AmqpTransport, Envelope, ExchangeSpec, QueueSpec, Topology, Transport,
    TransportError,
};
use tollgate_tests::support::{Fixture, amqp_url, poll_until};

/// Publishes in one burst: enough for the broker to confirm in batches.
const EACH: usize = 1500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_publish_gets_its_own_verdict_and_no_unroutable_message_is_lost() {
    let fx = Fixture::amqp().await;
    let exchange = fx.ns.name("x");
    let (routed, rescue) = (fx.ns.name("routed"), fx.ns.name("rescue"));
    fx.declare(
        &Topology::new()
            .exchange(ExchangeSpec::topic(&exchange))
            .queue(QueueSpec::classic(&routed))
            .queue(QueueSpec::classic(&rescue))
            .bind(&exchange, &routed, "routed"),
    )
    .await
    .expect("declare");
    let config = AmqpConfig::new(amqp_url())
        .with_connection_name(fx.ns.prefix())
        .with_return_rescue(&rescue);
    let transport = AmqpTransport::connect(config).await.expect("connect");

    // Alone, one return is unambiguous (and the exchange's check is done).
    let first = Envelope::new("first").with_id("first");
    let alone = transport
        .publish(&Address::new(&exchange, "nowhere"), &first)
        .await;
    assert!(
        matches!(alone, Err(TransportError::Unroutable { .. })),
        "{alone:?}"
    );

    // Interleaved: persistent routable messages (confirmed after the disk
    // write) between unroutable ones (returned and confirmed at once).
    let publishes = (0..EACH * 2).map(|i| {
        let (key, body) = if i % 2 == 0 {
            ("routed", format!("routed-{i}"))
        } else {
            ("nowhere", format!("lost-{i}"))
        };
        let envelope = Envelope::new(body.clone()).with_id(body);
        let to = Address::new(&exchange, key);
        let transport = &transport;
        async move { (key, transport.publish(&to, &envelope).await) }
    });
    let outcomes = join_all(publishes).await;

    let mut reported_unroutable = 0;
    for (key, outcome) in &outcomes {
        match (*key, outcome) {
            (_, Ok(())) => {}
            ("nowhere", Err(TransportError::Unroutable { .. })) => reported_unroutable += 1,
            (key, Err(e)) => panic!("a publish to `{key}` failed: {e}"),
        }
    }
    let routed_count = transport.inspect(&routed).await.expect("inspect").messages;
    assert_eq!(
        routed_count as usize, EACH,
        "every routable publish reached its queue"
    );
    // Rescued copies travel after their publish was confirmed: wait for all.
    let mut rescued = 0;
    let all_accounted = poll_until(Duration::from_secs(10), async || {
        rescued = transport.inspect(&rescue).await.map_or(0, |i| i.messages) as usize;
        reported_unroutable + rescued == EACH
    })
    .await;
    assert!(
        all_accounted,
        "{EACH} unroutable publishes: {reported_unroutable} reported, {rescued} rescued"
    );
    println!("{reported_unroutable} returns reached their own publish, {rescued} were rescued");
    transport.close().await.expect("close");
    fx.cleanup().await;
}
