//! The verified-token cache: skip the signature check for a token seen before.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use sha2::{Digest, Sha256};

use crate::identity::Identity;

/// A bounded map from the SHA-256 of a token to the identity it verified to.
///
/// The token itself is never stored. An entry is served only while the token has
/// not expired (`exp`, without leeway) and while the consumer store and the
/// revocations are at the generation the entry was verified under: any change of
/// a consumer, a key or a revocation empties the cache. When full, the oldest
/// entry is evicted first.
#[derive(Debug)]
pub struct TokenCache {
    capacity: usize,
    map: RwLock<Entries>,
    hits: AtomicU64,
    misses: AtomicU64,
    inserts: AtomicU64,
}

/// Counters of a [`TokenCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Look-ups answered from the cache.
    pub hits: u64,
    /// Look-ups that went on to a full verification.
    pub misses: u64,
    /// Entries added since creation.
    pub inserts: u64,
    /// Entries held now.
    pub len: usize,
    /// The most entries held at once; 0 means the cache is off.
    pub capacity: usize,
}

/// The generation pair an entry was verified under: (consumer store, revocations).
pub(crate) type Generation = (u64, u64);

type TokenHash = [u8; 32];

#[derive(Debug, Default)]
struct Entries {
    generation: Generation,
    by_hash: HashMap<TokenHash, Entry, BuildHasherDefault<PrefixHasher>>,
    /// Insertion order, for eviction; a slot whose `seq` no longer matches is skipped.
    order: VecDeque<(TokenHash, u64)>,
    next_seq: u64,
}

#[derive(Debug)]
struct Entry {
    identity: Arc<Identity>,
    expires_at: u64,
    seq: u64,
}

// === TokenCache ===

impl TokenCache {
    /// A cache of at most `capacity` entries; 0 turns it off.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            map: RwLock::new(Entries::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            inserts: AtomicU64::new(0),
        }
    }

    /// The counters and size now.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            inserts: self.inserts.load(Ordering::Relaxed),
            len: self.map.read().by_hash.len(),
            capacity: self.capacity,
        }
    }

    /// Empties the cache.
    pub fn clear(&self) {
        let mut map = self.map.write();
        map.by_hash.clear();
        map.order.clear();
    }

    /// The identity `token` verified to, if it is cached, unexpired at `now` and of
    /// `generation`. Counts a hit or a miss.
    pub(crate) fn get(
        &self,
        token: &str,
        now: u64,
        generation: Generation,
    ) -> Option<Arc<Identity>> {
        if self.capacity == 0 {
            return None;
        }
        let hash = hash(token);
        let found = {
            let map = self.map.read();
            map.by_hash
                .get(&hash)
                .filter(|e| map.generation == generation && now < e.expires_at)
                .map(|e| Arc::clone(&e.identity))
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Remembers that `token` verified to `identity` under `generation`, until
    /// `expires_at`. A verification that raced with a change (an older generation than
    /// the cache has seen) is not kept.
    pub(crate) fn insert(
        &self,
        token: &str,
        identity: Arc<Identity>,
        expires_at: u64,
        generation: Generation,
    ) {
        if self.capacity == 0 {
            return;
        }
        let hash = hash(token);
        let mut map = self.map.write();
        if generation != map.generation {
            if generation.0 < map.generation.0 || generation.1 < map.generation.1 {
                return;
            }
            map.by_hash.clear();
            map.order.clear();
            map.generation = generation;
        }
        while map.by_hash.len() >= self.capacity {
            let Some((old, seq)) = map.order.pop_front() else {
                break;
            };
            if map.by_hash.get(&old).is_some_and(|e| e.seq == seq) {
                map.by_hash.remove(&old);
            }
        }
        let seq = map.next_seq;
        map.next_seq += 1;
        map.by_hash.insert(
            hash,
            Entry {
                identity,
                expires_at,
                seq,
            },
        );
        map.order.push_back((hash, seq));
        // Replaced entries leave stale slots behind; keep the queue bounded too.
        if map.order.len() > self.capacity.saturating_mul(2) {
            let Entries { by_hash, order, .. } = &mut *map;
            order.retain(|(h, s)| by_hash.get(h).is_some_and(|e| e.seq == *s));
        }
        self.inserts.fetch_add(1, Ordering::Relaxed);
    }
}

fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// The map key is already a SHA-256 digest: its first eight bytes are a fine hash.
#[derive(Debug, Default)]
struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 |= u64::from(*b) << (8 * i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: Generation = (1, 1);

    fn cache_with(capacity: usize, tokens: &[&str]) -> TokenCache {
        let cache = TokenCache::new(capacity);
        for t in tokens {
            cache.insert(t, Arc::new(Identity::new(*t)), 100, G);
        }
        cache
    }

    #[test]
    fn serves_an_entry_until_the_token_expires() {
        let cache = cache_with(10, &["a"]);
        assert_eq!(
            cache.get("a", 99, G).map(|i| i.consumer.clone()),
            Some("a".into())
        );
        assert_eq!(cache.get("a", 100, G), None);
        let stats = cache.stats();
        assert_eq!(
            (stats.hits, stats.misses, stats.inserts, stats.len),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn a_new_generation_misses_and_the_next_insert_empties_the_cache() {
        let cache = cache_with(10, &["a", "b"]);
        assert_eq!(cache.get("a", 1, (2, 1)), None);
        assert_eq!(cache.get("a", 1, (1, 2)), None);
        cache.insert("c", Arc::new(Identity::new("c")), 100, (2, 1));
        assert_eq!(cache.stats().len, 1);
        assert!(cache.get("c", 1, (2, 1)).is_some());
    }

    #[test]
    fn a_verification_from_an_older_generation_is_not_kept() {
        let cache = cache_with(10, &["a"]);
        cache.insert("old", Arc::new(Identity::new("old")), 100, (0, 1));
        assert_eq!(cache.get("old", 1, (0, 1)), None);
        assert_eq!(cache.stats().len, 1);
    }

    #[test]
    fn evicts_the_oldest_entry_when_full() {
        let cache = cache_with(2, &["a", "b", "c"]);
        assert_eq!(cache.stats().len, 2);
        assert!(cache.get("a", 1, G).is_none());
        assert!(cache.get("b", 1, G).is_some());
        assert!(cache.get("c", 1, G).is_some());
    }

    #[test]
    fn reinserting_the_same_token_keeps_the_queue_bounded() {
        let cache = TokenCache::new(2);
        for _ in 0..100 {
            cache.insert("a", Arc::new(Identity::new("a")), 100, G);
        }
        assert_eq!(cache.stats().len, 1);
        assert!(cache.map.read().order.len() <= 4);
    }

    #[test]
    fn capacity_zero_turns_the_cache_off() {
        let cache = cache_with(0, &["a"]);
        assert_eq!(cache.get("a", 1, G), None);
        assert_eq!(
            cache.stats(),
            CacheStats {
                capacity: 0,
                ..CacheStats::default()
            }
        );
    }
}
