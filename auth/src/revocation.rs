//! Revoked tokens, subjects and consumers.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::error::AuthError;

/// What has been revoked. Shared by every verifier; each change bumps
/// [`generation`](Self::generation), which drops every cached verification, so a
/// revocation takes effect on the next message whether its token was cached or not.
///
/// Entries are kept until [`clear`](Self::clear) or a restart; a bus keeps them
/// durably as trust state ([`TrustState`](crate::TrustState), in Redis) and
/// swaps them in whole with [`replace_from`](Self::replace_from).
#[derive(Debug, Default)]
pub struct Revocations {
    set: RwLock<RevokedSet>,
    generation: AtomicU64,
}

#[derive(Debug, Default, Clone)]
struct RevokedSet {
    token_ids: HashSet<String>,
    subjects: HashSet<String>,
    consumers: HashSet<String>,
    /// Per consumer: tokens issued (`iat`) strictly before this time are revoked.
    issued_before: HashMap<String, u64>,
    /// Every consumer's tokens issued strictly before this time are revoked.
    all_issued_before: Option<u64>,
}

/// What a revocation check looks at in a verified token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenFacts<'a> {
    pub(crate) consumer: &'a str,
    pub(crate) subject: Option<&'a str>,
    pub(crate) token_id: Option<&'a str>,
    pub(crate) issued_at: Option<u64>,
}

impl Revocations {
    /// Nothing revoked.
    pub fn new() -> Self {
        Self::default()
    }

    /// Revokes the token whose `jti` is `token_id`.
    pub fn revoke_token(&self, token_id: impl Into<String>) {
        self.change(|s| s.token_ids.insert(token_id.into()));
    }

    /// Revokes every token whose `sub` is `subject`, whichever consumer issued it.
    pub fn revoke_subject(&self, subject: impl Into<String>) {
        self.change(|s| s.subjects.insert(subject.into()));
    }

    /// Revokes every token of the consumer called `consumer`, past and future, until
    /// [`reinstate_consumer`](Self::reinstate_consumer).
    pub fn revoke_consumer(&self, consumer: impl Into<String>) {
        self.change(|s| s.consumers.insert(consumer.into()));
    }

    /// Lifts [`revoke_consumer`](Self::revoke_consumer); returns whether it was revoked.
    pub fn reinstate_consumer(&self, consumer: &str) -> bool {
        self.change(|s| s.consumers.remove(consumer))
    }

    /// Revokes every token of `consumer` issued (by `iat`) before `time` (seconds since the
    /// epoch). Tokens without `iat` cannot show they are newer and are revoked too. A
    /// later call replaces the time.
    pub fn revoke_issued_before(&self, consumer: impl Into<String>, time: u64) {
        self.change(|s| s.issued_before.insert(consumer.into(), time));
    }

    /// Revokes every token of every consumer issued (by `iat`) before `time`; tokens
    /// without `iat` are revoked too. A later call replaces the time.
    pub fn revoke_all_issued_before(&self, time: u64) {
        self.change(|s| s.all_issued_before = Some(time));
    }

    /// Replaces everything revoked here by what `other` revokes, in one step (a
    /// verifier sees either the old set or the new one, never a mix).
    pub fn replace_from(&self, other: &Revocations) {
        let fresh = other.set.read().clone();
        self.change(|s| *s = fresh);
    }

    /// Forgets every revocation.
    pub fn clear(&self) {
        self.change(|s| *s = RevokedSet::default());
    }

    /// A counter bumped by every change.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// `Err(TokenRevoked)` if any revocation covers the token.
    pub(crate) fn check(&self, token: TokenFacts<'_>) -> Result<(), AuthError> {
        let set = self.set.read();
        let reason = if token.token_id.is_some_and(|id| set.token_ids.contains(id)) {
            Some("token id")
        } else if token.subject.is_some_and(|sub| set.subjects.contains(sub)) {
            Some("subject")
        } else if set.consumers.contains(token.consumer) {
            Some("consumer")
        } else if set
            .issued_before
            .get(token.consumer)
            .is_some_and(|cutoff| token.issued_at.is_none_or(|iat| iat < *cutoff))
            || set
                .all_issued_before
                .is_some_and(|cutoff| token.issued_at.is_none_or(|iat| iat < cutoff))
        {
            Some("issued before cutoff")
        } else {
            None
        };
        match reason {
            Some(reason) => {
                tracing::info!(
                    consumer = token.consumer,
                    revoked.by = reason,
                    "Token revoked."
                );
                Err(AuthError::TokenRevoked)
            }
            None => Ok(()),
        }
    }

    fn change<T>(&self, f: impl FnOnce(&mut RevokedSet) -> T) -> T {
        let mut set = self.set.write();
        let out = f(&mut set);
        // Bumped under the lock: a verifier that read the old set also read the old
        // generation, so its cache entry is dropped on the next look-up.
        self.generation.fetch_add(1, Ordering::AcqRel);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(issued_at: Option<u64>) -> TokenFacts<'static> {
        TokenFacts {
            consumer: "a",
            subject: Some("u1"),
            token_id: Some("t1"),
            issued_at,
        }
    }

    #[test]
    fn nothing_revoked_passes() {
        assert_eq!(Revocations::new().check(token(Some(10))), Ok(()));
    }

    #[test]
    fn revokes_by_token_id_subject_and_consumer() {
        for revoke in [
            (|r: &Revocations| r.revoke_token("t1")) as fn(&Revocations),
            |r| r.revoke_subject("u1"),
            |r| r.revoke_consumer("a"),
        ] {
            let revocations = Revocations::new();
            revoke(&revocations);
            assert_eq!(
                revocations.check(token(Some(10))),
                Err(AuthError::TokenRevoked)
            );
        }
    }

    #[test]
    fn issued_before_spares_newer_tokens_but_not_tokens_without_iat() {
        let revocations = Revocations::new();
        revocations.revoke_issued_before("a", 100);
        assert_eq!(
            revocations.check(token(Some(99))),
            Err(AuthError::TokenRevoked)
        );
        assert_eq!(revocations.check(token(Some(100))), Ok(()));
        assert_eq!(revocations.check(token(None)), Err(AuthError::TokenRevoked));
    }

    #[test]
    fn a_cutoff_for_all_consumers_and_a_replacement_take_effect() {
        let revocations = Revocations::new();
        revocations.revoke_all_issued_before(100);
        assert_eq!(
            revocations.check(token(Some(99))),
            Err(AuthError::TokenRevoked)
        );
        assert_eq!(revocations.check(token(Some(100))), Ok(()));
        let g = revocations.generation();
        revocations.replace_from(&Revocations::new());
        assert!(revocations.generation() > g);
        assert_eq!(revocations.check(token(Some(1))), Ok(()));
    }

    #[test]
    fn other_consumers_are_unaffected() {
        let revocations = Revocations::new();
        revocations.revoke_consumer("b");
        revocations.revoke_issued_before("b", u64::MAX);
        assert_eq!(revocations.check(token(Some(1))), Ok(()));
    }

    #[test]
    fn reinstating_and_clearing_bump_the_generation() {
        let revocations = Revocations::new();
        revocations.revoke_consumer("a");
        let g = revocations.generation();
        assert!(revocations.reinstate_consumer("a"));
        assert!(revocations.generation() > g);
        assert_eq!(revocations.check(token(Some(1))), Ok(()));
        let g = revocations.generation();
        revocations.clear();
        assert!(revocations.generation() > g);
    }
}
