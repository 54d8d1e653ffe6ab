//! `tollgate bench transport`: the transports against the bare client loop.

use std::sync::Arc;

use tollgate_bus::{Address, Envelope, MemoryTransport, QueueSpec, Topology, Transport};

use super::{TransportArgs, cpu::Parties, drive, raw_client, report, rounds};

/// Scenario names, baseline first.
const SCENARIOS: [&str; 3] = ["raw_client", "amqp_transport", "memory_transport"];

pub(crate) async fn run(args: &TransportArgs) -> anyhow::Result<()> {
    let results = rounds::run_rotated(SCENARIOS.len(), args.common.rounds, async |i| {
        Ok(match i {
            0 => raw_client::measure(args).await?,
            1 => {
                measure(
                    drive::connect(&args.common.amqp, "tollgate-bench").await?,
                    args,
                )
                .await?
            }
            _ => measure(Arc::new(MemoryTransport::new()), args).await?,
        })
    })
    .await?;
    let scenarios: Vec<report::Scenario> = SCENARIOS
        .iter()
        .zip(results)
        .map(|(name, rates)| report::Scenario {
            rates,
            ..report::Scenario::new(name)
        })
        .collect();
    let extra = report::settings(args);
    report::print(&scenarios, SCENARIOS[0], &extra, args.common.json);
    Ok(())
}

/// Messages per second through `transport` on a fresh queue.
async fn measure(transport: Arc<dyn Transport>, args: &TransportArgs) -> anyhow::Result<f64> {
    let queue = format!("tollgate-bench.transport.{}", uuid::Uuid::new_v4().simple());
    let topology = Topology::new().queue(QueueSpec::classic(&queue));
    transport.declare(&topology).await?;
    let envelope = Envelope::new(vec![b'x'; args.common.size]);
    let to = Address::queue(&queue);
    let driven = drive::drive(args, &transport, &to, &queue, envelope, Parties::default()).await;
    transport.delete(&topology).await?;
    transport.close().await?;
    Ok(driven?.msgs_per_s)
}
