//! Remote JSON Web Key Sets: the keys of every consumer that names a
//! `jwks_url`, fetched at start, refreshed on a schedule and at once when a
//! token names an unknown `kid` (at most once per `jwks_min_refetch_secs`
//! per consumer; concurrent misses share one fetch), kept in the consumer
//! store the verifier reads. A failed fetch, or a set that fails the checks
//! of a `jwks_file`, keeps the last good set; a key missing from a good set
//! is dropped.

use std::{
    collections::HashMap,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
};

use futures_util::future::join_all;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tollgate_auth::{Consumer, ConsumerStore, KeyMiss, LoadError};

mod fetch;
mod source;

pub use fetch::{JWKS_FETCH_TIMEOUT, JwksClient, MAX_JWKS_BYTES};
use source::{Source, Why};

/// The remote key sets of a router's consumers.
pub struct RemoteKeys {
    store: Arc<ConsumerStore>,
    /// Built on first use: a router without remote key sets never reads the
    /// system's CA certificates.
    client: OnceLock<JwksClient>,
    /// By consumer name.
    sources: Mutex<HashMap<String, Arc<Source>>>,
    /// Whether `sources` holds any (read per message, without the lock).
    any: AtomicBool,
    /// Taken by every change of remote keys in the store, and by
    /// [`RemoteKeys::install_consumers`], so a reload never loses a fetch.
    apply: Arc<Mutex<()>>,
    shutdown: CancellationToken,
}

impl RemoteKeys {
    /// The remote key sets of `store`'s consumers, fetched until
    /// `shutdown`. Nothing is fetched before [`RemoteKeys::sync`].
    pub fn new(store: Arc<ConsumerStore>, shutdown: CancellationToken) -> Self {
        Self {
            store,
            client: OnceLock::new(),
            sources: Mutex::new(HashMap::new()),
            any: AtomicBool::new(false),
            apply: Arc::new(Mutex::new(())),
            shutdown,
        }
    }

    /// Whether no consumer has a remote key set (then nothing is checked
    /// per message).
    pub fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Acquire)
    }

    /// **The one place a reload replaces the consumers** (called by
    /// [`RouterHandle::reload`](crate::router::RouterHandle::reload) while no
    /// gate runs): swaps `consumers` into the store
    /// (`ConsumerStore::replace_all`), each consumer whose remote JWKS is
    /// unchanged keeping the keys last fetched from it, and stops the
    /// sources of consumers gone or changed. On error the store is left as
    /// it was. Consumer changes made live on top of the file's consumers
    /// (disabled, credentials added or removed from elsewhere) must be
    /// applied again here, right after `replace_all`, under the same locks;
    /// the revocations live apart and are not touched.
    pub fn install_consumers(&self, mut consumers: Vec<Consumer>) -> Result<(), LoadError> {
        let _apply = self.apply.lock();
        let mut sources = self.sources.lock();
        let mut kept = Vec::new();
        for consumer in &mut consumers {
            if let Some(source) = sources.get(&consumer.name)
                && same_source(source, consumer)
            {
                consumer.credentials.extend(source.keys());
                kept.push(consumer.name.clone());
            }
        }
        self.store.replace_all(consumers)?;
        // Stopped under the apply lock: a fetch of a dropped or changed set
        // still in flight can no longer install its keys.
        sources.retain(|name, source| {
            let keep = kept.contains(name);
            if !keep {
                source.stop.cancel();
            }
            keep
        });
        self.any.store(!sources.is_empty(), Ordering::Release);
        Ok(())
    }

    /// Makes the sources match the store's consumers: stops those gone or
    /// changed, and for each new one fetches the set (awaited; a failure is
    /// logged, the consumer's tokens are refused with `keys_unavailable`
    /// until a fetch succeeds, retried every `jwks_min_refetch_secs`), then
    /// keeps it fresh.
    pub async fn sync(&self) {
        let wanted: Vec<Arc<Consumer>> = self
            .store
            .consumers()
            .into_iter()
            .filter(|c| c.jwks_source.is_some())
            .collect();
        let fresh: Vec<Arc<Source>> = {
            let mut sources = self.sources.lock();
            sources.retain(|name, source| {
                let keep = wanted
                    .iter()
                    .any(|c| &c.name == name && same_source(source, c));
                if !keep {
                    source.stop.cancel();
                }
                keep
            });
            let mut fresh = Vec::new();
            for c in &wanted {
                let Some(spec) = c.jwks_source.clone() else {
                    continue;
                };
                if sources.contains_key(&c.name) {
                    continue;
                }
                let source = Arc::new(Source::new(
                    c.name.clone(),
                    c.key.clone(),
                    spec,
                    self.shutdown.child_token(),
                ));
                sources.insert(c.name.clone(), Arc::clone(&source));
                fresh.push(source);
            }
            self.any.store(!sources.is_empty(), Ordering::Release);
            fresh
        };
        let first = fresh.iter().map(|s| self.refresh(s, Why::Schedule));
        let healthy = join_all(first).await;
        for (source, healthy) in fresh.into_iter().zip(healthy) {
            tokio::spawn(source.keep_fresh(
                self.client().clone(),
                Arc::clone(&self.store),
                Arc::clone(&self.apply),
                healthy,
            ));
        }
    }

    /// A token named an unknown `kid`: fetches again the set of the
    /// consumer its consumer claim names, or of every remote consumer when
    /// it names none, each at most once per its `jwks_min_refetch_secs`.
    /// Returns once the fetches (or the one already in flight) are done.
    pub async fn on_unknown_kid(&self, miss: &KeyMiss) {
        let chosen: Vec<Arc<Source>> = self
            .sources
            .lock()
            .values()
            .filter(|s| miss.consumer_key.as_ref().is_none_or(|k| k == &s.key))
            .cloned()
            .collect();
        if chosen.is_empty() {
            return;
        }
        tracing::debug!(kid = %miss.kid, "A token names an unknown kid; asking the remote key sets.");
        join_all(chosen.iter().map(|s| self.refresh(s, Why::UnknownKid))).await;
    }

    async fn refresh(&self, source: &Source, why: Why) -> bool {
        source
            .refresh(why, self.client(), &self.store, &self.apply)
            .await
    }

    fn client(&self) -> &JwksClient {
        self.client.get_or_init(JwksClient::new)
    }
}

/// Whether `consumer` names the same remote set, under the same claim, as `source`.
fn same_source(source: &Source, consumer: &Consumer) -> bool {
    consumer.jwks_source.as_ref() == Some(&source.spec) && consumer.key == source.key
}
