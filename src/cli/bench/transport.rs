//! `tollgate bench transport`: the transports against the raw lapin loop.

use std::sync::Arc;

use tollgate_bus::{Address, Envelope, MemoryTransport, QueueSpec, Topology, Transport};

use super::{TransportArgs, drive, raw_lapin, report};

pub(crate) async fn run(args: &TransportArgs) -> anyhow::Result<()> {
    let mut raw = report::Scenario::new("raw_lapin");
    let mut amqp = report::Scenario::new("amqp_transport");
    let mut memory = report::Scenario::new("memory_transport");
    for round in 0..args.rounds.max(1) {
        tracing::info!(round, "Bench round.");
        raw.rates.push(raw_lapin::measure(args).await?);
        let transport = drive::connect(&args.amqp, "tollgate-bench").await?;
        amqp.rates.push(measure(transport, args).await?);
        memory
            .rates
            .push(measure(Arc::new(MemoryTransport::new()), args).await?);
    }
    let extra = report::settings(args);
    report::print(&[raw, amqp, memory], "raw_lapin", &extra, args.json);
    Ok(())
}

/// Messages per second through `transport` on a fresh queue.
async fn measure(transport: Arc<dyn Transport>, args: &TransportArgs) -> anyhow::Result<f64> {
    let queue = format!("tollgate-bench.transport.{}", uuid::Uuid::new_v4().simple());
    let topology = Topology::new().queue(QueueSpec::classic(&queue));
    transport.declare(&topology).await?;
    let envelope = Envelope::new(vec![b'x'; args.size]);
    let rate = drive::drive(args, &transport, &Address::queue(&queue), &queue, envelope).await;
    transport.delete(&topology).await?;
    transport.close().await?;
    rate
}
