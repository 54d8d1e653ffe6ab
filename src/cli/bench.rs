//! `tollgate bench`: throughput figures as ratios against a baseline measured in the same run.

use clap::Subcommand;

/// What to measure.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {}

impl BenchCommand {
    pub(crate) fn run(self) -> anyhow::Result<()> {
        match self {}
    }
}
