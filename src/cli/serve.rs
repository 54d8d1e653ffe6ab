//! `tollgate serve`: runs one router instance until SIGTERM or Ctrl-C;
//! reloads its config on SIGHUP.

use std::{num::NonZeroU16, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use clap::Args;
use tokio_util::sync::CancellationToken;
use tollgate_bus::{
    AmqpConfig, AmqpTransport, Transport,
    config::{Config, MAX_ROUTER_THREADS, ProcessEnv},
    events,
    router::Router,
};

mod endpoints;
mod reload;

use super::http;

/// Options of `tollgate serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The configuration file.
    #[arg(long, short, default_value = "tollgate.toml")]
    config: PathBuf,
    /// Longest graceful stop after SIGTERM or Ctrl-C, in seconds (the
    /// router's drain takes at most 45 s); past it, or on a second signal,
    /// the process exits at once with status 1, and the broker requeues what
    /// it left unsettled.
    #[arg(long, env = "TOLLGATE_SHUTDOWN_TIMEOUT_SECS", default_value_t = 60)]
    shutdown_timeout_secs: u64,
}

impl ServeArgs {
    /// The configuration file, with the environment's overrides applied.
    pub(crate) fn load_config(&self) -> anyhow::Result<Config> {
        load(&self.config)
    }

    /// Runs the router of `config` (read from the file by
    /// [`load_config`](Self::load_config)) until stopped.
    pub(crate) async fn run(self, config: Config) -> anyhow::Result<()> {
        let hangups = reload::Hangups::listen();
        let router = Router::from_config(&config)
            .map_err(|problems| anyhow::anyhow!(super::config::listing(&self.config, &problems)))?;
        if let Some(addr) = config.metrics_socket() {
            endpoints::serve(addr, router.health()).await?;
        }
        let amqp = AmqpConfig::new(&config.amqp_url)
            .with_connection_name(format!("tollgate-router-{}", router.instance()));
        let transport = AmqpTransport::connect(amqp)
            .await
            .with_context(|| format!("cannot reach RabbitMQ at {}", redact(&config.amqp_url)))?;
        let transport: Arc<dyn Transport> = Arc::new(transport);
        // The HTTP entry stops first and finishes its requests while the
        // router still forwards their replies; the router stops after it.
        let (stopping, shutdown) = (CancellationToken::new(), CancellationToken::new());
        let bound = Duration::from_secs(self.shutdown_timeout_secs);
        tokio::spawn(stop_on_signal(stopping.clone(), bound));
        tokio::spawn(export_cache_stats(router.verifier(), shutdown.clone()));
        let running = router
            .start(Arc::clone(&transport), shutdown.clone())
            .await?;
        tokio::spawn(hangups.reload_until(
            self.config.clone(),
            config.clone(),
            running.handle(),
            shutdown.clone(),
        ));
        let http = match config.http.socket() {
            Some(addr) => {
                let entry = Arc::new(running.open_entry(events::Entry::Http).await?);
                let limits = config.limits;
                let started = http::start(
                    addr,
                    entry,
                    &config.http,
                    config.router.reply_timeout_secs,
                    limits,
                    stopping.clone(),
                );
                Some(started.await?.1)
            }
            None => None,
        };
        tokio::spawn(stop_after_http(stopping, http, shutdown));
        let stopped = running.wait().await;
        transport.close().await?;
        stopped.context("a queue the router consumes vanished and could not be consumed again")?;
        tracing::info!("Router stopped.");
        Ok(())
    }
}

/// Reads the file and applies `TOLLGATE_*` overrides.
pub(crate) fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    let mut config = Config::load(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if let Err(problems) = config.apply_env(&ProcessEnv) {
        bail!(super::config::listing(path, &problems));
    }
    Ok(config)
}

/// The threads `config`'s router runs on (`[router] threads`). A value out
/// of range is brought into it, and the config's check then refuses it.
pub(crate) fn threads(config: &Config) -> NonZeroU16 {
    NonZeroU16::new(config.router.threads.clamp(1, MAX_ROUTER_THREADS)).unwrap_or(NonZeroU16::MIN)
}

/// The URL (or comma-separated URLs) without passwords, for messages.
pub(crate) fn redact(url: &str) -> String {
    tollgate_bus::redact_amqp_urls(url)
}

/// Cancels `shutdown` (the router's) once `stopping` was cancelled and the
/// HTTP entry, if any, answered its requests in flight.
async fn stop_after_http(
    stopping: CancellationToken,
    http: Option<tokio::task::JoinHandle<()>>,
    shutdown: CancellationToken,
) {
    stopping.cancelled().await;
    if let Some(http) = http
        && let Err(e) = http.await
    {
        tracing::error!(error = %e, "The HTTP entry failed.");
    }
    shutdown.cancel();
}

/// Stops the router on the first signal; exits the process once `bound`
/// passed or on a second signal, whatever the stop is waiting for (a broker
/// that hangs on reconnect must not keep the process alive).
async fn stop_on_signal(shutdown: CancellationToken, bound: Duration) {
    terminated().await;
    tracing::info!(
        bound.secs = bound.as_secs(),
        "Shutting down: finishing in-flight messages."
    );
    shutdown.cancel();
    tokio::select! {
        () = tokio::time::sleep(bound) => {
            tracing::error!(bound.secs = bound.as_secs(), "The router did not stop in time; exiting.");
        }
        () = terminated() => tracing::warn!("A second signal; exiting at once."),
    }
    std::process::exit(1);
}

/// Resolves on SIGTERM or Ctrl-C (on Ctrl-C alone where SIGTERM cannot be heard).
pub(crate) async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            tracing::error!("Cannot listen for SIGTERM.");
            tokio::signal::ctrl_c().await.ok();
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await.ok();
}

/// Publishes the verified-token cache counters as Prometheus counters.
async fn export_cache_stats(verifier: Arc<tollgate_auth::Verifier>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let stats = verifier.cache_stats();
                metrics::counter!(events::VERIFY_CACHE_TOTAL, "result" => "hit").absolute(stats.hits);
                metrics::counter!(events::VERIFY_CACHE_TOTAL, "result" => "miss").absolute(stats.misses);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("amqp://guest:secret@host:5672/%2f"),
            "amqp://guest:***@host:5672/%2f"
        );
        assert_eq!(redact("amqp://host:5672"), "amqp://host:5672");
    }
}
