//! Sessions in the process: one instance only (the demo and tests).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use parking_lot::Mutex;
use tollgate_auth::{CredentialHash, Session, SessionLimits};

use super::{SessionStore, Touched, judge};
use crate::error::StoreError;

/// Sessions held before a new one sweeps out the ended ones.
const SWEEP_ABOVE: usize = 10_000;

/// An in-memory [`SessionStore`]; ended sessions are dropped when read, and
/// swept when many are held.
#[derive(Debug, Default)]
pub struct MemorySessionStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<CredentialHash, Session>,
    by_user: HashMap<String, HashSet<CredentialHash>>,
}

impl MemorySessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Inner {
    fn take(&mut self, hash: &CredentialHash) -> Option<Session> {
        let session = self.sessions.remove(hash)?;
        if let Some(set) = self.by_user.get_mut(&session.user) {
            set.remove(hash);
            if set.is_empty() {
                self.by_user.remove(&session.user);
            }
        }
        Some(session)
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn create(
        &self,
        hash: &CredentialHash,
        session: &Session,
        limits: SessionLimits,
    ) -> Result<(), StoreError> {
        let mut inner = self.inner.lock();
        if inner.sessions.len() >= SWEEP_ABOVE {
            let now = session.created_at;
            let ended: Vec<_> = inner
                .sessions
                .iter()
                .filter(|(_, s)| s.check(now, limits).is_err())
                .map(|(h, _)| h.clone())
                .collect();
            for hash in &ended {
                inner.take(hash);
            }
        }
        inner.sessions.insert(hash.clone(), session.clone());
        inner
            .by_user
            .entry(session.user.clone())
            .or_default()
            .insert(hash.clone());
        Ok(())
    }

    async fn touch(
        &self,
        hash: &CredentialHash,
        now: u64,
        limits: SessionLimits,
    ) -> Result<Touched, StoreError> {
        let mut inner = self.inner.lock();
        let Some(session) = inner.sessions.get(hash).cloned() else {
            return Ok(Touched::Unknown);
        };
        let touched = judge(session, now, limits);
        match &touched {
            Touched::Live(session) => {
                inner.sessions.insert(hash.clone(), session.clone());
            }
            _ => {
                inner.take(hash);
            }
        }
        Ok(touched)
    }

    async fn remove(&self, hash: &CredentialHash) -> Result<Option<Session>, StoreError> {
        Ok(self.inner.lock().take(hash))
    }

    async fn remove_user(&self, user: &str) -> Result<Vec<CredentialHash>, StoreError> {
        let mut inner = self.inner.lock();
        let hashes: Vec<_> = inner
            .by_user
            .remove(user)
            .map(|set| set.into_iter().collect())
            .unwrap_or_default();
        for hash in &hashes {
            inner.sessions.remove(hash);
        }
        Ok(hashes)
    }
}
