//! The reply contexts this router has already forwarded a reply for, so a
//! second reply with the same context (a service replaying one it saw) is
//! refused. Only calls delivered durably are recorded here: a held call's
//! reply is taken through its hold (`held.rs`), which ends with it. Entries live until their context expires; the set is bounded,
//! and when full the oldest entry goes first (its context could then be
//! replayed once more through this router: logged).
//!
//! Each router instance keeps its own set: a replay sent through another
//! router of the same bus is not caught (README, "Reply path").

use std::collections::{HashSet, VecDeque};

use parking_lot::Mutex;

use crate::{reply_context::ContextId, time::unix_now};

/// Default bound: at 3,000 replies/s and a 300 s reply timeout, the set holds
/// 900,000 entries (about 25 MB); beyond, the oldest are forgotten.
pub(super) const DEFAULT_CAPACITY: usize = 1_000_000;

/// What [`UsedContexts::first_use`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Use {
    /// Never seen: recorded now.
    First,
    /// Seen before (and not yet expired).
    Again,
}

/// A bounded set of used context ids with their expiry.
pub(super) struct UsedContexts {
    inner: Mutex<Inner>,
    capacity: usize,
}

/// The ids are kept by their first 8 bytes ([`key`]): about 26–36 bytes an
/// entry in all, against 50–100 for the whole id with its expiry in a map.
#[derive(Default)]
struct Inner {
    seen: HashSet<u64>,
    /// Insertion order with each entry's expiry, for purging and eviction.
    order: VecDeque<(u64, u64)>,
}

/// What an id is kept as: its first 8 bytes. Ids are random nonces or
/// digests that nobody outside the bus can choose (a context that does not
/// open never gets here), so two live ids share them with odds of n in
/// 2^64 (5·10⁻¹⁴ for a full set), when a genuine reply would be refused.
fn key(id: &ContextId) -> u64 {
    let mut first = [0; 8];
    first.copy_from_slice(&id[..8]);
    u64::from_le_bytes(first)
}

impl UsedContexts {
    /// An empty set holding at most `capacity` ids.
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
        }
    }

    /// Records `id` (valid until `expires_at`) unless it was used before.
    pub(super) fn first_use(&self, id: ContextId, expires_at: u64) -> Use {
        let now = unix_now();
        let key = key(&id);
        let mut inner = self.inner.lock();
        inner.purge(now);
        if inner.seen.contains(&key) {
            return Use::Again;
        }
        if inner.seen.len() >= self.capacity {
            if let Some((old, _)) = inner.order.pop_front() {
                inner.seen.remove(&old);
            }
            tracing::warn!(
                capacity = self.capacity,
                "Used reply contexts at capacity; the oldest is forgotten."
            );
        }
        inner.seen.insert(key);
        inner.order.push_back((key, expires_at));
        Use::First
    }

    /// Forgets `id` again (its reply could not be forwarded and will come back).
    pub(super) fn forget(&self, id: &ContextId) {
        self.inner.lock().seen.remove(&key(id));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().seen.len()
    }
}

impl Inner {
    /// Drops the expired entries at the front (insertion order is nearly
    /// expiry order: every context lives the same reply timeout).
    fn purge(&mut self, now: u64) {
        while let Some(&(key, expires_at)) = self.order.front() {
            if expires_at >= now {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_use_is_refused_until_the_context_expires() {
        let used = UsedContexts::new(10);
        let later = unix_now() + 60;
        assert_eq!(used.first_use([1; 12], later), Use::First);
        assert_eq!(used.first_use([1; 12], later), Use::Again);
        assert_eq!(used.first_use([2; 12], later), Use::First);
        used.forget(&[1; 12]);
        assert_eq!(used.first_use([1; 12], later), Use::First);
    }

    #[test]
    fn expired_entries_are_purged() {
        let used = UsedContexts::new(10);
        used.first_use([1; 12], unix_now() - 5);
        used.first_use([2; 12], unix_now() + 60);
        assert_eq!(used.len(), 1);
    }

    #[test]
    fn the_set_is_bounded_and_forgets_the_oldest() {
        let used = UsedContexts::new(2);
        let later = unix_now() + 60;
        used.first_use([1; 12], later);
        used.first_use([2; 12], later);
        used.first_use([3; 12], later);
        assert_eq!(used.len(), 2);
        assert_eq!(used.first_use([3; 12], later), Use::Again);
        assert_eq!(used.first_use([1; 12], later), Use::First);
    }
}
