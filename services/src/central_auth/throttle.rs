//! Failed logins slow down further attempts, per account and per source.
//!
//! After the n-th failure in a row of a key (an account, or a source), the
//! key is blocked for `base × 2^(n-1)`, at most `max`. An attempt while a key
//! is blocked is refused at once (`login_throttled`, with the wait) without
//! its password being checked, and does not count as a failure: an attacker
//! gets at most one guess per block, and cannot stretch a block. So the real
//! user's correct password is accepted again at most `max` after the last
//! counted failure. A success clears the account's and the source's strikes.
//!
//! The state is per instance (several instances throttle independently).

use std::{collections::HashMap, time::Duration};

use parking_lot::Mutex;
use tokio::time::Instant;

/// Most keys remembered; past it, keys idle longer than `max` are dropped.
const MAX_KEYS: usize = 100_000;

/// Exponential back-off of failed logins.
#[derive(Debug)]
pub struct LoginThrottle {
    base: Duration,
    max: Duration,
    strikes: Mutex<HashMap<String, Strikes>>,
}

#[derive(Debug, Clone, Copy)]
struct Strikes {
    failures: u32,
    blocked_until: Instant,
}

impl LoginThrottle {
    /// A throttle blocking `base` after a first failure, doubling up to `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max: max.max(base),
            strikes: Mutex::new(HashMap::new()),
        }
    }

    /// The longest block: how long a correct password may have to wait.
    pub fn max_delay(&self) -> Duration {
        self.max
    }

    /// `Err(wait)` when any of `keys` is blocked now.
    pub fn check(&self, keys: &[&str]) -> Result<(), Duration> {
        let now = Instant::now();
        let strikes = self.strikes.lock();
        let wait = keys
            .iter()
            .filter_map(|k| strikes.get(*k))
            .map(|s| s.blocked_until.saturating_duration_since(now))
            .max()
            .unwrap_or_default();
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    /// Records a failure for each of `keys`.
    pub fn failed(&self, keys: &[&str]) {
        let now = Instant::now();
        let mut strikes = self.strikes.lock();
        if strikes.len() >= MAX_KEYS {
            let max = self.max;
            strikes.retain(|_, s| now.saturating_duration_since(s.blocked_until) < max);
        }
        for key in keys {
            let entry = strikes.entry((*key).to_owned()).or_insert(Strikes {
                failures: 0,
                blocked_until: now,
            });
            entry.failures = entry.failures.saturating_add(1);
            entry.blocked_until = now + self.delay(entry.failures);
        }
    }

    /// Clears `keys` (a successful login).
    pub fn succeeded(&self, keys: &[&str]) {
        let mut strikes = self.strikes.lock();
        for key in keys {
            strikes.remove(*key);
        }
    }

    /// The block after `failures` failures in a row.
    fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn failures_block_exponentially_up_to_the_bound() {
        let t = LoginThrottle::new(Duration::from_millis(100), Duration::from_millis(350));
        assert_eq!(t.check(&["user:ann"]), Ok(()));
        t.failed(&["user:ann", "source:x"]);
        assert_eq!(t.check(&["user:ann"]), Err(Duration::from_millis(100)));
        assert_eq!(t.check(&["source:x"]), Err(Duration::from_millis(100)));
        t.failed(&["user:ann"]);
        assert_eq!(t.check(&["user:ann"]), Err(Duration::from_millis(200)));
        t.failed(&["user:ann"]);
        t.failed(&["user:ann"]);
        assert_eq!(
            t.check(&["user:ann"]),
            Err(Duration::from_millis(350)),
            "capped"
        );
        tokio::time::advance(Duration::from_millis(350)).await;
        assert_eq!(t.check(&["user:ann"]), Ok(()), "free again after the bound");
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_clears_the_keys() {
        let t = LoginThrottle::new(Duration::from_millis(100), Duration::from_secs(1));
        t.failed(&["user:ann", "source:x"]);
        t.succeeded(&["user:ann", "source:x"]);
        assert_eq!(t.check(&["user:ann", "source:x"]), Ok(()));
        t.failed(&["user:ann"]);
        assert_eq!(
            t.check(&["user:ann"]),
            Err(Duration::from_millis(100)),
            "counts anew"
        );
    }
}
