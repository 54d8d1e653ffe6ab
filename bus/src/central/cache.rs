//! A bounded cache of positive introspection answers, keyed by the
//! credential's hash, each entry kept at most the configured TTL (≤ 5 s) and
//! never past the credential's own expiry.

use std::{collections::HashMap, sync::Arc, time::Duration};

use parking_lot::Mutex;
use tokio::time::Instant;
use tollgate_auth::{CredentialHash, Identity};

/// Positive answers of the central auth service, for a short while.
#[derive(Debug)]
pub struct IntrospectionCache {
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<CredentialHash, Entry>>,
}

#[derive(Debug)]
struct Entry {
    identity: Arc<Identity>,
    until: Instant,
}

impl IntrospectionCache {
    /// A cache keeping answers `ttl` (zero: keeps nothing), at most `max_entries`.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            ttl,
            max_entries: max_entries.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cached identity of `hash`, if fresh.
    pub fn get(&self, hash: &CredentialHash) -> Option<Arc<Identity>> {
        let mut entries = self.entries.lock();
        match entries.get(hash) {
            Some(e) if e.until > Instant::now() => Some(Arc::clone(&e.identity)),
            Some(_) => {
                entries.remove(hash);
                None
            }
            None => None,
        }
    }

    /// Keeps `identity` for `hash` for the TTL, or less when the credential
    /// expires sooner (`expires_in`). When full, expired entries go first,
    /// then the entry closest to its end.
    pub fn insert(&self, hash: CredentialHash, identity: Arc<Identity>, expires_in: Duration) {
        let keep = self.ttl.min(expires_in);
        if keep.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock();
        if entries.len() >= self.max_entries && !entries.contains_key(&hash) {
            entries.retain(|_, e| e.until > now);
            if entries.len() >= self.max_entries
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.until)
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            hash,
            Entry {
                identity,
                until: now + keep,
            },
        );
    }

    /// Forgets `hashes` (their sessions ended); returns how many were cached.
    pub fn forget<'a>(&self, hashes: impl IntoIterator<Item = &'a CredentialHash>) -> usize {
        let mut entries = self.entries.lock();
        hashes
            .into_iter()
            .filter(|h| entries.remove(*h).is_some())
            .count()
    }

    /// Forgets every entry of `consumer` (a user disabled).
    pub fn forget_consumer(&self, consumer: &str) -> usize {
        let mut entries = self.entries.lock();
        let before = entries.len();
        entries.retain(|_, e| e.identity.consumer != consumer);
        before - entries.len()
    }

    /// Forgets every entry (trust state changed: a revoked token's cached
    /// answer must not outlive the revocation); returns how many.
    pub fn clear(&self) -> usize {
        let mut entries = self.entries.lock();
        let n = entries.len();
        entries.clear();
        n
    }

    /// Entries held now (fresh or not yet swept).
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(s: &str) -> CredentialHash {
        CredentialHash::of(s)
    }

    #[tokio::test(start_paused = true)]
    async fn keeps_answers_for_the_ttl_or_until_the_credential_expires() {
        let cache = IntrospectionCache::new(Duration::from_secs(2), 10);
        let ann = Arc::new(Identity::new("ann"));
        cache.insert(hash("a"), Arc::clone(&ann), Duration::from_secs(60));
        cache.insert(hash("b"), Arc::clone(&ann), Duration::from_millis(500));
        assert!(cache.get(&hash("a")).is_some());
        tokio::time::advance(Duration::from_millis(600)).await;
        assert!(
            cache.get(&hash("b")).is_none(),
            "past the credential's expiry"
        );
        assert!(cache.get(&hash("a")).is_some());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(cache.get(&hash("a")).is_none(), "past the TTL");
    }

    #[test]
    fn a_zero_ttl_keeps_nothing_and_forget_empties_at_once() {
        let off = IntrospectionCache::new(Duration::ZERO, 10);
        off.insert(
            hash("a"),
            Arc::new(Identity::new("ann")),
            Duration::from_secs(9),
        );
        assert!(off.is_empty());
        let cache = IntrospectionCache::new(Duration::from_secs(5), 10);
        cache.insert(
            hash("a"),
            Arc::new(Identity::new("ann")),
            Duration::from_secs(9),
        );
        cache.insert(
            hash("b"),
            Arc::new(Identity::new("bob")),
            Duration::from_secs(9),
        );
        assert_eq!(cache.forget([&hash("a"), &hash("zzz")]), 1);
        assert!(cache.get(&hash("a")).is_none());
        assert_eq!(cache.forget_consumer("bob"), 1);
        assert!(cache.is_empty());
    }

    #[test]
    fn stays_within_its_bound() {
        let cache = IntrospectionCache::new(Duration::from_secs(5), 3);
        for i in 0..10 {
            let id = Arc::new(Identity::new(format!("u{i}")));
            cache.insert(hash(&i.to_string()), id, Duration::from_secs(9));
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&hash("9")).is_some(), "the newest is kept");
    }
}
