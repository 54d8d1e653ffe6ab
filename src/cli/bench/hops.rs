//! `tollgate bench hops`: what the four broker hops of a call cost on the
//! bare AMQP client (`tollgate-wire`, the transport's), with no gate, no SDK
//! and no exchange, for each way of storing them.
//!
//! A call crosses four queues: caller → ingress, router → service queue,
//! service → replies, router → caller. Three connections play the
//! caller, the relay (hops 2 and 4) and the service (hop 3); each hop consumes
//! with manual acks and republishes, acking once the broker confirmed (when
//! the profile confirms). One call is in flight at a time, so the figure is
//! the floor a call through Tollgate stands on with that profile.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::json;
use tollgate_wire::{
    AMQPValue, BasicProperties, Channel, Connection, Consumer, FieldTable, QueueOptions,
};

use super::{
    CommonArgs, payload,
    relay::{connect, consumer},
    rounds,
    router_config::queue_type_name,
    stats,
};

/// How the four hops of a call are stored and confirmed.
#[derive(Debug, Clone, Copy)]
struct Profile {
    name: &'static str,
    /// Per hop (caller → ingress, → service queue, → replies, → caller): a
    /// persistent message (else transient).
    persistent: [bool; 4],
    /// Every publisher waits for the broker's confirm before it acks.
    confirmed: bool,
}

/// The profiles, the bus's delivery contract first (the others' reference).
const PROFILES: [Profile; 4] = [
    Profile {
        name: "contract",
        persistent: [true, true, false, false],
        confirmed: true,
    },
    Profile {
        name: "durable_ingress_only",
        persistent: [true, false, false, false],
        confirmed: true,
    },
    Profile {
        name: "all_transient",
        persistent: [false; 4],
        confirmed: true,
    },
    Profile {
        name: "contract_unconfirmed",
        persistent: [true, true, false, false],
        confirmed: false,
    },
];

/// One profile's latencies in one round.
struct Measured {
    p50: Duration,
    p99: Duration,
    calls: usize,
}

/// Runs every profile for `--duration` per round and prints the medians.
pub(crate) async fn run(args: &CommonArgs) -> anyhow::Result<()> {
    let results = rounds::run_rotated(PROFILES.len(), args.rounds, async |i| {
        measure(args, PROFILES[i]).await
    })
    .await?;
    let p50s: Vec<f64> = results
        .iter()
        .map(|r| stats::median_of(r.iter().map(|m| Some(stats::ms(m.p50)))).unwrap_or(0.0))
        .collect();
    let reference = p50s[0];
    for ((profile, measured), p50) in PROFILES.iter().zip(&results).zip(&p50s) {
        let p99 = stats::median_of(measured.iter().map(|m| Some(stats::ms(m.p99)))).unwrap_or(0.0);
        let calls: usize = measured.iter().map(|m| m.calls).sum();
        let ratio = if reference > 0.0 {
            p50 / reference
        } else {
            0.0
        };
        if args.json {
            let line = json!({
                "profile": profile.name,
                "persistent_hops": profile.persistent,
                "confirmed": profile.confirmed,
                "queue_type": queue_type_name(args.queue_type),
                "p50_ms": stats::round_to(*p50, 3),
                "p99_ms": stats::round_to(p99, 3),
                "p50_vs_contract": stats::round_to(ratio, 3),
                "calls": calls,
                "rounds": args.rounds.max(1),
            });
            println!("{line}");
        } else {
            println!(
                "{:<22} p50 {:>6.3} ms  p99 {:>6.3} ms  {:>5.2}× the contract's p50",
                profile.name, p50, p99, ratio
            );
        }
    }
    Ok(())
}

/// One profile, one round: fresh queues and connections, calls one at a time.
async fn measure(args: &CommonArgs, profile: Profile) -> anyhow::Result<Measured> {
    let (caller, relay, service) = (
        connect(&args.amqp, "bench-hops-caller").await?,
        connect(&args.amqp, "bench-hops-relay").await?,
        connect(&args.amqp, "bench-hops-service").await?,
    );
    let prefix = format!("tollgate-bench.hops.{}", uuid::Uuid::new_v4().simple());
    let queues: Vec<String> = (0..4).map(|i| format!("{prefix}.q{i}")).collect();
    let called = calls(args, profile, &queues, [&caller, &relay, &service]).await;
    // The three durable queues go whether or not the round succeeded (the
    // caller's exclusive one goes with its connection).
    let deleted = delete_queues(&caller, &queues[..3]).await;
    for connection in [caller, relay, service] {
        if let Err(e) = connection.close().await {
            tracing::debug!(error = %e, "Closing a bench connection failed.");
        }
    }
    let mut latencies = called?;
    deleted?;
    latencies.sort_unstable();
    Ok(Measured {
        p50: stats::percentile(&latencies, 0.5).unwrap_or_default(),
        p99: stats::percentile(&latencies, 0.99).unwrap_or_default(),
        calls: latencies.len(),
    })
}

/// Declares `queues`, starts the three relaying hops and makes calls for
/// `--duration`; the latency of each.
async fn calls(
    args: &CommonArgs,
    profile: Profile,
    queues: &[String],
    [caller, relay, service]: [&Connection; 3],
) -> anyhow::Result<Vec<Duration>> {
    let setup = caller.channel().await?;
    for (i, queue) in queues.iter().enumerate() {
        // The caller's own queue is exclusive, as a caller's reply queue is.
        let exclusive = i == 3;
        let options = QueueOptions {
            durable: !exclusive,
            exclusive,
            ..QueueOptions::default()
        };
        let mut arguments = FieldTable::default();
        if !exclusive {
            let kind = queue_type_name(args.queue_type);
            arguments.insert("x-queue-type".into(), AMQPValue::LongString(kind.into()));
        }
        setup
            .queue_declare(queue, options, arguments)
            .await
            .with_context(|| format!("declaring {queue}"))?;
    }
    let relay_out = publisher(relay, profile.confirmed).await?;
    for (connection, from, publish) in [
        (relay, 0, relay_out.clone()),
        (service, 1, publisher(service, profile.confirmed).await?),
        (relay, 2, relay_out),
    ] {
        let consumer = consumer(connection, &queues[from], args.prefetch).await?;
        let hop = Hop {
            publish,
            to: queues[from + 1].clone(),
            persistent: profile.persistent[from + 1],
            confirmed: profile.confirmed,
        };
        tokio::spawn(hop.run(consumer));
    }
    let mut replies = consumer(caller, &queues[3], args.prefetch).await?;
    let requests = publisher(caller, profile.confirmed).await?;
    let body = payload::body(args.size);
    let mut latencies = Vec::new();
    let deadline = Instant::now() + args.duration;
    while Instant::now() < deadline {
        let start = Instant::now();
        let confirm = requests.publish(
            "",
            &queues[0],
            false,
            properties(profile.persistent[0]),
            &body,
        )?;
        // The caller's confirm runs beside the call, as the SDK caller's does.
        let confirmed = tokio::spawn(confirm.wait());
        let reply = tokio::time::timeout(CALL_TIMEOUT, replies.next())
            .await
            .context("no reply within 5 s")?
            .context("the reply consumer ended")?;
        latencies.push(start.elapsed());
        reply.acker.ack()?;
        confirmed.await??;
    }
    Ok(latencies)
}

/// Deletes `queues` on a channel of its own (a failed round may have closed
/// the others); a queue that was never declared is no error.
async fn delete_queues(connection: &Connection, queues: &[String]) -> anyhow::Result<()> {
    let channel = connection.channel().await?;
    for queue in queues {
        channel
            .queue_delete(queue)
            .await
            .with_context(|| format!("deleting {queue}"))?;
    }
    Ok(())
}

/// A call without its reply after this long fails the bench.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// One relaying hop: consume, republish to the next queue, ack.
struct Hop {
    publish: Channel,
    to: String,
    persistent: bool,
    confirmed: bool,
}

impl Hop {
    async fn run(self, mut from: Consumer) {
        while let Some(delivery) = from.next().await {
            let published = self.publish.publish(
                "",
                &self.to,
                true,
                properties(self.persistent),
                &delivery.body,
            );
            let Ok(confirm) = published else { return };
            let confirmed = self.confirmed;
            // The ack waits for the confirm, beside the next delivery.
            tokio::spawn(async move {
                if confirmed && confirm.wait().await.is_err() {
                    return;
                }
                let _ = delivery.acker.ack();
            });
        }
    }
}

async fn publisher(connection: &Connection, confirmed: bool) -> anyhow::Result<Channel> {
    let channel = connection.channel().await?;
    if confirmed {
        channel.confirm_select().await?;
    }
    Ok(channel)
}

fn properties(persistent: bool) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(if persistent { 2 } else { 1 })
        .with_content_type("application/json".into())
}
