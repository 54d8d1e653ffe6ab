//! What the example binaries share: the flags, the credential and bus key they
//! load, and running one service on RabbitMQ until Ctrl-C or SIGTERM.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use anyhow::{Context as _, bail};
use clap::{CommandFactory as _, FromArgMatches as _, Parser};
use tollgate_auth::AssertionVerifier;
use tollgate_services::{
    DEFAULT_PREFETCH, ServiceBuilder, TokenSource,
    bus::{AmqpConfig, AmqpTransport, BusNames, DEFAULT_NAMESPACE, QueueKind, Transport},
};

/// The broker a service connects to when neither `--amqp` nor `TOLLGATE_AMQP_URL` says.
const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The flags of every example service.
#[derive(Debug, Parser)]
pub(crate) struct Args {
    /// RabbitMQ URL, or one per cluster node separated by commas.
    #[arg(long, env = "TOLLGATE_AMQP_URL", default_value = DEFAULT_AMQP_URL)]
    amqp: String,
    /// Namespace of the bus's exchanges and queues (the router's `namespace`).
    #[arg(long, env = "TOLLGATE_NAMESPACE", default_value = DEFAULT_NAMESPACE)]
    namespace: String,
    /// Type of the bus's shared queues: `classic` (one node) or `quorum` (a
    /// cluster); the same as the routers' `queue_type`.
    #[arg(long, env = "TOLLGATE_QUEUE_TYPE", default_value = "classic")]
    queue_type: QueueKind,
    /// The service account's token (JWT), e.g. from
    /// `tollgate token sign --consumer orders-svc --purpose registration`.
    #[arg(
        long,
        env = "TOLLGATE_SERVICE_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file",
        required_unless_present = "token_file"
    )]
    token: Option<String>,
    /// A file holding the token, re-read on every heartbeat (for tokens that expire).
    #[arg(long, env = "TOLLGATE_SERVICE_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// The router's bus-assertion public key (`bus-assertion.pub.pem`).
    #[arg(long, env = "TOLLGATE_BUS_PUBLIC_KEY_FILE")]
    bus_key: PathBuf,
    /// Most requests handled at once.
    #[arg(long, env = "TOLLGATE_SERVICE_PREFETCH", default_value_t = DEFAULT_PREFETCH)]
    prefetch: u16,
}

// === Args ===

impl Args {
    /// The service's credential: the token, or a source re-reading the token file.
    ///
    /// Errors when the token file cannot be read now or is empty.
    fn credential(&self) -> anyhow::Result<TokenSource> {
        match (&self.token, &self.token_file) {
            (Some(token), _) => Ok(TokenSource::fixed(token.trim())),
            (None, Some(path)) => {
                read_token(path)?;
                let path = path.clone();
                Ok(TokenSource::from_fn(move || match read_token(&path) {
                    Ok(token) => Some(token),
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "Cannot read the service token; announcing without it.");
                        None
                    }
                }))
            }
            (None, None) => bail!("give the service token with --token or --token-file"),
        }
    }

    /// The verifier of the router's bus assertions.
    fn bus_key(&self) -> anyhow::Result<AssertionVerifier> {
        let path = &self.bus_key;
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read the bus key {}", path.display()))?;
        AssertionVerifier::from_public_pem(&pem)
            .with_context(|| format!("{} is not an Ed25519 public key (PEM)", path.display()))
    }
}

/// Parses the flags (help names the binary `name`), connects to RabbitMQ and
/// runs the service `build` returns until Ctrl-C or SIGTERM, then shuts it
/// down gracefully: deregisters, finishes in-flight requests, closes the connection.
///
/// Exits 0 after a graceful shutdown, 2 on bad flags, 1 on any other error,
/// printed as one line on stderr.
///
/// Re-executes itself with deep thread stacks first, so a hostile header
/// table cannot crash it (see `tollgate_bus::stack`).
pub(crate) fn main(
    name: &'static str,
    about: &'static str,
    build: impl FnOnce(TokenSource, AssertionVerifier) -> ServiceBuilder,
) -> ExitCode {
    tollgate_bus::stack::ensure_deep_stack();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(tollgate_bus::stack::WORKER_STACK_BYTES)
        .enable_all()
        .build();
    let outcome = match runtime {
        Ok(runtime) => runtime.block_on(run(name, about, build)),
        Err(e) => Err(e.into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    name: &'static str,
    about: &'static str,
    build: impl FnOnce(TokenSource, AssertionVerifier) -> ServiceBuilder,
) -> anyhow::Result<()> {
    let command = Args::command().name(name).about(about);
    let args = Args::from_arg_matches(&command.get_matches())?;
    init_logging();
    let service = build(args.credential()?, args.bus_key()?)
        .prefetch(args.prefetch)
        .build()
        .context("invalid service")?;
    let amqp = AmqpConfig::new(&args.amqp).with_connection_name(format!("tollgate-{name}"));
    let transport: Arc<dyn Transport> = Arc::new(
        AmqpTransport::connect(amqp)
            .await
            .with_context(|| format!("cannot reach RabbitMQ at {}", redact(&args.amqp)))?,
    );
    let running = service
        .run(
            Arc::clone(&transport),
            BusNames::new(args.namespace).with_queue_type(args.queue_type),
        )
        .await
        .with_context(|| format!("cannot start {}", service.name()))?;
    shutdown_signal().await;
    tracing::info!(
        service = service.name(),
        "Shutting down: finishing in-flight requests."
    );
    running.shutdown().await?;
    transport.close().await?;
    Ok(())
}

/// The trimmed token in `path`; errors when unreadable or empty. Never logs the token.
fn read_token(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!("the token file {} is empty", path.display());
    }
    Ok(token.to_owned())
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// Resolves on Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot listen for SIGTERM; only Ctrl-C stops the service.")
            }
        }
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::error!(error = %e, "Cannot listen for Ctrl-C; stopping.");
    }
}

/// `url` (or comma-separated URLs) without passwords, for messages.
fn redact(url: &str) -> String {
    tollgate_services::bus::redact_amqp_urls(url)
}
