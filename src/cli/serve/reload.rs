//! SIGHUP: reload the config file into the running router. A file that does
//! not load or validate is refused (every problem logged) and the running
//! config stays; a changed setting only a restart applies is logged and kept.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;
use tollgate_bus::{
    config::{Config, ConfigError},
    events,
    router::RouterHandle,
};

/// Heard SIGHUPs, registered before the router starts so that an early one
/// is not the default action (ending the process).
pub(crate) struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    /// Starts listening for SIGHUP (logged if it cannot be heard).
    pub(crate) fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signal = signal(SignalKind::hangup())
                .map_err(
                    |e| tracing::error!(error = %e, "Cannot listen for SIGHUP: no config reload."),
                )
                .ok();
            Self { signal }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Reloads `path` into `handle` on every SIGHUP until `shutdown`;
    /// `running` is the config the router started with.
    pub(crate) async fn reload_until(
        self,
        path: PathBuf,
        running: Config,
        handle: RouterHandle,
        shutdown: CancellationToken,
    ) {
        #[cfg(unix)]
        {
            let Some(mut signal) = self.signal else {
                return;
            };
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    heard = signal.recv() => {
                        if heard.is_none() {
                            return;
                        }
                        reload(&path, &running, &handle).await;
                    }
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = (path, running, handle);
            shutdown.cancelled().await;
        }
    }
}

/// One reload of `path`; logs what happened.
async fn reload(path: &Path, running: &Config, handle: &RouterHandle) {
    tracing::info!(config = %path.display(), "SIGHUP: reloading the config.");
    let config = match super::load(path) {
        Ok(config) => config,
        Err(e) => return refused(&[ConfigError::new("file", format!("{e:#}"))]),
    };
    let settings = match config.router_settings() {
        Ok(settings) => settings,
        Err(problems) => return refused(&problems),
    };
    for setting in running.restart_only_changes(&config) {
        tracing::warn!(
            setting,
            "A changed setting needs a restart; the running value stays."
        );
    }
    if let Err(problems) = handle.reload(settings).await {
        refused(&problems);
    }
}

fn refused(problems: &[ConfigError]) {
    events::reload("refused");
    for problem in problems {
        tracing::error!(field = %problem.field, problem = %problem.message, "Config reload refused.");
    }
    tracing::error!(
        problems = problems.len(),
        "Config reload refused; the running config stays."
    );
}
