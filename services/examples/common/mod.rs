//! What the example binaries share: the flags, the credential and bus key they
//! load, and running one service on RabbitMQ until Ctrl-C or SIGTERM.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, anyhow, bail};
use clap::{CommandFactory as _, FromArgMatches as _, Parser};
use tollgate_auth::{AssertionVerifier, ServiceSecret};
use tollgate_services::{
    DEFAULT_PREFETCH, ServiceBuilder, TokenSource,
    bus::{AmqpConfig, AmqpTransport, BusNames, DEFAULT_NAMESPACE, QueueKind, Transport},
};

/// The broker a service connects to when neither `--amqp` nor `TOLLGATE_AMQP_URL` says.
const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// How long the runtime may take to stop its last tasks once `run` returned.
const RUNTIME_STOP_WAIT: Duration = Duration::from_secs(1);

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
    /// This service's assertion secret (`tollgate keys service-secret`):
    /// routers then sign its assertions with HS256, cheaper than Ed25519.
    #[arg(long, env = "TOLLGATE_SERVICE_SECRET_FILE")]
    bus_secret_file: Option<PathBuf>,
    /// Most requests handled at once.
    #[arg(long, env = "TOLLGATE_SERVICE_PREFETCH", default_value_t = DEFAULT_PREFETCH)]
    prefetch: u16,
    /// Longest graceful shutdown after SIGTERM or Ctrl-C, in seconds: past
    /// it (or on a second signal) the service exits at once, status 1; its
    /// unsettled deliveries go back to the queue when the connection ends.
    #[arg(long, env = "TOLLGATE_SHUTDOWN_TIMEOUT_SECS", default_value_t = 20)]
    shutdown_timeout_secs: u64,
    /// How far the routers' clocks and this service's may differ, in seconds
    /// (0 to 300): bus assertions issued further in the future, or expired
    /// longer ago, are refused as `not_from_bus`.
    #[arg(
        long,
        env = "TOLLGATE_ASSERTION_LEEWAY_SECS",
        default_value_t = tollgate_auth::DEFAULT_ASSERTION_LEEWAY.as_secs(),
        value_parser = clap::value_parser!(u64).range(0..=tollgate_auth::MAX_ASSERTION_LEEWAY.as_secs())
    )]
    assertion_leeway: u64,
    /// How log lines (on stderr) are written: `text` or `json` (one object per line).
    #[arg(long, env = "TOLLGATE_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// One human-readable line per event; colours only at a terminal.
    Text,
    /// One JSON object per line.
    Json,
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

    /// This service's assertion secret, if one was given.
    fn service_secret(&self) -> anyhow::Result<Option<ServiceSecret>> {
        let Some(path) = &self.bus_secret_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the service secret {}", path.display()))?;
        let secret = ServiceSecret::from_text(&text)
            .with_context(|| format!("{} holds no service secret", path.display()))?;
        Ok(Some(secret))
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
/// printed as one line on stderr: also when the service stopped consuming on
/// its own (its queue could not be consumed again), when the graceful
/// shutdown took longer than `--shutdown-timeout-secs`, or on a second signal.
/// Whatever state the broker connection is in, a signal ends the process
/// within that bound (plus [`RUNTIME_STOP_WAIT`]).
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
        Ok(runtime) => {
            let outcome = runtime.block_on(run(name, about, build));
            // A task stuck on a dead connection must not keep the process alive.
            runtime.shutdown_timeout(RUNTIME_STOP_WAIT);
            outcome
        }
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
    init_logging(args.log_format);
    let mut service = build(args.credential()?, args.bus_key()?);
    if let Some(secret) = args.service_secret()? {
        service = service.service_secret(secret);
    }
    let service = service
        .prefetch(args.prefetch)
        .assertion_leeway(std::time::Duration::from_secs(args.assertion_leeway))
        .build()
        .context("invalid service")?;
    let amqp = AmqpConfig::new(&args.amqp).with_connection_name(format!("tollgate-{name}"));
    let transport: Arc<dyn Transport> = Arc::new(
        AmqpTransport::connect(amqp)
            .await
            .with_context(|| format!("cannot reach RabbitMQ at {}", redact(&args.amqp)))?,
    );
    let mut running = service
        .run(
            Arc::clone(&transport),
            BusNames::new(args.namespace).with_queue_type(args.queue_type),
        )
        .await
        .with_context(|| format!("cannot start {}", service.name()))?;
    let mut signals = Signals::listen();
    tokio::select! {
        () = signals.next() => {}
        ended = running.wait() => {
            transport.close().await.ok();
            let why = match ended {
                Err(e) => anyhow!(e),
                Ok(()) => anyhow!("the transport was closed"),
            };
            return Err(why.context(format!("{} stopped consuming", service.name())));
        }
    }
    let bound = Duration::from_secs(args.shutdown_timeout_secs);
    tracing::info!(
        service = service.name(),
        bound.secs = bound.as_secs(),
        "Shutting down: finishing in-flight requests."
    );
    let graceful = async {
        running.shutdown().await?;
        transport.close().await?;
        anyhow::Ok(())
    };
    tokio::select! {
        stopped = tokio::time::timeout(bound, graceful) => match stopped {
            Ok(outcome) => outcome,
            Err(_) => bail!("the graceful shutdown took longer than {bound:?}; exiting"),
        },
        () = signals.next() => bail!("a second signal during the shutdown; exiting at once"),
    }
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

/// Logs to stderr in `format`, filtered by `RUST_LOG` (default `info`).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Ctrl-C and, on Unix, SIGTERM, listened to once for the whole run (so a
/// second signal is heard too).
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let term = signal(SignalKind::terminate())
                .inspect_err(|e| tracing::warn!(error = %e, "Cannot listen for SIGTERM; only Ctrl-C stops the service."))
                .ok();
            Self { term }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Resolves on the next Ctrl-C or SIGTERM.
    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(term) = self.term.as_mut() {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "Cannot listen for Ctrl-C; stopping.");
        }
    }
}

/// `url` (or comma-separated URLs) without passwords, for messages.
fn redact(url: &str) -> String {
    tollgate_services::bus::redact_amqp_urls(url)
}
