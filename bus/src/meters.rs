//! The metric handles a router records on every message, registered once.
//!
//! The `metrics` macros look a series up by name and labels in the recorder
//! on each use (a key built, hashed and found in a sharded map); on the
//! gate's path that was a lookup per stage, eight per message, and four more
//! per call on its way back. A router registers its handles when it starts,
//! after `serve` has installed the Prometheus recorder, and records into
//! them directly.
//!
//! Stages are timed on [`Instant`], quanta's clock (the exporter's own): it
//! reads the CPU's time-stamp counter where that is invariant, about 10 ns,
//! where the system clock took 60–70 ns through the vDSO on this project's
//! machines, nine times a message.

use std::cell::Cell;

/// The clock the stages are timed on.
pub use quanta::Instant;

use metrics::{Counter, Gauge, Histogram};

use crate::events::{
    Entry, HELD_CALLS, HELD_CALLS_TOTAL, MESSAGES_TOTAL, REPLIES_TOTAL, STAGE_SECONDS,
};

/// A timed step of a message's way through the router: the `stage` label of
/// [`STAGE_SECONDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimedStage {
    /// Limits, forged headers, `reply_to`.
    Sanitize,
    /// The caller's credential.
    Authenticate,
    /// The access policy.
    Authorize,
    /// The registry lookup.
    Resolve,
    /// Codecs and schema mappings.
    Translate,
    /// Identity headers, assertion, reply context.
    Stamp,
    /// The central auth service's answer (central mode only).
    Introspect,
    /// The publish to the service and the broker's confirm.
    Deliver,
}

impl TimedStage {
    /// Every stage, in the order of the path.
    pub const ALL: [Self; 8] = [
        Self::Sanitize,
        Self::Authenticate,
        Self::Authorize,
        Self::Resolve,
        Self::Translate,
        Self::Stamp,
        Self::Introspect,
        Self::Deliver,
    ];

    /// The stable label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sanitize => "sanitize",
            Self::Authenticate => "authenticate",
            Self::Authorize => "authorize",
            Self::Resolve => "resolve",
            Self::Translate => "translate",
            Self::Stamp => "stamp",
            Self::Introspect => "introspect",
            Self::Deliver => "deliver",
        }
    }
}

/// The per-message series of one router: the stage histograms, the
/// delivered counters per entry, and what every answered call records (its
/// reply forwarded, its hold ended by the reply, the calls held). The rarer
/// outcomes are counted through [`crate::events`].
pub struct MessageMeters {
    stages: [Histogram; TimedStage::ALL.len()],
    delivered: [Counter; Entry::ALL.len()],
    /// [`REPLIES_TOTAL`] `{outcome="forwarded"}`.
    forwarded: Counter,
    /// [`HELD_CALLS_TOTAL`] `{ended="replied"}`.
    held_replied: Counter,
    /// [`HELD_CALLS`].
    held: Gauge,
}

impl MessageMeters {
    /// Registers the handles with the recorder installed now (a recorder
    /// installed later does not see them).
    pub fn register() -> Self {
        Self {
            stages: TimedStage::ALL
                .map(|stage| metrics::histogram!(STAGE_SECONDS, "stage" => stage.as_str())),
            delivered: Entry::ALL.map(|entry| {
                metrics::counter!(
                    MESSAGES_TOTAL, "outcome" => "delivered", "code" => "ok", "entry" => entry.as_str()
                )
            }),
            forwarded: metrics::counter!(REPLIES_TOTAL, "outcome" => "forwarded"),
            held_replied: metrics::counter!(HELD_CALLS_TOTAL, "ended" => "replied"),
            held: metrics::gauge!(HELD_CALLS),
        }
    }

    /// Records `stage` as having taken the time since `started`.
    pub fn record_since(&self, stage: TimedStage, started: Instant) {
        self.stages[stage as usize].record(started.elapsed().as_secs_f64());
    }

    /// Starts timing consecutive stages, the first from now.
    pub fn lap(&self) -> Lap<'_> {
        Lap {
            meters: self,
            since: Cell::new(Instant::now()),
        }
    }

    /// Counts a message delivered through `entry`.
    pub fn delivered(&self, entry: Entry) {
        self.delivered[entry as usize].increment(1);
    }

    /// Counts a reply forwarded to its caller.
    pub fn reply_forwarded(&self) {
        self.forwarded.increment(1);
    }

    /// Counts a hold ended by its reply.
    pub fn held_replied(&self) {
        self.held_replied.increment(1);
    }

    /// Records how many calls the router holds now.
    pub fn held_now(&self, held: usize) {
        self.held.set(held as f64);
    }
}

/// Times stages that run one after the other: each lap ends where the next
/// begins, one clock read per stage.
pub struct Lap<'m> {
    meters: &'m MessageMeters,
    since: Cell<Instant>,
}

impl Lap<'_> {
    /// Runs `step` as `stage`, recording the time since the previous lap
    /// ended (or the lap started) up to the end of `step`.
    pub fn time<T>(&self, stage: TimedStage, step: impl FnOnce() -> T) -> T {
        let out = step();
        let now = Instant::now();
        self.meters.stages[stage as usize].record((now - self.since.get()).as_secs_f64());
        self.since.set(now);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::events::prometheus_builder;

    #[test]
    fn every_stage_has_its_own_index_in_path_order() {
        for (index, stage) in TimedStage::ALL.into_iter().enumerate() {
            assert_eq!(stage as usize, index, "{stage:?}");
        }
        for (index, entry) in Entry::ALL.into_iter().enumerate() {
            assert_eq!(entry as usize, index, "{entry:?}");
        }
    }

    /// The value of the series `line_start` in Prometheus `text`.
    fn value(text: &str, line_start: &str) -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("no `{line_start}` in:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    #[test]
    fn handles_registered_with_a_recorder_record_into_it_by_stage_and_entry() {
        let recorder = prometheus_builder().unwrap().build_recorder();
        let handle = recorder.handle();
        let meters = metrics::with_local_recorder(&recorder, MessageMeters::register);

        let lap = meters.lap();
        let answer = lap.time(TimedStage::Sanitize, || {
            std::thread::sleep(Duration::from_millis(2));
            7
        });
        assert_eq!(answer, 7, "a lap hands back what its step returns");
        lap.time(TimedStage::Authenticate, || ());
        meters.record_since(TimedStage::Deliver, Instant::now());
        meters.delivered(Entry::Amqp);
        meters.delivered(Entry::Amqp);
        meters.delivered(Entry::Http);

        let text = handle.render();
        let count = |stage: &str| {
            value(
                &text,
                &format!("{STAGE_SECONDS}_count{{stage=\"{stage}\"}}"),
            )
        };
        assert_eq!(count("sanitize"), 1.0);
        assert_eq!(count("authenticate"), 1.0);
        assert_eq!(count("deliver"), 1.0);
        assert_eq!(count("stamp"), 0.0, "registered, never recorded");
        let sanitize = value(&text, &format!("{STAGE_SECONDS}_sum{{stage=\"sanitize\"}}"));
        assert!(
            sanitize >= 0.002,
            "the step's own time is in its lap: {sanitize}"
        );
        let delivered = |entry: &str| {
            value(
                &text,
                &format!("{MESSAGES_TOTAL}{{outcome=\"delivered\",code=\"ok\",entry=\"{entry}\"}}"),
            )
        };
        assert_eq!((delivered("amqp"), delivered("http")), (2.0, 1.0));
    }

    #[test]
    fn an_answered_call_counts_its_reply_and_its_hold_and_sets_the_calls_held() {
        let recorder = prometheus_builder().unwrap().build_recorder();
        let handle = recorder.handle();
        let meters = metrics::with_local_recorder(&recorder, MessageMeters::register);

        meters.held_now(3);
        meters.reply_forwarded();
        meters.held_replied();
        meters.held_now(2);

        let text = handle.render();
        assert_eq!(
            value(&text, &format!("{REPLIES_TOTAL}{{outcome=\"forwarded\"}}")),
            1.0
        );
        assert_eq!(
            value(&text, &format!("{HELD_CALLS_TOTAL}{{ended=\"replied\"}}")),
            1.0
        );
        assert_eq!(
            value(&text, &format!("{HELD_CALLS} ")),
            2.0,
            "the last count set"
        );
    }
}
