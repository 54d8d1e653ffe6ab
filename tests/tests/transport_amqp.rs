//! The transport conformance suite on RabbitMQ, plus AMQP-only cases.

use tollgate_tests::support::Fixture;

tollgate_tests::transport_conformance!(amqp, Fixture::amqp());

mod amqp_only {
    use std::time::Duration;

    use tollgate_bus::{
        Address, AmqpConfig, AmqpTransport, Envelope, QueueSpec, SubscribeOptions, Subscription,
        Topology, Transport, TransportError,
    };
    use tollgate_tests::{
        conformance::transport::recv,
        support::{ChaosProxy, Fixture},
    };

    const BROKER: &str = "127.0.0.1:5672";

    async fn publish_retrying(tr: &AmqpTransport, to: &Address, envelope: &Envelope) {
        for _ in 0..100 {
            match tr.publish(to, envelope).await {
                Ok(()) => return,
                Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => panic!("publish failed for good: {e}"),
            }
        }
        panic!("publish kept failing for 10 s");
    }

    async fn through(proxy: &ChaosProxy, fx: &Fixture) -> AmqpTransport {
        let config = AmqpConfig::new(proxy.amqp_url())
            .with_connection_name(fx.ns.prefix())
            .with_reconnect_timeout(Duration::from_secs(20));
        AmqpTransport::connect(config)
            .await
            .expect("connect through proxy")
    }

    /// A transport through a fresh proxy, consuming the new classic queue
    /// `name`. The queue is declared through the fixture (direct
    /// connection), so cleanup never depends on the proxy.
    async fn subscribed_through_proxy(
        fx: &Fixture,
        name: &str,
    ) -> (ChaosProxy, AmqpTransport, String, Subscription) {
        let proxy = ChaosProxy::start(BROKER.into()).await.expect("proxy");
        let tr = through(&proxy, fx).await;
        let q = fx.ns.name(name);
        fx.declare(&Topology::new().queue(QueueSpec::classic(&q)))
            .await
            .expect("declare");
        let sub = tr
            .subscribe(&q, SubscribeOptions::prefetch(10))
            .await
            .expect("subscribe");
        (proxy, tr, q, sub)
    }

    #[tokio::test]
    async fn unreachable_broker_is_a_connect_error() {
        let config = AmqpConfig::new("amqp://guest:guest@127.0.0.1:1/%2f");
        let err = AmqpTransport::connect(config).await.unwrap_err();
        assert!(matches!(err, TransportError::Connect(_)), "got {err}");
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn wrong_credentials_are_a_connect_error() {
        let config = AmqpConfig::new("amqp://nobody:wrong@127.0.0.1:5672/%2f");
        let err = AmqpTransport::connect(config).await.unwrap_err();
        assert!(matches!(err, TransportError::Connect(_)), "got {err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publishes_and_consumers_recover_after_the_connection_is_cut() {
        let fx = Fixture::amqp().await;
        let (proxy, tr, q, mut sub) = subscribed_through_proxy(&fx, "survivor").await;
        tr.publish(&Address::queue(&q), &Envelope::new("before"))
            .await
            .expect("publish before");
        recv(&mut sub, "the message before the cut")
            .await
            .ack()
            .await
            .expect("ack");

        let held = {
            tr.publish(&Address::queue(&q), &Envelope::new("held"))
                .await
                .expect("publish held");
            recv(&mut sub, "the held message").await
        };
        proxy.cut();
        // The connection is gone, so this ack cannot reach the broker. Whether the
        // client has noticed yet (error) or not (frame dropped) is a race; either
        // way the broker must hand the message out again, which is asserted below.
        let _ = held.ack().await;

        // A publish racing the client's discovery of the cut fails as retryable;
        // callers (the router) retry, and so does this test.
        publish_retrying(&tr, &Address::queue(&q), &Envelope::new("after")).await;
        let mut bodies = Vec::new();
        for _ in 0..2 {
            let d = recv(&mut sub, "a message after the consumer re-registered").await;
            bodies.push(String::from_utf8_lossy(&d.envelope.payload).into_owned());
            d.ack().await.expect("ack after reconnect");
        }
        bodies.sort();
        assert_eq!(bodies, ["after", "held"]);
        tr.close().await.expect("close");
        fx.cleanup().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publish_fails_typed_while_the_broker_is_away_and_recovers() {
        let fx = Fixture::amqp().await;
        let proxy = ChaosProxy::start(BROKER.into()).await.expect("proxy");
        let config = AmqpConfig::new(proxy.amqp_url())
            .with_connection_name(fx.ns.prefix())
            .with_reconnect_timeout(Duration::from_millis(500));
        let tr = AmqpTransport::connect(config).await.expect("connect");
        let q = fx.ns.name("outage");
        fx.declare(&Topology::new().queue(QueueSpec::classic(&q)))
            .await
            .expect("declare");
        proxy.set_refusing(true);
        proxy.cut();
        let err = tr
            .publish(&Address::queue(&q), &Envelope::new("lost?"))
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "an outage must be retryable, got {err}");
        proxy.set_refusing(false);
        publish_retrying(&tr, &Address::queue(&q), &Envelope::new("back")).await;
        assert_eq!(
            fx.transport().inspect(&q).await.expect("inspect").messages,
            1
        );
        tr.close().await.expect("close");
        fx.cleanup().await;
    }

    /// The deadlock a service hit after a broker restart: its control-queue
    /// consumer began reconnecting (the broker still away, so it waited in a
    /// back-off), its task then stopped polling that consumer to publish a
    /// heartbeat, and the publish waited for the consumer's reconnect, which
    /// only that same task could drive on: the service was silent for good.
    /// A reconnect runs in a task of its own, so the publish goes through.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_publish_does_not_wait_for_a_reconnect_that_nobody_polls() {
        let fx = Fixture::amqp().await;
        let (proxy, tr, q, mut sub) = subscribed_through_proxy(&fx, "unpolled").await;

        proxy.set_refusing(true);
        proxy.cut();
        // Poll the subscription until it has begun reconnecting (the broker
        // refuses, so the reconnect waits between attempts), then leave it.
        let accepted = proxy.accepted();
        tokio::select! {
            _ = sub.next() => panic!("no delivery can arrive while the broker is away"),
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        assert_eq!(
            proxy.accepted(),
            accepted,
            "the proxy refused every attempt"
        );
        proxy.set_refusing(false);

        let published = tokio::time::timeout(
            Duration::from_secs(15),
            publish_retrying(&tr, &Address::queue(&q), &Envelope::new("heartbeat")),
        )
        .await;
        assert!(
            published.is_ok(),
            "the publish waited on a reconnect that nobody polled"
        );
        let d = recv(&mut sub, "the message, once the consumer is back").await;
        assert_eq!(&d.envelope.payload[..], b"heartbeat");
        d.ack().await.expect("ack");
        tr.close().await.expect("close");
        fx.cleanup().await;
    }
}
