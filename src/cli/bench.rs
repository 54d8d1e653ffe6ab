//! `tollgate bench`: throughput and latency figures as ratios against a
//! baseline measured in the same run.

use std::{num::NonZeroU16, time::Duration};

use clap::{Args, Subcommand};
use tollgate_bus::{
    QueueKind,
    config::{MAX_ROUTER_THREADS, RouterSection},
};

mod bench_bus;
mod child;
mod cpu;
mod drive;
mod gate;
mod hops;
mod keys;
mod payload;
mod raw_client;
mod relay;
mod relay_process;
mod report;
mod rounds;
mod router;
mod router_config;
mod rpc;
mod stands;
mod stats;
mod transport;

/// What to measure.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Publish→consume throughput of 1 KiB messages with confirms and manual acks:
    /// `AmqpTransport` and `MemoryTransport` against a plain loop on the bare AMQP client.
    Transport(TransportArgs),
    /// Requests through `tollgate serve` (gateway mode, service mode) into a
    /// service queue, against a plain relay (same AMQP client) on the same exchanges and queues.
    Router(RouterArgs),
    /// Request → reply through `tollgate serve` and an SDK service, called by the
    /// SDK caller (latency at 1 call in flight, calls/s at `--in-flight`),
    /// against a plain relay (same AMQP client) on the same exchanges and queues.
    Rpc(RpcArgs),
    /// The floor under a call: its four broker hops on the bare AMQP client (no gate, no
    /// SDK), one call in flight, for the delivery contract and other ways of
    /// storing and confirming the hops.
    Hops(CommonArgs),
    /// The baseline relay of `bench router` and `bench rpc`, run by them as a
    /// child process.
    #[command(hide = true)]
    RelayProcess(relay_process::RelayProcessArgs),
}

/// Options every bench takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct CommonArgs {
    /// RabbitMQ to measure against.
    #[arg(
        long,
        env = "TOLLGATE_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp: String,
    /// Measured time per scenario, round and measurement (e.g. `3s`, `500ms`).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    duration: Duration,
    /// Rounds; the scenario order rotates per round and the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Type of the bus's shared queues: `classic` (one node) or `quorum` (a cluster).
    #[arg(long, env = "TOLLGATE_QUEUE_TYPE", default_value = "classic")]
    queue_type: QueueKind,
    /// Consumer prefetch (of the router, the relay, the service and the sink).
    #[arg(long, default_value_t = 256)]
    prefetch: u16,
    /// Calls the router (and the relay) hold at once, their ingress unacked
    /// until the reply (README, "Delivery contract"); 0 delivers every
    /// request durably. Default: the router's, half the prefetch. Only
    /// `bench rpc` sends calls; the other benches' messages have no reply.
    #[arg(long)]
    hold_calls: Option<u16>,
    /// Threads the router (and the relay) run on, 1–64 (README, "Router
    /// threads"). Default: the router's, one.
    #[arg(
        long,
        default_value_t = RouterSection::default().threads,
        value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_ROUTER_THREADS)),
    )]
    router_threads: u16,
    /// Print one JSON object per scenario instead of a table.
    #[arg(long)]
    json: bool,
}

/// Options of `tollgate bench transport` and `tollgate bench router`.
#[derive(Debug, Args)]
pub(crate) struct TransportArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Messages outstanding at once: published but not yet consumed at the sink.
    #[arg(long, default_value_t = 256)]
    window: usize,
}

/// Options of `tollgate bench router` (the same as `bench transport`).
pub(crate) type RouterArgs = TransportArgs;

/// Options of `tollgate bench rpc`.
#[derive(Debug, Args)]
pub(crate) struct RpcArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Calls in flight for the loaded measurement.
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// Scenarios to run, comma-separated (`raw_relay` always runs); default all.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Unmeasured traffic per scenario before measuring.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    warm_up: Duration,
    /// A call without a reply after this long counts as a failure.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Also draw the figures as an SVG chart into this file.
    #[arg(long)]
    chart: Option<std::path::PathBuf>,
}

impl BenchCommand {
    /// The threads this command runs on when not tokio's default: the
    /// relay's are the router's it stands beside.
    pub(crate) fn threads(&self) -> Option<NonZeroU16> {
        match self {
            Self::RelayProcess(args) => NonZeroU16::new(args.threads),
            _ => None,
        }
    }

    pub(crate) async fn run(self) -> anyhow::Result<()> {
        match self {
            Self::Transport(args) => transport::run(&args).await,
            Self::Router(args) => router::run(&args).await,
            Self::Rpc(args) => rpc::run(&args).await,
            Self::Hops(args) => hops::run(&args).await,
            Self::RelayProcess(args) => relay_process::run(&args).await,
        }
    }
}

/// Parses `250ms`, `3s`, `2m` or a plain number of seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 500ms, 3s or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit `{unit}` in `{s}` (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{s}`: {e}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::parse_duration;

    #[test]
    fn parses_durations_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("3 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
