//! `tollgate bench relay-process` (hidden): the baseline relay as a process
//! of its own, as the router is one. It declares the bus's core topology,
//! relays until SIGTERM, then prints its counts as one JSON line on stdout.

use anyhow::Context as _;
use clap::Args;
use tollgate_bus::{
    QueueKind, bus_topology,
    config::{MAX_ROUTER_THREADS, RouterSection},
};

use super::{bench_bus, drive, relay::Relay};

/// Options of `tollgate bench relay-process`.
#[derive(Debug, Args)]
pub(crate) struct RelayProcessArgs {
    /// RabbitMQ URL.
    #[arg(long)]
    amqp: String,
    /// The bus's namespace.
    #[arg(long)]
    namespace: String,
    /// Type of the bus's shared queues (the router's `queue_type`).
    #[arg(long, default_value = "classic")]
    queue_type: QueueKind,
    /// Unsettled deliveries per consumed queue (the router's prefetch).
    #[arg(long, default_value_t = 256)]
    prefetch: u16,
    /// Calls held at once (the router's `hold_calls`; default: its default).
    #[arg(long)]
    hold_calls: Option<u16>,
    /// Threads it runs on (the router's `threads`, 1–64).
    #[arg(
        long,
        default_value_t = RouterSection::default().threads,
        value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_ROUTER_THREADS)),
    )]
    pub(crate) threads: u16,
}

/// Relays the bus until SIGTERM or Ctrl-C; prints the counts when stopped.
pub(crate) async fn run(args: &RelayProcessArgs) -> anyhow::Result<()> {
    let names = bench_bus::names(&args.namespace, args.queue_type);
    let admin = drive::connect(&args.amqp, "tollgate-bench-relay-admin").await?;
    admin
        .declare(&bus_topology::core(&names))
        .await
        .context("declaring the bus topology")?;
    admin.close().await?;
    let relay = Relay::start(&args.amqp, &names, args.prefetch, args.hold_calls).await?;
    crate::cli::serve::terminated().await;
    let tally = relay.stop().await;
    println!("{}", serde_json::to_string(&tally)?);
    Ok(())
}
