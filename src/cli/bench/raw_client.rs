//! The baseline: a plain publish→consume loop on the AMQP client itself
//! (`tollgate-wire`, which the transport uses), written directly, with the
//! same confirms, end-to-end window, prefetch and manual acks as the
//! transports' driver.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use anyhow::Context as _;
use futures_util::{StreamExt, stream::FuturesUnordered};
use tokio::sync::Semaphore;
use tollgate_wire::{BasicProperties, FieldTable, QueueOptions};

use super::{TransportArgs, drive::Meter, relay::connect};

/// How long the publisher waits for a permit before it checks whether to stop.
const WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(100);

/// Messages per second through the bare client on a fresh queue.
pub(crate) async fn measure(args: &TransportArgs) -> anyhow::Result<f64> {
    let conn = connect(&args.common.amqp, "bench-raw-client").await?;
    let queue = format!("tollgate-bench.raw.{}", uuid::Uuid::new_v4().simple());
    let publisher = conn.channel().await?;
    publisher.confirm_select().await?;
    let options = QueueOptions {
        durable: true,
        ..QueueOptions::default()
    };
    publisher
        .queue_declare(&queue, options, FieldTable::default())
        .await?;
    let consumer_channel = conn.channel().await?;
    consumer_channel.qos(args.common.prefetch).await?;
    let mut consumer = consumer_channel
        .consume(&queue, "raw", FieldTable::default())
        .await?;

    let stop = Arc::new(AtomicBool::new(false));
    let consumed = Arc::new(AtomicU64::new(0));
    // Published but not yet consumed: the consumer gives a permit back per message.
    let outstanding = Arc::new(Semaphore::new(args.window.max(1)));
    let consume = {
        let (consumed, outstanding) = (Arc::clone(&consumed), Arc::clone(&outstanding));
        tokio::spawn(async move {
            while let Some(delivery) = consumer.next().await {
                if delivery.acker.ack().is_err() {
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
                    let confirm = publisher.publish("", &queue, true, props, &payload)?;
                    in_flight.push(confirm.wait());
                } else if !in_flight.is_empty() {
                    in_flight.next().await.transpose()?;
                }
            }
            while in_flight.next().await.is_some() {}
            anyhow::Ok(())
        })
    };
    let rate = Meter::new(&consumed)
        .measure(args.common.duration)
        .await
        .msgs_per_s;
    stop.store(true, Ordering::Relaxed);
    publish.await?.context("raw client publisher")?;
    consume.abort();
    publisher.queue_delete(&queue).await?;
    conn.close().await?;
    Ok(rate)
}
