//! `tollgate`: the one binary of the Tollgate message bus.

use clap::Parser;

mod cli;

fn main() -> anyhow::Result<()> {
    cli::Cli::parse().run()
}
