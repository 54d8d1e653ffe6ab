//! Summarising throughput bench rounds: medians and ratios against the
//! baseline (within the pairs of a paired run, else of the medians).

use serde_json::json;

use super::{
    cpu::PerMessage,
    stats::{self, median},
};

/// Throughput of one scenario over all rounds.
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    /// Messages per second, one per round.
    pub(crate) rates: Vec<f64>,
    /// Per round, the rate over the baseline's rate in the slice beside it
    /// (empty unless the run was paired, and for the baseline).
    pub(crate) paired_ratios: Vec<f64>,
    /// Peak resident memory (MB) of the scenario's gate process, per round
    /// (empty where the scenario has no process of its own).
    pub(crate) peak_rss_mb: Vec<f64>,
    /// CPU per message of the gate and of the bench, per round
    /// (empty where not read).
    pub(crate) cpu: Vec<PerMessage>,
    /// Messages that did not arrive, over all rounds (`None`: not counted).
    pub(crate) failures: Option<u64>,
    /// Messages the relay counted as not delivered, over all rounds (the relay only).
    pub(crate) relay_failures: Option<u64>,
    /// Messages the gate refused into its bus's dead-letter queue over the
    /// whole run (`None`: not counted): a refused message did not arrive,
    /// but it is not lost.
    pub(crate) dead_letters: Option<u64>,
}

impl Scenario {
    /// A scenario with no round yet.
    pub(crate) fn new(name: &'static str) -> Self {
        Self {
            name,
            rates: Vec::new(),
            paired_ratios: Vec::new(),
            peak_rss_mb: Vec::new(),
            cpu: Vec::new(),
            failures: None,
            relay_failures: None,
            dead_letters: None,
        }
    }

    /// The median rate over the rounds (0 without rounds).
    pub(crate) fn median(&self) -> f64 {
        median(&self.rates).unwrap_or(0.0)
    }

    /// Against the baseline's median rate `base`: the median of the paired
    /// ratios when the run was paired, else the ratio of the medians.
    fn ratio(&self, base: f64) -> f64 {
        match median(&self.paired_ratios) {
            Some(paired) => paired,
            None if base > 0.0 => self.median() / base,
            None => f64::NAN,
        }
    }

    /// The median over the rounds of one party's CPU per message (µs, one
    /// decimal), `None` where no round read it.
    fn cpu_us(&self, party: impl Fn(&PerMessage) -> Option<f64>) -> Option<f64> {
        let rounds: Vec<f64> = self.cpu.iter().filter_map(party).collect();
        median(&rounds).map(|us| stats::round_to(us, 1))
    }

    /// Adds `n` messages that did not arrive.
    pub(crate) fn fail(&mut self, n: u64) {
        self.failures = Some(self.failures.unwrap_or(0) + n);
    }

    /// Adds `n` messages the relay could not deliver.
    pub(crate) fn fail_in_relay(&mut self, n: u64) {
        self.relay_failures = Some(self.relay_failures.unwrap_or(0) + n);
    }
}

/// The run's settings, printed with every scenario.
pub(crate) fn settings(args: &super::TransportArgs) -> serde_json::Value {
    json!({
        "payload_bytes": args.common.size,
        "window": args.window,
        "prefetch": args.common.prefetch,
        "router_threads": args.common.router_threads,
        "duration_s": args.common.duration.as_secs_f64(),
        "rounds": args.common.rounds.max(1),
    })
}

/// Prints every scenario with its ratio to `baseline`, as JSON lines or a table.
pub(crate) fn print(
    scenarios: &[Scenario],
    baseline: &str,
    extra: &serde_json::Value,
    as_json: bool,
) {
    let base = scenarios
        .iter()
        .find(|s| s.name == baseline)
        .map_or(0.0, Scenario::median);
    let ratio_key = format!("ratio_vs_{baseline}");
    if !as_json {
        println!(
            "{:<24} {:>8} {:>9} {:>7} {:>8} {:>9} {:>10} {:>7}   rounds (msg/s)",
            "scenario", "msg/s", "ratio", "rss MB", "gate µs", "bench µs", "broker µs", "failed"
        );
    }
    for s in scenarios {
        let median = s.median();
        let ratio = s.ratio(base);
        let rss = stats::median(&s.peak_rss_mb).map(|mb| stats::round_to(mb, 1));
        let cpu = [
            ("gate_cpu_us_per_msg", s.cpu_us(|c| c.gate_us)),
            ("bench_cpu_us_per_msg", s.cpu_us(|c| c.bench_us)),
            ("broker_cpu_us_per_msg", s.cpu_us(|c| c.broker_us)),
        ];
        if as_json {
            let mut line = json!({
                "scenario": s.name,
                "msgs_per_s": median.round(),
                ratio_key.clone(): stats::round_to(ratio, 3),
                "rounds_msgs_per_s": s.rates.iter().map(|r| r.round()).collect::<Vec<_>>(),
            });
            if let Some(line) = line.as_object_mut() {
                if !s.paired_ratios.is_empty() {
                    let ratios = s.paired_ratios.iter().map(|r| stats::round_to(*r, 3));
                    line.insert("rounds_ratio".into(), ratios.collect::<Vec<_>>().into());
                }
                if let Some(rss) = rss {
                    line.insert("peak_rss_mb".into(), rss.into());
                }
                for (key, us) in cpu {
                    if let Some(us) = us {
                        line.insert(key.into(), us.into());
                    }
                }
                if let Some(failures) = s.failures {
                    line.insert("failures".into(), failures.into());
                }
                if let Some(failures) = s.relay_failures {
                    line.insert("relay_failures".into(), failures.into());
                }
                if let Some(dead) = s.dead_letters {
                    line.insert("dead_letters".into(), dead.into());
                }
                if let Some(extra) = extra.as_object() {
                    line.extend(extra.clone());
                }
            }
            println!("{line}");
        } else {
            let rounds: Vec<String> = s.rates.iter().map(|r| format!("{r:.0}")).collect();
            let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
            let [gate, bench, broker] = cpu.map(|(_, us)| or_dash(us.map(|us| format!("{us:.1}"))));
            println!(
                "{:<24} {:>8.0} {:>8.3}x {:>7} {:>8} {:>9} {:>10} {:>7}   {}",
                s.name,
                median,
                ratio,
                or_dash(rss.map(|mb| format!("{mb:.1}"))),
                gate,
                bench,
                broker,
                or_dash(s.failures.map(|f| f.to_string())),
                rounds.join(" ")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paired_run_compares_within_its_pairs() {
        let mut relay = Scenario::new("raw_relay");
        relay.rates = vec![1000.0, 2000.0, 3000.0];
        let mut router = Scenario::new("router_gateway");
        // Each round beside a relay slice of its own: 0.9, 1.0, 0.5.
        router.rates = vec![900.0, 2000.0, 1500.0];
        router.paired_ratios = vec![0.9, 1.0, 0.5];
        assert_eq!(router.ratio(relay.median()), 0.9);
        // Unpaired, the medians: 1500 / 2000.
        router.paired_ratios.clear();
        assert_eq!(router.ratio(relay.median()), 0.75);
        assert!(router.ratio(0.0).is_nan());
    }
}
