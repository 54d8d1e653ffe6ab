//! Command-line interface: one subcommand per file under `cli/`.

use clap::{Parser, Subcommand};

mod bench;

/// Tollgate: a message bus whose router authenticates and authorizes every message.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prints the version.
    Version,
    /// Measures throughput against a raw lapin baseline in the same run.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub(crate) fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Version => {
                println!("tollgate {}", env!("CARGO_PKG_VERSION"));
                Ok(())
            }
            Command::Bench(cmd) => cmd.run(),
        }
    }
}
