//! Keeps a process's trust state equal to Redis: the whole state is loaded
//! before the process serves, re-read periodically and after the broker
//! connection comes back, so a broadcast it missed heals.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use crate::{time::unix_now, transport::Transport};

use super::{LiveTrust, TrustStore};

/// Wait between attempts of the first load.
const FIRST_LOAD_RETRY: Duration = Duration::from_secs(1);

/// How often the broker connection is looked at (to re-read after it is back).
const CONNECTION_CHECK: Duration = Duration::from_secs(1);

/// Loads the whole state from `store` into `live`, retrying every second
/// until it succeeds; returns `false` when `shutdown` came first.
pub async fn first_load(
    store: &TrustStore,
    live: &LiveTrust,
    shutdown: &CancellationToken,
) -> bool {
    loop {
        let recorded = live.recorded();
        match store.load(unix_now()).await {
            Ok(state) => {
                tracing::info!(entries = state.len(), "Trust state loaded.");
                // A broadcast taken during the load is in Redis already.
                if !live.replace_loaded(state, recorded) {
                    continue;
                }
                return true;
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot load the trust state; not serving until it loads.");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(FIRST_LOAD_RETRY) => {}
        }
    }
}

/// Re-reads the state every `every` and when `transport` reconnects, until
/// `shutdown`. A failed read keeps the state in force.
pub fn keep_in_sync(
    store: Arc<TrustStore>,
    live: Arc<LiveTrust>,
    transport: Arc<dyn Transport>,
    every: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut resync = tokio::time::interval(every);
        resync.tick().await;
        let mut check = tokio::time::interval(CONNECTION_CHECK);
        let mut was_connected = true;
        loop {
            let reload = tokio::select! {
                () = shutdown.cancelled() => return,
                _ = resync.tick() => true,
                _ = check.tick() => {
                    let connected = transport.is_connected();
                    let back = connected && !was_connected;
                    was_connected = connected;
                    back
                }
            };
            if !reload {
                continue;
            }
            let recorded = live.recorded();
            match store.load(unix_now()).await {
                Ok(state) => {
                    if !live.replace_loaded(state, recorded) {
                        tracing::debug!(
                            "A change arrived during the re-read; the next one takes it."
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot re-read the trust state; keeping the one in force.")
                }
            }
        }
    })
}

/// [`first_load`] for a process without a shutdown signal of its own (the
/// central auth service): retries until Redis answers.
pub async fn load_when_ready(store: &TrustStore, live: &LiveTrust) {
    first_load(store, live, &CancellationToken::new()).await;
}
