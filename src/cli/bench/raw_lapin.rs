//! The baseline: a plain lapin publish→consume loop, written directly, with
//! the same confirms, end-to-end window, prefetch and manual acks as the
//! transports' driver.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use anyhow::Context as _;
use futures_util::{StreamExt, stream::FuturesUnordered};
use lapin::{
    BasicProperties, Connection, ConnectionProperties,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
    },
    types::FieldTable,
};
use tokio::sync::Semaphore;

use super::{TransportArgs, drive::Meter};

/// How long the publisher waits for a permit before it checks whether to stop.
const WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(100);

/// Messages per second through raw lapin on a fresh queue.
pub(crate) async fn measure(args: &TransportArgs) -> anyhow::Result<f64> {
    let conn = Connection::connect(&args.common.amqp, ConnectionProperties::default())
        .await
        .context("connecting the raw lapin baseline")?;
    let queue = format!("tollgate-bench.raw.{}", uuid::Uuid::new_v4().simple());
    let publisher = conn.create_channel().await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    publisher
        .queue_declare(queue.as_str().into(), options, FieldTable::default())
        .await?;
    let consumer_channel = conn.create_channel().await?;
    consumer_channel
        .basic_qos(args.common.prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = consumer_channel
        .basic_consume(
            queue.as_str().into(),
            "raw".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let stop = Arc::new(AtomicBool::new(false));
    let consumed = Arc::new(AtomicU64::new(0));
    // Published but not yet consumed: the consumer gives a permit back per message.
    let outstanding = Arc::new(Semaphore::new(args.window.max(1)));
    let consume = {
        let (consumed, outstanding) = (Arc::clone(&consumed), Arc::clone(&outstanding));
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                if delivery.ack(BasicAckOptions::default()).await.is_err() {
                    break;
                }
                consumed.fetch_add(1, Ordering::Relaxed);
                outstanding.add_permits(1);
            }
        })
    };
    let publish = {
        let (stop, publisher, queue) = (Arc::clone(&stop), publisher.clone(), queue.clone());
        let payload = vec![b'x'; args.common.size];
        tokio::spawn(async move {
            let options = BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            };
            let mut in_flight = FuturesUnordered::new();
            while !stop.load(Ordering::Relaxed) {
                let permit = if in_flight.is_empty() {
                    // Everything published is confirmed: wait for the consumer to take some.
                    let wait = tokio::time::timeout(WAIT_STEP, outstanding.acquire()).await;
                    wait.ok().transpose()?
                } else {
                    outstanding.try_acquire().ok()
                };
                if let Some(permit) = permit {
                    permit.forget();
                    let props = BasicProperties::default().with_delivery_mode(2);
                    let confirm = publisher
                        .basic_publish("".into(), queue.as_str().into(), options, &payload, props)
                        .await?;
                    in_flight.push(confirm);
                } else if !in_flight.is_empty() {
                    in_flight.next().await.transpose()?;
                }
            }
            while in_flight.next().await.is_some() {}
            anyhow::Ok(())
        })
    };
    let rate = Meter::new(&consumed).measure(args.common.duration).await;
    stop.store(true, Ordering::Relaxed);
    publish.await?.context("raw lapin publisher")?;
    consume.abort();
    publisher
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await?;
    conn.close(200, "bench done".into()).await?;
    Ok(rate)
}
