//! The trust state one process runs with, applied to its verifiers'
//! revocations and consumer store.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use parking_lot::Mutex;
use tollgate_auth::{
    Consumer, ConsumerStore, InvalidChange, LoadError, Revocations, TrustEntry, TrustState,
};

/// Broadcast ids remembered, so a replay within the freshness window is ignored.
const SEEN_IDS: usize = 4096;

/// Puts a whole list of consumers into the consumer store: a router's remote
/// key sets' `install_consumers` (which keeps the keys fetched), or plainly
/// `ConsumerStore::replace_all`.
pub type Install = Box<dyn Fn(Vec<Consumer>) -> Result<(), LoadError> + Send + Sync>;

/// The trust state in force here, on top of the config's consumers.
pub struct LiveTrust {
    baseline: Mutex<Vec<Consumer>>,
    revocations: Arc<Revocations>,
    install: Install,
    state: Mutex<TrustState>,
    /// Entries recorded one by one so far (see [`LiveTrust::replace_loaded`]).
    recorded: AtomicU64,
    seen: Mutex<VecDeque<String>>,
}

impl std::fmt::Debug for LiveTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveTrust")
            .field("entries", &self.state.lock().len())
            .finish_non_exhaustive()
    }
}

impl LiveTrust {
    /// Trust over `consumers` (holding `baseline`, the config's consumers) and
    /// `revocations`, with nothing changed yet; consumers are replaced whole.
    pub fn new(
        baseline: Vec<Consumer>,
        revocations: Arc<Revocations>,
        consumers: Arc<ConsumerStore>,
    ) -> Self {
        Self::with_install(
            baseline,
            revocations,
            Box::new(move |all| consumers.replace_all(all)),
        )
    }

    /// Trust whose consumers are put in place by `install`.
    pub fn with_install(
        baseline: Vec<Consumer>,
        revocations: Arc<Revocations>,
        install: Install,
    ) -> Self {
        Self {
            baseline: Mutex::new(baseline),
            revocations,
            install,
            state: Mutex::new(TrustState::new()),
            recorded: AtomicU64::new(0),
            seen: Mutex::new(VecDeque::new()),
        }
    }

    /// The state in force.
    pub fn state(&self) -> TrustState {
        self.state.lock().clone()
    }

    /// Makes `state` the one in force (a load from Redis); nothing changes,
    /// and no cache is dropped, when it already is.
    pub fn replace(&self, state: TrustState) {
        let mut current = self.state.lock();
        if *current == state {
            return;
        }
        self.apply(&state, &self.baseline.lock());
        *current = state;
    }

    /// How many entries were recorded one by one so far; read it before a
    /// load from Redis and hand it to [`replace_loaded`](Self::replace_loaded).
    pub fn recorded(&self) -> u64 {
        self.recorded.load(Ordering::Acquire)
    }

    /// Makes `state`, loaded from Redis, the one in force, unless an entry
    /// was recorded since `recorded` was read (the load may predate it; the
    /// next load will not). Returns whether it did.
    pub fn replace_loaded(&self, state: TrustState, recorded: u64) -> bool {
        let mut current = self.state.lock();
        if self.recorded() != recorded {
            return false;
        }
        if *current != state {
            self.apply(&state, &self.baseline.lock());
            *current = state;
        }
        true
    }

    /// Makes `baseline` the consumers the changes apply on top of (a config
    /// reloaded) and installs them with the state in force: installing the
    /// new consumers directly would drop every consumer change. On error
    /// (the consumers cannot be installed) nothing changes.
    pub fn rebase(&self, baseline: Vec<Consumer>) -> Result<(), LoadError> {
        let current = self.state.lock();
        let mut old = self.baseline.lock();
        self.install_consumers(&current, &baseline)?;
        *old = baseline;
        Ok(())
    }

    /// Puts what `state` makes of `baseline` in force: the consumers, then
    /// the revocations. A consumer set that cannot be installed is logged,
    /// and the revocations still change.
    fn apply(&self, state: &TrustState, baseline: &[Consumer]) {
        if let Err(e) = self.install_consumers(state, baseline) {
            tracing::error!(error = %e, "The consumer changes of the trust state cannot be installed.");
        }
        self.revocations.replace_from(&state.revocations());
        tracing::info!(entries = state.len(), "Trust state applied.");
    }

    fn install_consumers(
        &self,
        state: &TrustState,
        baseline: &[Consumer],
    ) -> Result<(), LoadError> {
        let (consumers, problems) = state.consumers(baseline);
        for problem in problems {
            tracing::warn!(problem = %problem, "A trust change cannot be applied here.");
        }
        (self.install)(consumers)
    }

    /// Takes one entry in (a broadcast, or this router's own change), dropping
    /// entries expired at `now`.
    pub fn record(&self, entry: TrustEntry, now: u64) {
        // Under the lock: two entries taken at once (a broadcast, and this
        // router's own change) must not each replace the other's state.
        let mut current = self.state.lock();
        let mut next = current.clone();
        next.record(entry);
        next.sweep(now);
        self.recorded.fetch_add(1, Ordering::AcqRel);
        if *current != next {
            self.apply(&next, &self.baseline.lock());
            *current = next;
        }
    }

    /// Whether the broadcast `id` is new here (and remembers it).
    pub fn first_sight(&self, id: &str) -> bool {
        let mut seen = self.seen.lock();
        if seen.iter().any(|s| s == id) {
            return false;
        }
        if seen.len() == SEEN_IDS {
            seen.pop_front();
        }
        seen.push_back(id.to_owned());
        true
    }

    /// Checks that `entry` can be applied on top of the state in force: the
    /// consumer it names exists, a new key's `kid` is free, a removed key
    /// exists.
    pub fn check(&self, entry: &TrustEntry) -> Result<(), InvalidChange> {
        entry.change.validate()?;
        let (now, _) = self.state().consumers(&self.baseline.lock());
        let mut one = TrustState::new();
        one.record(entry.clone());
        match one.consumers(&now).1.into_iter().next() {
            Some(problem) => Err(InvalidChange(problem)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use tollgate_auth::TrustChange;

    use super::*;

    struct Fixture {
        live: LiveTrust,
        consumers: Arc<ConsumerStore>,
    }

    impl std::ops::Deref for Fixture {
        type Target = LiveTrust;
        fn deref(&self) -> &LiveTrust {
            &self.live
        }
    }

    fn live() -> Fixture {
        let baseline = vec![Consumer::new("web"), Consumer::new("ops")];
        let consumers = Arc::new(ConsumerStore::with_consumers(baseline.clone()).expect("valid"));
        let live = LiveTrust::new(
            baseline,
            Arc::new(Revocations::new()),
            Arc::clone(&consumers),
        );
        Fixture { live, consumers }
    }

    fn entry(change: TrustChange) -> TrustEntry {
        TrustEntry {
            change,
            expires_at: None,
        }
    }

    #[test]
    fn recording_applies_and_an_equal_state_changes_nothing() {
        let live = live();
        let disable = entry(TrustChange::DisableConsumer {
            consumer: "web".into(),
        });
        live.record(disable, 0);
        assert!(!live.consumers.get("web").expect("present").enabled);
        assert!(live.consumers.get("ops").expect("present").enabled);
        let generation = live.consumers.generation();
        live.replace(live.state());
        assert_eq!(live.consumers.generation(), generation);
    }

    #[test]
    fn a_new_baseline_keeps_the_changes_in_force() {
        let live = live();
        live.record(
            entry(TrustChange::DisableConsumer {
                consumer: "web".into(),
            }),
            0,
        );
        live.rebase(vec![Consumer::new("web"), Consumer::new("new")])
            .expect("installed");
        assert!(!live.consumers.get("web").expect("present").enabled);
        assert!(live.consumers.get("new").is_some());
        assert!(live.consumers.get("ops").is_none());
    }

    #[test]
    fn changes_naming_unknown_consumers_or_keys_are_refused() {
        let live = live();
        let ghost = entry(TrustChange::DisableConsumer {
            consumer: "ghost".into(),
        });
        assert!(live.check(&ghost).is_err());
        let missing = entry(TrustChange::RemoveCredential {
            consumer: None,
            kid: "nope".into(),
        });
        assert!(live.check(&missing).is_err());
        let revoke = entry(TrustChange::RevokeConsumer {
            consumer: "web".into(),
        });
        assert!(live.check(&revoke).is_ok());
    }

    #[test]
    fn entries_recorded_at_once_are_all_kept() {
        let live = Arc::new(live());
        let start = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (live, start) = (Arc::clone(&live), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    for j in 0..100 {
                        let jti = format!("t{i}-{j}");
                        live.record(entry(TrustChange::RevokeToken { jti, until: None }), 0);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("no panic");
        }
        assert_eq!(live.state().len(), 800);
    }

    #[test]
    fn a_load_older_than_a_recorded_entry_is_not_applied() {
        let live = live();
        let before = live.recorded();
        let revoke = entry(TrustChange::RevokeToken {
            jti: "t".into(),
            until: None,
        });
        live.record(revoke, 0);
        assert!(!live.replace_loaded(TrustState::new(), before));
        assert_eq!(live.state().len(), 1);
        assert!(live.replace_loaded(TrustState::new(), live.recorded()));
        assert!(live.state().is_empty());
    }

    #[test]
    fn a_broadcast_id_is_taken_once() {
        let live = live();
        assert!(live.first_sight("a"));
        assert!(!live.first_sight("a"));
        assert!(live.first_sight("b"));
    }
}
