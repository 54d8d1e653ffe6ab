//! Command-line interface: one subcommand per file under `cli/`.

use clap::{Parser, Subcommand};

mod bench;
mod config;
mod keys;
mod serve;

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
    /// Runs a router: consumes the ingress queue and gates every message.
    Serve(serve::ServeArgs),
    /// Configuration commands.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Key commands.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Measures throughput, reported as ratios against a baseline measured in the same run.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub(crate) fn run(self) -> anyhow::Result<()> {
        init_tracing();
        match self.command {
            Command::Version => {
                println!("tollgate {}", env!("CARGO_PKG_VERSION"));
                Ok(())
            }
            Command::Bench(cmd) => runtime()?.block_on(cmd.run()),
            Command::Serve(args) => runtime()?.block_on(args.run()),
            Command::Config(cmd) => cmd.run(),
            Command::Keys(cmd) => cmd.run(),
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Logs to stderr, filtered by `RUST_LOG` (default `warn`), so stdout stays machine-readable.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
