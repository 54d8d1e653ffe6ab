//! `tollgate demo`: the whole bus — router and example services — in one
//! process, on the in-memory transport (or RabbitMQ with `--amqp`), playing
//! a scenario of accepted and refused messages and printing why.

use std::time::Duration;

use clap::Args;

mod bus;
mod central;
mod scenario;
mod table;
mod tokens;

use super::exit::{Exit, FAILED};

/// Options of `tollgate demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Run on this RabbitMQ instead of the in-memory transport.
    #[arg(long)]
    amqp: Option<String>,
    /// How long each call waits for its reply.
    #[arg(long, default_value = "5s", value_parser = super::bench::parse_duration)]
    timeout: Duration,
}

impl DemoArgs {
    /// Starts the bus, plays the scenario, prints the table, stops everything.
    /// Exits non-zero if any step's outcome differs from what the bus promises.
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let bus = bus::DemoBus::start(self.amqp.as_deref()).await?;
        println!(
            "Tollgate demo on {} (namespace `{}`)\n",
            bus.transport_name(),
            bus.names().namespace()
        );
        let rows = scenario::play(&bus, self.timeout).await;
        bus.stop().await;
        let rows = rows?;
        table::print(&rows);
        let wrong = rows.iter().filter(|r| !r.as_expected).count();
        if wrong > 0 {
            return Err(Exit::new(
                FAILED,
                format!("{wrong} step(s) did not behave as expected"),
            )
            .into());
        }
        println!("\nEvery message passed the gate or was refused with a reason.");
        Ok(())
    }
}
