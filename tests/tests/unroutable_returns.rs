//! A publish's verdict on RabbitMQ is its own, even when routable and
//! unroutable publishes share one confirm channel.
//!
//! A `basic.return` names no delivery tag, and the broker's acks may cover
//! several publishes at once (multiple) or come for an earlier publish
//! between a return and its own ack. A return handed to the wrong publish
//! would make a routable message look unroutable (the router would refuse a
//! message its service also gets) and the unroutable one look delivered —
//! lost. The client gives each return to the oldest pending publish of the
//! same message to the same place (`tollgate_wire`'s confirms), so every
//! unroutable publish is reported to its own publisher, and no other.

use futures_util::future::join_all;
use tollgate_bus::{
    Address, AmqpConfig, AmqpTransport, Envelope, ExchangeSpec, QueueSpec, Topology, Transport,
    TransportError,
};
use tollgate_tests::support::{Fixture, amqp_url};

/// Publishes in one burst: enough for the broker to confirm in batches.
const EACH: usize = 1500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_publish_gets_its_own_verdict_and_no_unroutable_message_is_lost() {
    let fx = Fixture::amqp().await;
    let exchange = fx.ns.name("x");
    let routed = fx.ns.name("routed");
    fx.declare(
        &Topology::new()
            .exchange(ExchangeSpec::topic(&exchange))
            .queue(QueueSpec::classic(&routed))
            .bind(&exchange, &routed, "routed"),
    )
    .await
    .expect("declare");
    let config = AmqpConfig::new(amqp_url()).with_connection_name(fx.ns.prefix());
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
    assert_eq!(
        reported_unroutable, EACH,
        "every unroutable publish is reported to its own publisher"
    );
    transport.close().await.expect("close");
    fx.cleanup().await;
}
