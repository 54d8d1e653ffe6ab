//! Watches the difference between the router's clock and this service's, as
//! the bus assertions reveal it, so an operator sees a clock that drifts
//! before (or when) every message is refused as `not_from_bus`.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tollgate_auth::{AssertionCheck, AuthError};
use tollgate_bus::events;

/// Most one warning per this interval, however many messages show the skew.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(60);

/// How far ahead of this service's clock an `iat` may be before it counts
/// as skew: `iat` is in whole seconds, so in-sync clocks can read 1 s apart.
const TOLERATED_SECS: i64 = 1;

/// Records each clock reading and warns, at most once per [`WARN_EVERY`],
/// when one shows the clocks apart.
#[derive(Debug)]
pub(crate) struct SkewWatch {
    service: String,
    leeway: Duration,
    last_warning: Mutex<Option<Instant>>,
}

impl SkewWatch {
    /// A watch for `service`, whose assertion verifier allows `leeway`.
    pub(crate) fn new(service: String, leeway: Duration) -> Self {
        Self {
            service,
            leeway,
            last_warning: Mutex::new(None),
        }
    }

    /// Records what `check` says about the clocks: sets the
    /// `tollgate_clock_skew_seconds` gauge, and warns when the assertion's
    /// `iat` is ahead of this clock or the assertion expired.
    pub(crate) fn observe(&self, check: &AssertionCheck) {
        let Some(skew) = check.skew_secs else {
            return;
        };
        metrics::gauge!(events::CLOCK_SKEW_SECONDS, "service" => self.service.clone())
            .set(skew as f64);
        // Behind: `iat` in the future (the first check to fail may be the
        // maximum lifetime, `claims_invalid`). Ahead: the assertion expired.
        let behind = skew < -TOLERATED_SECS;
        let expired = matches!(check.outcome, Err(AuthError::TokenExpired));
        if (behind || expired) && self.may_warn(Instant::now()) {
            tracing::warn!(
                service = %self.service,
                skew_secs = skew,
                leeway_secs = self.leeway.as_secs(),
                refused = check.outcome.is_err(),
                code = check.outcome.as_ref().err().map_or("accepted", |e| e.code()),
                "Clock skew: this service's clock minus the bus assertion's issue time is \
                 {skew} s (negative: this clock is behind the router's; positive: ahead, \
                 or the message waited). Past the leeway, messages are refused as not_from_bus; \
                 synchronise the clocks (NTP) or raise the assertion leeway."
            );
        }
    }

    /// Whether a warning is due at `now`, and if so, records it.
    fn may_warn(&self, now: Instant) -> bool {
        let mut last = self.last_warning.lock();
        match *last {
            Some(at) if now.duration_since(at) < WARN_EVERY => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_at_most_once_per_interval() {
        let watch = SkewWatch::new("orders".into(), Duration::from_secs(5));
        let start = Instant::now();
        assert!(watch.may_warn(start));
        assert!(!watch.may_warn(start + Duration::from_secs(1)));
        assert!(!watch.may_warn(start + WARN_EVERY - Duration::from_millis(1)));
        assert!(watch.may_warn(start + WARN_EVERY));
    }
}
