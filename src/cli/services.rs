//! `tollgate services`: the registry as the services announce themselves.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use tollgate_bus::{
    Address, SubscribeOptions, bus_topology,
    registry::{Announcement, RegistryTable},
};

use super::{bench::parse_duration, connect::BusArgs};

/// Options of `tollgate services`.
#[derive(Debug, Args)]
pub(crate) struct ServicesArgs {
    /// How long to listen for announcements after asking services to announce.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    wait: Duration,
    #[command(flatten)]
    bus: BusArgs,
}

impl ServicesArgs {
    /// Asks every service to announce itself (`discover`) and lists what answers.
    /// Announcements are shown as announced (the CLI holds no keys to verify them;
    /// the routers do).
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let transport = self.bus.connect("tollgate-cli").await?;
        let names = self.bus.names();
        let queue = names.router_control_queue(&format!("cli-{}", uuid::Uuid::new_v4().simple()));
        transport
            .declare(&bus_topology::control_listener(&names, &queue))
            .await
            .context("listening on the control exchange")?;
        let mut announcements = transport
            .subscribe(&queue, SubscribeOptions::prefetch(256))
            .await?;
        let discover = Announcement::Discover.to_envelope(None)?;
        transport
            .publish(&Address::new(names.control_exchange(), ""), &discover)
            .await?;
        let table = RegistryTable::new();
        let deadline = tokio::time::Instant::now() + self.wait;
        while let Ok(Some(d)) = tokio::time::timeout_at(deadline, announcements.next()).await {
            if let Ok(a) = Announcement::from_bytes(&d.envelope.payload) {
                table.apply(&a, Instant::now());
            }
            d.ack().await.ok();
        }
        let services = table.snapshot(Instant::now());
        println!(
            "{:<24} {:>9}  {:<22} {:>7}  {:<9}  last heartbeat",
            "service", "instances", "content type", "version", "assertion"
        );
        for s in &services {
            let ago = tollgate_bus::time::unix_now().saturating_sub(s.last_heartbeat);
            println!(
                "{:<24} {:>9}  {:<22} {:>7}  {:<9}  {ago}s ago",
                s.service,
                s.instances,
                s.content_type,
                s.schema_version,
                s.assertion.as_str()
            );
        }
        if services.is_empty() {
            println!("(no service answered within {:?})", self.wait);
        }
        transport.close().await?;
        Ok(())
    }
}
