//! A caller and a service whose connections are cut keep working: the AMQP
//! transport re-declares their exclusive queues and re-registers consumers.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_bus::{AmqpConfig, AmqpTransport, Transport};
use tollgate_services::{CallError, Caller, RequestOptions};
use tollgate_tests::support::{ChaosProxy, Fixture, TestBus};

async fn through(proxy: &ChaosProxy, name: &str) -> std::sync::Arc<dyn Transport> {
    let config = AmqpConfig::new(proxy.amqp_url())
        .with_connection_name(name)
        .with_reconnect_timeout(Duration::from_secs(20));
    std::sync::Arc::new(
        AmqpTransport::connect(config)
            .await
            .expect("connect through proxy"),
    )
}

/// Calls until a reply comes: a call racing the cut fails as a transport
/// error or a timeout, and callers retry.
async fn call_until_answered(caller: &Caller, options: &RequestOptions) -> Value {
    let body = json!({"customer": {"id": "c-9"}, "items": [{"sku": "widget", "qty": 1}]});
    for _ in 0..40 {
        match caller
            .request::<_, Value>("orders.create", &body, options)
            .await
        {
            Ok(reply) => return reply,
            Err(CallError::Transport(_) | CallError::Timeout { .. }) => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("the call failed for good: {e}"),
        }
    }
    panic!("no reply after 40 attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_and_service_survive_a_cut_connection() {
    let fx = Fixture::amqp().await;
    let bus = TestBus::start(&fx).await;
    let proxy = ChaosProxy::start("127.0.0.1:5672".into())
        .await
        .expect("proxy");
    let orders = bus
        // The default heartbeat (a 15 s lease): the cut must not cost the
        // service its registration. A 500 ms heartbeat's 1.5 s lease expired
        // under load before the reconnected service announced itself again,
        // and the call after the cut got `no_route`.
        .run_orders(through(&proxy, "svc").await, |b| b)
        .await;
    let caller = Caller::connect(through(&proxy, "caller").await, bus.names.clone())
        .await
        .unwrap();
    let options = RequestOptions::with_token(bus.token("web")).timeout(Duration::from_secs(3));

    let before = call_until_answered(&caller, &options).await;
    assert_eq!(before["placed_by"], "web");
    proxy.cut();
    let after = call_until_answered(&caller, &options).await;
    assert_eq!(
        after["placed_by"], "web",
        "the same caller and service work after the cut"
    );
    assert_ne!(before["order_id"], after["order_id"]);

    orders.shutdown().await.ok();
    bus.stop().await;
    fx.cleanup().await;
}
