//! The trust changes in force, and what they make of the configured consumers
//! and of the revocations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::consumer::Consumer;
use crate::revocation::Revocations;

use super::change::TrustChange;

/// One change in force, and when it stops mattering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustEntry {
    /// The change.
    pub change: TrustChange,
    /// Seconds since the epoch after which the entry is dropped; `None` until
    /// undone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// Every change in force, by entry key ([`TrustChange::key`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustState {
    entries: BTreeMap<String, TrustEntry>,
}

impl TrustEntry {
    /// Whether it no longer matters at `now`.
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

impl TrustState {
    /// Nothing in force.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state holding `entries` (later ones replace earlier ones with the
    /// same key), without those expired at `now`.
    pub fn from_entries(entries: impl IntoIterator<Item = TrustEntry>, now: u64) -> Self {
        let mut state = Self::new();
        for entry in entries {
            state.record(entry);
        }
        state.sweep(now);
        state
    }

    /// Takes `entry` in: sets its key, or removes it for an undo.
    pub fn record(&mut self, entry: TrustEntry) {
        let key = entry.change.key();
        if entry.change.is_undo() {
            self.entries.remove(&key);
        } else {
            self.entries.insert(key, entry);
        }
    }

    /// Drops the entries expired at `now`; returns how many.
    pub fn sweep(&mut self, now: u64) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| !e.is_expired(now));
        before - self.entries.len()
    }

    /// The entries in force, by key.
    pub fn entries(&self) -> impl Iterator<Item = &TrustEntry> {
        self.entries.values()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is in force.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What is revoked, as a fresh set.
    pub fn revocations(&self) -> Revocations {
        let revocations = Revocations::new();
        for entry in self.entries.values() {
            match &entry.change {
                TrustChange::RevokeToken { jti, .. } => revocations.revoke_token(jti.as_str()),
                TrustChange::RevokeSubject { subject, .. } => {
                    revocations.revoke_subject(subject.as_str())
                }
                TrustChange::RevokeConsumer { consumer } => {
                    revocations.revoke_consumer(consumer.as_str())
                }
                TrustChange::RevokeIssuedBefore {
                    consumer: Some(consumer),
                    before,
                } => revocations.revoke_issued_before(consumer.as_str(), *before),
                TrustChange::RevokeIssuedBefore {
                    consumer: None,
                    before,
                } => revocations.revoke_all_issued_before(*before),
                _ => {}
            }
        }
        revocations
    }

    /// The consumers of `baseline` (the config's) with the consumer changes
    /// applied, and one line per change that could not be (an unknown
    /// consumer, a `kid` already taken).
    pub fn consumers(&self, baseline: &[Consumer]) -> (Vec<Consumer>, Vec<String>) {
        let mut all = baseline.to_vec();
        let mut problems = Vec::new();
        for entry in self.entries.values() {
            if let Err(problem) = apply(&mut all, &entry.change) {
                problems.push(format!("{}: {problem}", entry.change.key()));
            }
        }
        (all, problems)
    }
}

/// Applies one consumer change to `all`.
fn apply(all: &mut [Consumer], change: &TrustChange) -> Result<(), String> {
    let find = |all: &mut [Consumer], name: &str| -> Result<usize, String> {
        all.iter()
            .position(|c| c.name == name)
            .ok_or_else(|| format!("no consumer called `{name}`"))
    };
    match change {
        TrustChange::DisableConsumer { consumer } | TrustChange::EnableConsumer { consumer } => {
            let i = find(all, consumer)?;
            all[i].enabled = matches!(change, TrustChange::EnableConsumer { .. });
        }
        TrustChange::AddCredential {
            consumer,
            credential,
        } => {
            let i = find(all, consumer)?;
            let kid = credential.kid.as_deref().unwrap_or("");
            if all
                .iter()
                .flat_map(|c| &c.credentials)
                .any(|k| k.kid() == Some(kid))
            {
                return Err(format!("kid `{kid}` is already taken"));
            }
            let built = credential
                .build(consumer, std::path::Path::new("."))
                .map_err(|e| e.to_string())?;
            all[i].credentials.push(built);
        }
        TrustChange::RemoveCredential {
            consumer: owner,
            kid,
        } => {
            let mut found = false;
            let owned = |c: &Consumer| owner.as_deref().is_none_or(|o| o == c.name);
            for consumer in all.iter_mut().filter(|c| owned(c)) {
                let before = consumer.credentials.len();
                consumer.credentials.retain(|k| k.kid() != Some(kid));
                found |= consumer.credentials.len() != before;
            }
            if !found {
                return Err(match owner {
                    Some(owner) => format!("`{owner}` has no key with kid `{kid}`"),
                    None => format!("no key with kid `{kid}`"),
                });
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
