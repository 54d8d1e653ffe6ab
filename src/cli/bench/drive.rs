//! What every transport-level bench scenario does: publish with a pipelined
//! window to an entry point while consuming (and acking) the queue where the
//! messages end up, and count what arrives.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use futures_util::{StreamExt, stream::FuturesUnordered};
use tollgate_bus::{Address, AmqpConfig, AmqpTransport, Envelope, SubscribeOptions, Transport};

use super::TransportArgs;

/// Traffic runs this long before counting starts.
const WARM_UP: Duration = Duration::from_millis(300);

/// Counts consumed messages over a window after a warm-up.
pub(crate) struct Meter<'a> {
    consumed: &'a AtomicU64,
}

impl<'a> Meter<'a> {
    pub(crate) fn new(consumed: &'a AtomicU64) -> Self {
        Self { consumed }
    }

    /// Messages per second consumed during `duration`, after [`WARM_UP`].
    pub(crate) async fn measure(&self, duration: Duration) -> f64 {
        tokio::time::sleep(WARM_UP).await;
        let start = (
            tokio::time::Instant::now(),
            self.consumed.load(Ordering::Relaxed),
        );
        tokio::time::sleep(duration).await;
        let end = (
            tokio::time::Instant::now(),
            self.consumed.load(Ordering::Relaxed),
        );
        (end.1 - start.1) as f64 / end.0.duration_since(start.0).as_secs_f64()
    }
}

/// A named AMQP connection for a bench.
pub(crate) async fn connect(url: &str, name: &str) -> anyhow::Result<Arc<dyn Transport>> {
    let config = AmqpConfig::new(url).with_connection_name(name);
    Ok(Arc::new(
        AmqpTransport::connect(config)
            .await
            .context("connecting to RabbitMQ")?,
    ))
}

/// Publishes `envelope` to `entry` (`args.window` confirms in flight) while
/// consuming and acking `sink` (prefetch `args.prefetch`); messages per second
/// arriving at `sink` over `args.duration`.
pub(crate) async fn drive(
    args: &TransportArgs,
    transport: &Arc<dyn Transport>,
    entry: &Address,
    sink: &str,
    envelope: Envelope,
) -> anyhow::Result<f64> {
    let mut subscription = transport
        .subscribe(sink, SubscribeOptions::prefetch(args.prefetch))
        .await?;
    let consumed = Arc::new(AtomicU64::new(0));
    let consume = {
        let consumed = Arc::clone(&consumed);
        tokio::spawn(async move {
            while let Some(delivery) = subscription.next().await {
                if delivery.ack().await.is_err() {
                    break;
                }
                consumed.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let stop = Arc::new(AtomicBool::new(false));
    let publish = {
        let (stop, transport, to, window) = (
            Arc::clone(&stop),
            Arc::clone(transport),
            entry.clone(),
            args.window,
        );
        tokio::spawn(async move {
            let mut in_flight = FuturesUnordered::new();
            while !stop.load(Ordering::Relaxed) {
                while in_flight.len() < window {
                    in_flight.push(transport.publish(&to, &envelope));
                }
                if let Some(result) = in_flight.next().await {
                    result?;
                }
            }
            while let Some(result) = in_flight.next().await {
                result?;
            }
            anyhow::Ok(())
        })
    };
    let rate = Meter::new(&consumed).measure(args.duration).await;
    stop.store(true, Ordering::Relaxed);
    publish.await?.context("bench publisher")?;
    consume.abort();
    Ok(rate)
}
