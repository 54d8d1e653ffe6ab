//! `tollgate`: the one binary of the Tollgate message bus.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    tollgate_bus::stack::ensure_deep_stack();
    match cli::Cli::parse().run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => ExitCode::from(cli::exit::report(&error)),
    }
}
