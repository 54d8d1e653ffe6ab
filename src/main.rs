//! `tollgate`: the one binary of the Tollgate message bus.

use std::process::ExitCode;

use clap::Parser;

mod cli;

/// jemalloc instead of the system's allocator: a router allocates a little
/// for every message, and glibc's malloc and free took a fifth of its CPU
/// (README, "Dependencies and why").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    tollgate_bus::stack::ensure_deep_stack();
    match cli::Cli::parse().run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => ExitCode::from(cli::exit::report(&error)),
    }
}
