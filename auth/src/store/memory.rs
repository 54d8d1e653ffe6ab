//! The in-memory consumer table, swapped whole on every change.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::consumer::Consumer;
use crate::credential::Credential;
use crate::error::LoadError;

/// The consumers and their keys, shared by the verifier and the issuer.
///
/// Readers take a snapshot (an `Arc` clone) and never wait on crypto; every
/// change builds a new table, swaps it in and bumps [`generation`](Self::generation),
/// which invalidates every cached verification. Names, keys and `kid`s are unique.
#[derive(Debug, Default)]
pub struct ConsumerStore {
    table: RwLock<Arc<ConsumerTable>>,
    generation: AtomicU64,
}

/// One immutable version of the consumer table, with its indexes.
#[derive(Debug, Default)]
pub(crate) struct ConsumerTable {
    by_name: HashMap<String, Arc<Consumer>>,
    by_key: HashMap<String, Arc<Consumer>>,
    by_kid: HashMap<String, (Arc<Consumer>, usize)>,
}

// === ConsumerStore ===

impl ConsumerStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `consumers`. Errors if two share a name, a key or a `kid`.
    pub fn with_consumers(consumers: Vec<Consumer>) -> Result<Self, LoadError> {
        let store = Self::new();
        store.replace_all(consumers)?;
        Ok(store)
    }

    /// Replaces every consumer at once (a reload of the consumers file). On error the
    /// store is left as it was.
    pub fn replace_all(&self, consumers: Vec<Consumer>) -> Result<(), LoadError> {
        let table = ConsumerTable::build(consumers)?;
        self.swap(table);
        tracing::info!(consumers = self.len(), "Replaced the consumer table.");
        Ok(())
    }

    /// Adds `consumer`, or replaces the one with the same name.
    pub fn upsert(&self, consumer: Consumer) -> Result<(), LoadError> {
        self.edit(|all| {
            all.retain(|c| c.name != consumer.name);
            all.push(consumer);
            Ok(())
        })
    }

    /// Removes the consumer called `name`; returns whether it existed.
    pub fn remove(&self, name: &str) -> bool {
        self.edit(|all| {
            let before = all.len();
            all.retain(|c| c.name != name);
            if all.len() == before {
                Err(not_found(name))
            } else {
                Ok(())
            }
        })
        .is_ok()
    }

    /// Enables or disables the consumer called `name`; returns whether it exists.
    /// A disabled consumer's tokens are refused from the next verification on.
    pub fn set_enabled(&self, name: &str, enabled: bool) -> bool {
        self.modify(name, |c| c.enabled = enabled).is_ok()
    }

    /// Adds a credential to the consumer called `name` (a key rotation's first step).
    pub fn add_credential(&self, name: &str, credential: Credential) -> Result<(), LoadError> {
        self.modify(name, |c| c.credentials.push(credential))
    }

    /// Removes the credential with key id `kid`, whichever consumer holds it (a key
    /// rotation's last step); returns whether it existed.
    pub fn remove_credential(&self, kid: &str) -> bool {
        let Some(owner) = self.snapshot().by_kid.get(kid).map(|(c, _)| c.name.clone()) else {
            return false;
        };
        self.modify(&owner, |c| c.credentials.retain(|k| k.kid() != Some(kid)))
            .is_ok()
    }

    /// Replaces, in one step, the credentials of the consumer called `name`
    /// whose key ids are in `remove` with `add` (a refreshed remote key set:
    /// the keys it served last time out, the keys it serves now in). On error
    /// (no such consumer, a `kid` another consumer holds) the store is left
    /// as it was.
    pub fn replace_credentials(
        &self,
        name: &str,
        remove: &[String],
        add: Vec<Credential>,
    ) -> Result<(), LoadError> {
        self.modify(name, |c| {
            c.credentials
                .retain(|k| !k.kid().is_some_and(|kid| remove.iter().any(|r| r == kid)));
            c.credentials.extend(add);
        })
    }

    /// Every consumer, in no particular order.
    pub fn consumers(&self) -> Vec<Arc<Consumer>> {
        self.snapshot().by_name.values().cloned().collect()
    }

    /// The consumer called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Consumer>> {
        self.snapshot().by_name.get(name).cloned()
    }

    /// The number of consumers.
    pub fn len(&self) -> usize {
        self.snapshot().by_name.len()
    }

    /// Whether the store holds no consumer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A counter bumped by every change; cached verifications from an older generation
    /// are discarded.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn snapshot(&self) -> Arc<ConsumerTable> {
        Arc::clone(&self.table.read())
    }

    fn modify(&self, name: &str, f: impl FnOnce(&mut Consumer)) -> Result<(), LoadError> {
        self.edit(|all| {
            let consumer = all
                .iter_mut()
                .find(|c| c.name == name)
                .ok_or_else(|| not_found(name))?;
            f(consumer);
            Ok(())
        })
    }

    /// Applies `f` to a copy of every consumer and swaps in the result, under the write
    /// lock so that two edits never lose one another.
    fn edit(
        &self,
        f: impl FnOnce(&mut Vec<Consumer>) -> Result<(), LoadError>,
    ) -> Result<(), LoadError> {
        let mut guard = self.table.write();
        let mut all: Vec<Consumer> = guard.by_name.values().map(|c| Consumer::clone(c)).collect();
        f(&mut all)?;
        *guard = Arc::new(ConsumerTable::build(all)?);
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    fn swap(&self, table: ConsumerTable) {
        *self.table.write() = Arc::new(table);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

fn not_found(name: &str) -> LoadError {
    LoadError::Invalid(format!("no consumer called {name}"))
}

// === ConsumerTable ===

impl ConsumerTable {
    fn build(consumers: Vec<Consumer>) -> Result<Self, LoadError> {
        let mut table = Self::default();
        for consumer in consumers {
            let consumer = Arc::new(consumer);
            if table
                .by_name
                .insert(consumer.name.clone(), Arc::clone(&consumer))
                .is_some()
            {
                return Err(LoadError::Invalid(format!(
                    "two consumers named {}",
                    consumer.name
                )));
            }
            if table
                .by_key
                .insert(consumer.key.clone(), Arc::clone(&consumer))
                .is_some()
            {
                return Err(LoadError::Invalid(format!(
                    "two consumers with key {}",
                    consumer.key
                )));
            }
            for (i, credential) in consumer.credentials.iter().enumerate() {
                let Some(kid) = credential.kid() else {
                    continue;
                };
                match table.by_kid.entry(kid.to_owned()) {
                    Entry::Occupied(_) => {
                        return Err(LoadError::Invalid(format!(
                            "two credentials with kid {kid}"
                        )));
                    }
                    Entry::Vacant(slot) => {
                        slot.insert((Arc::clone(&consumer), i));
                    }
                }
            }
        }
        Ok(table)
    }

    /// The consumer whose key claim value is `key`.
    pub(crate) fn by_key(&self, key: &str) -> Option<&Arc<Consumer>> {
        self.by_key.get(key)
    }

    /// The consumer named `name` (a scan: for rare look-ups by identity).
    pub(crate) fn by_name(&self, name: &str) -> Option<&Arc<Consumer>> {
        self.by_key.values().find(|c| c.name == name)
    }

    /// The consumer holding the credential with key id `kid`, and that credential.
    pub(crate) fn by_kid(&self, kid: &str) -> Option<(&Arc<Consumer>, &Credential)> {
        let (consumer, i) = self.by_kid.get(kid)?;
        consumer
            .credentials
            .get(*i)
            .map(|credential| (consumer, credential))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::algorithm::Algorithm;

    fn key(kid: &str) -> Credential {
        Credential::hmac(Algorithm::HS256, &[9; 32])
            .expect("valid")
            .with_kid(kid)
    }

    #[test]
    fn refuses_duplicate_names_keys_and_kids() {
        let dup_name = vec![Consumer::new("a"), Consumer::new("a").with_key("b")];
        assert!(ConsumerStore::with_consumers(dup_name).is_err());
        let dup_key = vec![Consumer::new("a"), Consumer::new("b").with_key("a")];
        assert!(ConsumerStore::with_consumers(dup_key).is_err());
        let dup_kid = vec![
            Consumer::new("a").with_credential(key("k")),
            Consumer::new("b").with_credential(key("k")),
        ];
        assert!(ConsumerStore::with_consumers(dup_kid).is_err());
    }

    #[test]
    fn every_change_bumps_the_generation() {
        let store = ConsumerStore::with_consumers(vec![Consumer::new("a")]).expect("valid");
        let g0 = store.generation();
        assert!(store.set_enabled("a", false));
        assert!(store.generation() > g0);
        let g1 = store.generation();
        store.add_credential("a", key("k1")).expect("added");
        assert!(store.generation() > g1);
        let g2 = store.generation();
        assert!(store.remove_credential("k1"));
        assert!(store.generation() > g2);
    }

    #[test]
    fn a_failed_edit_leaves_the_store_and_generation_alone() {
        let store = ConsumerStore::with_consumers(vec![
            Consumer::new("a").with_credential(key("k")),
            Consumer::new("b"),
        ])
        .expect("valid");
        let g = store.generation();
        assert!(store.add_credential("b", key("k")).is_err());
        assert!(!store.set_enabled("nobody", false));
        assert_eq!(store.generation(), g);
        assert!(store.get("b").expect("present").credentials.is_empty());
    }

    #[test]
    fn replacing_credentials_swaps_the_named_kids_only() {
        let store = ConsumerStore::with_consumers(vec![
            Consumer::new("a")
                .with_credential(key("own"))
                .with_credential(key("r1")),
            Consumer::new("b").with_credential(key("taken")),
        ])
        .expect("valid");
        store
            .replace_credentials("a", &["r1".into()], vec![key("r2")])
            .expect("replaced");
        let kids: Vec<_> = store
            .get("a")
            .expect("present")
            .credentials
            .iter()
            .filter_map(|c| c.kid().map(str::to_owned))
            .collect();
        assert_eq!(kids, ["own", "r2"]);
        assert!(
            store
                .replace_credentials("a", &[], vec![key("taken")])
                .is_err()
        );
        assert_eq!(store.get("a").expect("present").credentials.len(), 2);
    }

    #[test]
    fn kid_lookup_finds_the_owner_and_the_credential() {
        let store =
            ConsumerStore::with_consumers(vec![Consumer::new("a").with_credential(key("k"))])
                .expect("valid");
        let table = store.snapshot();
        let (owner, credential) = table.by_kid("k").expect("present");
        assert_eq!(owner.name, "a");
        assert_eq!(credential.kid(), Some("k"));
        assert!(table.by_kid("../../etc/passwd").is_none());
    }
}
