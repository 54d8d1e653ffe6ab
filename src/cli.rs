//! Command-line interface: one subcommand per file under `cli/`.

use clap::{Parser, Subcommand};

mod auth_service;
mod bench;
mod config;
mod connect;
mod demo;
pub(crate) mod exit;
mod http;
mod keys;
mod logging;
mod request;
mod runtime;
mod serve;
mod services;
mod token;
mod trust;
mod users;

/// Tollgate: a message bus whose router authenticates and authorizes every message.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// How log lines (on stderr) are written: `text`, or `json` (one object per line).
    #[arg(
        long,
        global = true,
        env = "TOLLGATE_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prints the version.
    Version,
    /// Runs the whole bus with example services and plays a scenario of accepted
    /// and refused messages (in process; `--amqp URL` for RabbitMQ).
    Demo(demo::DemoArgs),
    /// Runs a router: consumes the ingress queue and gates every message.
    Serve(serve::ServeArgs),
    /// Runs the central auth service (`[central_auth]`): login, introspect,
    /// logout and disable_user, with sessions in Redis.
    AuthService(auth_service::AuthServiceArgs),
    /// Users of the central auth service (argon2id password hashes).
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Configuration commands.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Key commands.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Token commands.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Sends a request through the bus and prints the reply.
    Request(request::RequestArgs),
    /// Publishes a message through the bus without waiting for a reply.
    Publish(request::MessageArgs),
    /// Lists the services that announce themselves on the bus.
    Services(services::ServicesArgs),
    /// Revokes a token, a subject, a consumer, or the tokens issued before a
    /// time, on every router (through `tollgate.trust.revoke`).
    Revoke(trust::RevokeArgs),
    /// Lists or lifts revocations (`tollgate.trust.list`, `.revoke`).
    #[command(subcommand)]
    Revocations(trust::RevocationsCommand),
    /// Disables, enables, adds or removes keys of consumers on every router
    /// (through `tollgate.trust.consumers`).
    #[command(subcommand)]
    Consumers(trust::ConsumersCommand),
    /// Measures throughput, reported as ratios against a baseline measured in the same run.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub(crate) fn run(self) -> anyhow::Result<()> {
        // Held until the command returns: dropping it flushes the log.
        let default_level = match self.command {
            Command::Serve(_) | Command::AuthService(_) => "info",
            // The demo's table is the output; refusals are its point, not warnings.
            Command::Demo(_) => "error",
            _ => "warn",
        };
        let _log = logging::init(default_level, self.log_format);
        match self.command {
            Command::Version => {
                println!("tollgate {}", env!("CARGO_PKG_VERSION"));
                Ok(())
            }
            Command::Bench(cmd) => match cmd.threads() {
                Some(threads) => runtime::run(threads, move || cmd.run()),
                None => runtime()?.block_on(cmd.run()),
            },
            Command::Serve(args) => {
                let config = args.load_config()?;
                runtime::run(serve::threads(&config), move || args.run(config))
            }
            Command::AuthService(args) => runtime()?.block_on(args.run()),
            Command::Users(cmd) => cmd.run(),
            Command::Config(cmd) => cmd.run(),
            Command::Keys(cmd) => cmd.run(),
            Command::Token(cmd) => cmd.run(),
            Command::Request(args) => runtime()?.block_on(args.run()),
            Command::Publish(args) => runtime()?.block_on(args.publish()),
            Command::Services(args) => runtime()?.block_on(args.run()),
            Command::Revoke(args) => runtime()?.block_on(args.run()),
            Command::Revocations(cmd) => runtime()?.block_on(cmd.run()),
            Command::Consumers(cmd) => runtime()?.block_on(cmd.run()),
            Command::Demo(args) => runtime()?.block_on(args.run()),
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    runtime::work_stealing(None)
}
