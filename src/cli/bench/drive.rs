//! What every transport-level bench scenario does: publish to an entry point
//! while consuming (and acking) the queue where the messages end up, with at
//! most `window` messages outstanding end to end (published but not yet
//! consumed), and count what arrives.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, bail};
use futures_util::{StreamExt, stream::FuturesUnordered};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tollgate_bus::{Address, AmqpConfig, AmqpTransport, Envelope, SubscribeOptions, Transport};

use super::{
    TransportArgs,
    cpu::{Parties, PerMessage},
};

/// Traffic runs this long before counting starts.
const WARM_UP: Duration = Duration::from_millis(300);

/// How long the path may take to carry its first message (a router learns
/// the sink's registration asynchronously).
const PATH_TIMEOUT: Duration = Duration::from_secs(15);

/// Counts consumed messages over a window after a warm-up, and the CPU
/// the watched processes spent on them.
pub(crate) struct Meter<'a> {
    consumed: &'a AtomicU64,
    parties: Parties,
}

/// What one window measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    /// Messages per second consumed.
    pub(crate) msgs_per_s: f64,
    /// CPU per consumed message of each watched process.
    pub(crate) cpu: PerMessage,
}

impl<'a> Meter<'a> {
    /// A meter of `consumed` that watches this process's CPU alone.
    pub(crate) fn new(consumed: &'a AtomicU64) -> Self {
        Self {
            consumed,
            parties: Parties::default(),
        }
    }

    /// Also watches the gate of `parties`.
    pub(crate) fn watching(mut self, parties: Parties) -> Self {
        self.parties = parties;
        self
    }

    /// Messages per second consumed during `duration`, after [`WARM_UP`],
    /// and the CPU the watched processes spent per message meanwhile.
    pub(crate) async fn measure(&self, duration: Duration) -> Measured {
        tokio::time::sleep(WARM_UP).await;
        let start = (
            tokio::time::Instant::now(),
            self.consumed.load(Ordering::Relaxed),
            self.parties.read(),
        );
        tokio::time::sleep(duration).await;
        let end = (
            tokio::time::Instant::now(),
            self.consumed.load(Ordering::Relaxed),
            self.parties.read(),
        );
        let messages = end.1 - start.1;
        Measured {
            msgs_per_s: messages as f64 / end.0.duration_since(start.0).as_secs_f64(),
            cpu: start.2.per_message(&end.2, messages),
        }
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

/// Publishes `envelope` to `entry` while consuming and acking `sink`
/// (prefetch `args.prefetch`), with at most `args.window` messages published
/// but not yet consumed; measures what arrives at `sink` over `args.duration`
/// and what it cost the processes of `parties`.
///
/// First waits (up to 15 s) until one message makes it through. Errors when
/// none does, or when the broker refuses a publish.
pub(crate) async fn drive(
    args: &TransportArgs,
    transport: &Arc<dyn Transport>,
    entry: &Address,
    sink: &str,
    envelope: Envelope,
    parties: Parties,
) -> anyhow::Result<Measured> {
    let mut path = Path::open(args, transport, entry.clone(), sink, envelope).await?;
    let measured = path.run(args.common.duration, parties).await;
    path.close().await;
    measured
}

/// A path from an entry point to a sink queue that carried its first
/// message, driven in slices ([`Path::run`]) that may alternate with other
/// paths' while it waits idle in between.
pub(crate) struct Path {
    transport: Arc<dyn Transport>,
    entry: Address,
    envelope: Envelope,
    consumed: Arc<AtomicU64>,
    /// Permits for messages published but not yet consumed (the window).
    outstanding: Arc<Semaphore>,
    /// Messages published and confirmed so far (and the probes that arrived).
    published: u64,
    consume: tokio::task::JoinHandle<()>,
}

impl Path {
    /// Consumes `sink` (prefetch `args.prefetch`) and waits (up to 15 s)
    /// until a message published to `entry` arrives there. Errors when none
    /// does, or when the broker refuses a publish.
    pub(crate) async fn open(
        args: &TransportArgs,
        transport: &Arc<dyn Transport>,
        entry: Address,
        sink: &str,
        envelope: Envelope,
    ) -> anyhow::Result<Self> {
        let mut subscription = transport
            .subscribe(sink, SubscribeOptions::prefetch(args.common.prefetch))
            .await?;
        let consumed = Arc::new(AtomicU64::new(0));
        let outstanding = Arc::new(Semaphore::new(args.window.max(1)));
        let consume = {
            let (consumed, outstanding) = (Arc::clone(&consumed), Arc::clone(&outstanding));
            tokio::spawn(async move {
                while let Some(delivery) = subscription.next().await {
                    if delivery.ack().await.is_err() {
                        break;
                    }
                    consumed.fetch_add(1, Ordering::Relaxed);
                    outstanding.add_permits(1);
                }
            })
        };
        let mut path = Self {
            transport: Arc::clone(transport),
            entry,
            envelope,
            consumed,
            outstanding,
            published: 0,
            consume,
        };
        path.published = await_path(
            &path.transport,
            &path.entry,
            &path.envelope,
            &path.consumed,
            &path.outstanding,
        )
        .await?;
        Ok(path)
    }

    /// Publishes with the window full for `duration` (after a warm-up) and
    /// measures what arrives and what it cost `parties`; then stops
    /// publishing and waits (up to 5 s) until what was published arrived, so
    /// the next slice, of this path or another, starts on an idle broker.
    pub(crate) async fn run(
        &mut self,
        duration: Duration,
        parties: Parties,
    ) -> anyhow::Result<Measured> {
        let stop = CancellationToken::new();
        let publish = tokio::spawn(publish_until(
            stop.clone(),
            Arc::clone(&self.transport),
            self.entry.clone(),
            self.envelope.clone(),
            Arc::clone(&self.outstanding),
        ));
        let measured = Meter::new(&self.consumed)
            .watching(parties)
            .measure(duration)
            .await;
        stop.cancel();
        self.published += publish.await?.context("bench publisher")?;
        await_drained(&self.consumed, self.published).await;
        Ok(measured)
    }

    /// Stops consuming (once dropped); returns how many published messages
    /// never arrived.
    pub(crate) async fn close(self) -> u64 {
        await_drained(&self.consumed, self.published).await
    }
}

impl Drop for Path {
    fn drop(&mut self) {
        self.consume.abort();
    }
}

/// Publishes one message at a time until one reaches the sink; returns how
/// many of them had reached it then. A probe sent before the path existed
/// (refused `no_route` while the sink's registration reaches the router) is
/// a dead letter, not a loss, so it is not counted as published; one that
/// arrives later only adds to the sink's count. Permits of the probes that
/// did not arrive are given back.
async fn await_path(
    transport: &Arc<dyn Transport>,
    entry: &Address,
    envelope: &Envelope,
    consumed: &AtomicU64,
    outstanding: &Semaphore,
) -> anyhow::Result<u64> {
    let started = tokio::time::Instant::now();
    let mut sent = 0;
    while started.elapsed() < PATH_TIMEOUT {
        outstanding.acquire().await?.forget();
        transport.publish(entry, envelope).await?;
        sent += 1;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let arrived = consumed.load(Ordering::Relaxed);
            if arrived > 0 {
                outstanding.add_permits(usize::try_from(sent - arrived).unwrap_or(0));
                return Ok(arrived);
            }
        }
    }
    bail!("no message reached the sink within {PATH_TIMEOUT:?} ({sent} sent)")
}

/// Publishes (pipelined, each awaiting its confirm) while `outstanding` has
/// permits, until `stop`; returns how many were confirmed.
async fn publish_until(
    stop: CancellationToken,
    transport: Arc<dyn Transport>,
    to: Address,
    envelope: Envelope,
    outstanding: Arc<Semaphore>,
) -> anyhow::Result<u64> {
    let mut in_flight = FuturesUnordered::new();
    let mut confirmed = 0;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            permit = outstanding.acquire() => {
                permit?.forget();
                in_flight.push(transport.publish(&to, &envelope));
            }
            Some(result) = in_flight.next(), if !in_flight.is_empty() => {
                result?;
                confirmed += 1;
            }
        }
    }
    while let Some(result) = in_flight.next().await {
        result?;
        confirmed += 1;
    }
    Ok(confirmed)
}

/// Waits (up to 5 s) until the sink has consumed `published` messages;
/// returns how many it is still missing.
async fn await_drained(consumed: &AtomicU64, published: u64) -> u64 {
    let started = tokio::time::Instant::now();
    loop {
        let missing = published.saturating_sub(consumed.load(Ordering::Relaxed));
        if missing == 0 || started.elapsed() > Duration::from_secs(5) {
            return missing;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
