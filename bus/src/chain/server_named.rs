//! Reply queues the broker named (`amq.gen-…`, a queue declared with an empty
//! name, as RabbitMQ's RPC tutorial does), bound to the reply key that first
//! named them.
//!
//! A caller queue proves its owner by its name (the SHA-256 of the caller's
//! secret, [`ReplyKey`](crate::ReplyKey)); a name the broker drew cannot carry
//! a commitment, and nothing in AMQP tells the router which connection owns a
//! queue. So the router binds a server-named queue to the reply key of the
//! first request that names it and, from then on, writes into it only for
//! requests carrying that key: an attacker who learns the name later (the
//! management UI lists queues) gets `bad_reply_to` and puts nothing into it.
//! A binding lasts `ttl` (the reply timeout) after the last request that
//! named the queue. The table is bounded; when full of live bindings, new
//! server-named queues are refused rather than live bindings forgotten.
//!
//! Each router instance keeps its own table, like the used reply contexts:
//! with several routers, a request naming the queue reaches a router that
//! has not yet seen it unbound there (README, "The reply path").

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

/// Prefix of the names RabbitMQ gives a queue declared with an empty name.
pub const SERVER_NAMED_PREFIX: &str = "amq.gen-";

/// Default bound on bindings (about 150 bytes each).
pub(super) const DEFAULT_CAPACITY: usize = 100_000;

/// Why a server-named `reply_to` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unbound {
    /// The request carries no reply key, or not a 32-byte base64url secret.
    NoKey,
    /// The queue is bound to another request's key.
    OtherKey,
    /// The table is full of live bindings.
    Full,
}

/// Whether `reply_to` has the shape of a broker-generated name:
/// `amq.gen-` and 22 base64url characters.
pub fn is_server_named(reply_to: &str) -> bool {
    reply_to
        .strip_prefix(SERVER_NAMED_PREFIX)
        .is_some_and(|id| {
            id.len() == 22
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Server-named reply queues and the key each is bound to.
pub struct ServerNamedQueues {
    inner: Mutex<Inner>,
    ttl: Duration,
    capacity: usize,
}

struct Inner {
    bindings: HashMap<String, Binding>,
    next_purge: Instant,
}

struct Binding {
    key: [u8; 32],
    expires: Instant,
}

impl ServerNamedQueues {
    /// An empty table whose bindings last `ttl` after their last use, holding
    /// at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                bindings: HashMap::new(),
                next_purge: Instant::now(),
            }),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// Admits `queue` (a server-named queue) as the reply queue of a request
    /// carrying `reply_key`: binds it to the key on first use, refreshes the
    /// binding when the key is the bound one.
    ///
    /// # Errors
    /// [`Unbound`] when the key is missing or malformed, the queue is bound
    /// to another key, or the table is full.
    pub fn admit(&self, queue: &str, reply_key: Option<&str>) -> Result<(), Unbound> {
        self.admit_at(queue, reply_key, Instant::now())
    }

    fn admit_at(&self, queue: &str, reply_key: Option<&str>, now: Instant) -> Result<(), Unbound> {
        let secret = reply_key
            .and_then(crate::ReplyKey::decode_secret)
            .ok_or(Unbound::NoKey)?;
        // Only the digest is kept: a dump of the table holds no secret.
        let key: [u8; 32] = Sha256::digest(secret).into();
        let expires = now + self.ttl;
        let mut inner = self.inner.lock();
        if now >= inner.next_purge {
            inner.bindings.retain(|_, b| b.expires > now);
            inner.next_purge = now + Duration::from_secs(1);
        }
        if let Some(binding) = inner.bindings.get_mut(queue)
            && binding.expires > now
        {
            if binding.key != key {
                return Err(Unbound::OtherKey);
            }
            binding.expires = expires;
            return Ok(());
        }
        if inner.bindings.len() >= self.capacity && !inner.bindings.contains_key(queue) {
            tracing::warn!(
                capacity = self.capacity,
                "Server-named reply queues at capacity; a new one is refused."
            );
            return Err(Unbound::Full);
        }
        inner
            .bindings
            .insert(queue.to_owned(), Binding { key, expires });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReplyKey;

    const QUEUE: &str = "amq.gen-JzTY20BRgKO-HjmUJj0wLg";

    #[test]
    fn recognises_broker_generated_names_only() {
        assert!(is_server_named(QUEUE));
        assert!(!is_server_named("amq.gen-short"));
        assert!(!is_server_named("amq.gen-JzTY20BRgKO-HjmUJj0wL."));
        assert!(!is_server_named("amq.gen-JzTY20BRgKO-HjmUJj0wLgX"));
        assert!(!is_server_named("tg.caller.JzTY20BRgKO-HjmUJj0wLg"));
    }

    #[test]
    fn the_first_key_binds_the_queue_and_others_are_refused() {
        let table = ServerNamedQueues::new(Duration::from_secs(300), 10);
        let (owner, attacker) = (ReplyKey::generate(), ReplyKey::generate());
        let t0 = Instant::now();
        assert_eq!(table.admit_at(QUEUE, None, t0), Err(Unbound::NoKey));
        assert_eq!(table.admit_at(QUEUE, Some("%%"), t0), Err(Unbound::NoKey));
        assert_eq!(table.admit_at(QUEUE, Some(owner.secret()), t0), Ok(()));
        assert_eq!(table.admit_at(QUEUE, Some(owner.secret()), t0), Ok(()));
        assert_eq!(
            table.admit_at(QUEUE, Some(attacker.secret()), t0),
            Err(Unbound::OtherKey)
        );
    }

    #[test]
    fn a_binding_lasts_the_ttl_after_its_last_use() {
        let table = ServerNamedQueues::new(Duration::from_secs(10), 10);
        let (owner, other) = (ReplyKey::generate(), ReplyKey::generate());
        let t0 = Instant::now();
        table.admit_at(QUEUE, Some(owner.secret()), t0).unwrap();
        let t9 = t0 + Duration::from_secs(9);
        table.admit_at(QUEUE, Some(owner.secret()), t9).unwrap();
        let t18 = t0 + Duration::from_secs(18);
        assert_eq!(
            table.admit_at(QUEUE, Some(other.secret()), t18),
            Err(Unbound::OtherKey),
            "refreshed at 9 s, still bound at 18 s"
        );
        let t20 = t0 + Duration::from_secs(20);
        assert_eq!(table.admit_at(QUEUE, Some(other.secret()), t20), Ok(()));
    }

    #[test]
    fn a_full_table_refuses_new_queues_and_keeps_live_bindings() {
        let table = ServerNamedQueues::new(Duration::from_secs(300), 1);
        let (owner, other) = (ReplyKey::generate(), ReplyKey::generate());
        let t0 = Instant::now();
        table.admit_at(QUEUE, Some(owner.secret()), t0).unwrap();
        let second = "amq.gen-AAAAAAAAAAAAAAAAAAAAAA";
        assert_eq!(
            table.admit_at(second, Some(other.secret()), t0),
            Err(Unbound::Full)
        );
        assert_eq!(table.admit_at(QUEUE, Some(owner.secret()), t0), Ok(()));
        let later = t0 + Duration::from_secs(301);
        assert_eq!(table.admit_at(second, Some(other.secret()), later), Ok(()));
    }
}
