//! `tollgate bench transport`: the transports against the raw lapin loop.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use futures_util::{StreamExt, stream::FuturesUnordered};
use serde_json::json;
use tollgate_bus::{
    Address, AmqpConfig, AmqpTransport, Envelope, MemoryTransport, QueueSpec, SubscribeOptions,
    Topology, Transport,
};

use super::{TransportArgs, raw_lapin, report};

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

pub(crate) async fn run(args: &TransportArgs) -> anyhow::Result<()> {
    let mut raw = report::Scenario {
        name: "raw_lapin",
        rates: Vec::new(),
    };
    let mut amqp = report::Scenario {
        name: "amqp_transport",
        rates: Vec::new(),
    };
    let mut memory = report::Scenario {
        name: "memory_transport",
        rates: Vec::new(),
    };
    for round in 0..args.rounds.max(1) {
        tracing::info!(round, "Bench round.");
        raw.rates.push(raw_lapin::measure(args).await?);
        let config = AmqpConfig::new(&args.amqp).with_connection_name("tollgate-bench");
        let transport = AmqpTransport::connect(config)
            .await
            .context("connecting AmqpTransport")?;
        amqp.rates.push(measure(Arc::new(transport), args).await?);
        memory
            .rates
            .push(measure(Arc::new(MemoryTransport::new()), args).await?);
    }
    let extra = json!({
        "payload_bytes": args.size,
        "window": args.window,
        "prefetch": args.prefetch,
        "duration_s": args.duration.as_secs_f64(),
        "rounds": args.rounds.max(1),
    });
    report::print(&[raw, amqp, memory], "raw_lapin", &extra, args.json);
    Ok(())
}

/// Messages per second through `transport` on a fresh queue.
async fn measure(transport: Arc<dyn Transport>, args: &TransportArgs) -> anyhow::Result<f64> {
    let queue = format!("tollgate-bench.transport.{}", uuid::Uuid::new_v4().simple());
    let topology = Topology::new().queue(QueueSpec::classic(&queue));
    transport.declare(&topology).await?;
    let mut subscription = transport
        .subscribe(&queue, SubscribeOptions::prefetch(args.prefetch))
        .await?;
    let stop = Arc::new(AtomicBool::new(false));
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
    let publish = {
        let (stop, transport) = (Arc::clone(&stop), Arc::clone(&transport));
        let (to, envelope, window) = (
            Address::queue(&queue),
            Envelope::new(vec![b'x'; args.size]),
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
    publish.await?.context("transport publisher")?;
    consume.abort();
    transport.delete(&topology).await?;
    transport.close().await?;
    Ok(rate)
}
