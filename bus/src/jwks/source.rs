//! One consumer's remote key set: its last good keys, the fetch that keeps
//! them fresh, and the rate limit on fetches an unknown `kid` causes.

use std::{sync::Arc, time::Instant};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tollgate_auth::{ConsumerStore, Credential, JwksSource, credentials_from_jwks};

use crate::{error::JwksError, events};

use super::JwksClient;

/// Why a fetch is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    /// At start or when a reload added the source, then on the schedule.
    Schedule,
    /// A token named a `kid` nobody holds: rate-limited.
    UnknownKid,
}

/// A consumer's remote JWKS as the router keeps it.
pub(super) struct Source {
    pub(super) consumer: String,
    /// The consumer claim value naming this consumer in tokens.
    pub(super) key: String,
    pub(super) spec: JwksSource,
    /// Cancelled when a reload removes or changes the source.
    pub(super) stop: CancellationToken,
    /// When an unknown `kid` last caused a fetch; held across every fetch,
    /// so concurrent misses wait for the one in flight, then find it recent
    /// and do not fetch again. Scheduled fetches do not count: a key rotated
    /// in just after one is still fetched on its first token.
    fetching: tokio::sync::Mutex<Option<Instant>>,
    /// The keys of the last good fetch, as installed in the store.
    keys: Mutex<Vec<Credential>>,
}

impl Source {
    pub(super) fn new(
        consumer: String,
        key: String,
        spec: JwksSource,
        stop: CancellationToken,
    ) -> Self {
        Self {
            consumer,
            key,
            spec,
            stop,
            fetching: tokio::sync::Mutex::new(None),
            keys: Mutex::new(Vec::new()),
        }
    }

    /// The keys of the last good fetch (none before the first).
    pub(super) fn keys(&self) -> Vec<Credential> {
        self.keys.lock().clone()
    }

    /// Fetches the set and installs it in `store` in place of the last good
    /// one, unless `why` is an unknown `kid` and the last fetch an unknown
    /// `kid` caused was less than `min_refetch` ago (then nothing happens).
    /// `apply` is the lock every change of remote keys in the store takes (a
    /// reload's too). Returns whether a fetch was made and its set installed;
    /// after a failed one the last good set stays.
    pub(super) async fn refresh(
        &self,
        why: Why,
        client: &JwksClient,
        store: &ConsumerStore,
        apply: &Mutex<()>,
    ) -> bool {
        let mut last = self.fetching.lock().await;
        if why == Why::UnknownKid {
            if last.is_some_and(|at| at.elapsed() < self.spec.min_refetch) {
                return false;
            }
            *last = Some(Instant::now());
        }
        let outcome = match client.get(&self.spec.url).await {
            Ok(body) => self.install(&body, store, apply),
            Err(e) => Err(e),
        };
        match &outcome {
            Ok(count) => tracing::info!(
                consumer = %self.consumer,
                jwks.url = %self.spec.url,
                jwks.keys = count,
                jwks.reason = why.as_str(),
                "Fetched a remote key set."
            ),
            Err(e) => tracing::warn!(
                consumer = %self.consumer,
                jwks.url = %self.spec.url,
                jwks.reason = why.as_str(),
                error = %e,
                code = e.code(),
                "Cannot refresh a remote key set; the last good one stays."
            ),
        }
        events::jwks_fetch(
            why.as_str(),
            outcome.as_ref().map_or_else(JwksError::code, |_| "ok"),
        );
        outcome.is_ok()
    }

    /// Checks `body` as a `jwks_file` is checked and swaps its keys in for
    /// the last good ones; how many keys it holds.
    fn install(
        &self,
        body: &str,
        store: &ConsumerStore,
        apply: &Mutex<()>,
    ) -> Result<usize, JwksError> {
        let name = format!("{}:{}", self.consumer, self.spec.url);
        let fresh = credentials_from_jwks(&name, body).map_err(JwksError::Invalid)?;
        let _apply = apply.lock();
        if self.stop.is_cancelled() {
            // A reload removed or changed this source meanwhile.
            return Ok(0);
        }
        let mut keys = self.keys.lock();
        let old: Vec<String> = keys
            .iter()
            .filter_map(|k| k.kid().map(str::to_owned))
            .collect();
        store
            .replace_credentials(&self.consumer, &old, fresh.clone())
            .map_err(JwksError::Refused)?;
        *keys = fresh;
        Ok(keys.len())
    }

    /// Keeps the set fresh until stopped: every `refresh`, or every
    /// `min_refetch` while the provider fails.
    pub(super) async fn keep_fresh(
        self: Arc<Self>,
        client: JwksClient,
        store: Arc<ConsumerStore>,
        apply: Arc<Mutex<()>>,
        mut healthy: bool,
    ) {
        loop {
            let wait = if healthy {
                self.spec.refresh
            } else {
                self.spec.min_refetch
            };
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            healthy = self.refresh(Why::Schedule, &client, &store, &apply).await;
        }
    }
}

impl Why {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::UnknownKid => "unknown_kid",
        }
    }
}
