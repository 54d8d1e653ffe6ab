//! `tollgate config check FILE`: lists every problem, exits non-zero if any.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use tollgate_bus::config::ConfigError;

/// Configuration commands.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Checks a configuration file (with `TOLLGATE_*` overrides) without connecting.
    Check(CheckArgs),
}

/// Options of `tollgate config check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The configuration file.
    file: PathBuf,
}

impl ConfigCommand {
    pub(crate) fn run(self) -> anyhow::Result<()> {
        match self {
            Self::Check(args) => {
                let config = super::serve::load(&args.file)?;
                match config.validate() {
                    Ok(()) => {
                        println!("{}: ok", args.file.display());
                        Ok(())
                    }
                    Err(problems) => anyhow::bail!(listing(&args.file, &problems)),
                }
            }
        }
    }
}

/// "N problems in FILE:" followed by one line per problem.
pub(crate) fn listing(file: &Path, problems: &[ConfigError]) -> String {
    let mut text = format!("{} problem(s) in {}:", problems.len(), file.display());
    for p in problems {
        text.push_str(&format!("\n  - {p}"));
    }
    text
}
