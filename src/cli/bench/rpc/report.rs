//! Summarising `bench rpc`: the median of each figure over the slices, and
//! each scenario against the baseline's slice beside it in each round.

use serde_json::{Value, json};

use crate::cli::bench::{
    rounds::Pair,
    stats::{median, median_of, round_to},
};

/// What one slice of one scenario measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Figures {
    /// Successful calls per second at `--in-flight` calls in flight.
    pub(crate) calls_per_s: f64,
    /// Latency percentiles at one call in flight (ms).
    pub(crate) p50_ms: Option<f64>,
    /// 99th percentile at one call in flight (ms).
    pub(crate) p99_ms: Option<f64>,
    /// 99.9th percentile at one call in flight (ms).
    pub(crate) p999_ms: Option<f64>,
    /// Median latency at `--in-flight` calls in flight (ms).
    pub(crate) p50_loaded_ms: Option<f64>,
    /// Calls that failed or timed out (warm-up included).
    pub(crate) failures: u64,
    /// The token pool ran out before the time was up.
    pub(crate) pool_exhausted: bool,
    /// CPU the gate process spent per call at `--in-flight` calls in
    /// flight (µs; request and reply), where `/proc` tells.
    pub(crate) gate_cpu_us_per_call: Option<f64>,
}

/// One scenario over every round.
#[derive(Debug, Clone)]
pub(crate) struct Summary {
    /// The scenario's name.
    pub(crate) name: &'static str,
    /// Every slice's figures (the baseline's: one beside each other
    /// scenario in each round).
    slices: Vec<Figures>,
    /// Calls/s per round (the baseline's: the median of its slices in it).
    round_rates: Vec<f64>,
    /// Per round, against the baseline's slice beside it (empty for the
    /// baseline itself).
    beside: Vec<Beside>,
    /// Peak resident memory of the gate process over the run (MB).
    pub(crate) peak_rss_mb: Option<f64>,
    /// Messages the relay could not deliver over the run (the relay only).
    pub(crate) relay_failures: Option<u64>,
}

/// One slice against the baseline's slice beside it.
#[derive(Debug, Clone, Copy)]
struct Beside {
    /// Its calls/s over the baseline's.
    ratio: f64,
    /// Its p50 at one call in flight minus the baseline's (ms).
    p50_added_ms: Option<f64>,
}

impl Summary {
    /// The baseline, from its slices of each round.
    pub(crate) fn baseline(name: &'static str, rounds: Vec<Vec<Figures>>) -> Self {
        let round_rates = rounds
            .iter()
            .filter_map(|slices| median(&slices.iter().map(|f| f.calls_per_s).collect::<Vec<_>>()))
            .collect();
        Self {
            name,
            slices: rounds.into_iter().flatten().collect(),
            round_rates,
            beside: Vec::new(),
            peak_rss_mb: None,
            relay_failures: None,
        }
    }

    /// A scenario, from its pairs with the baseline in each round.
    pub(crate) fn paired(name: &'static str, pairs: Vec<Pair<Figures>>) -> Self {
        let beside = pairs
            .iter()
            .map(|p| Beside {
                ratio: p.scenario.calls_per_s / p.baseline.calls_per_s,
                p50_added_ms: p.scenario.p50_ms.zip(p.baseline.p50_ms).map(|(s, b)| s - b),
            })
            .collect();
        Self {
            name,
            round_rates: pairs.iter().map(|p| p.scenario.calls_per_s).collect(),
            slices: pairs.into_iter().map(|p| p.scenario).collect(),
            beside,
            peak_rss_mb: None,
            relay_failures: None,
        }
    }

    fn median(&self, figure: impl Fn(&Figures) -> Option<f64>) -> Option<f64> {
        median_of(self.slices.iter().map(figure))
    }

    /// Against the baseline: the median of the ratios and of the added p50
    /// within each round's pair; 1 and 0 for the baseline itself.
    fn against_baseline(&self) -> (Option<f64>, Option<f64>) {
        if self.beside.is_empty() {
            return (Some(1.0), Some(0.0));
        }
        let ratios: Vec<f64> = self.beside.iter().map(|b| b.ratio).collect();
        let added = median_of(self.beside.iter().map(|b| b.p50_added_ms));
        (median(&ratios).filter(|r| r.is_finite()), added)
    }
}

/// One JSON object per scenario: medians over the slices, the ratio of
/// calls/s and the added p50 against the baseline (medians over the
/// rounds' pairs), and `settings`.
pub(crate) fn lines(summaries: &[Summary], settings: &Value) -> Vec<Value> {
    let ms = |v: Option<f64>| v.map(|v| round_to(v, 3));
    summaries
        .iter()
        .map(|s| {
            let rate = median(&s.round_rates);
            let (ratio, added) = s.against_baseline();
            let mut line = json!({
                "scenario": s.name,
                "calls_per_s": rate.map(f64::round),
                "p50_ms": ms(s.median(|f| f.p50_ms)),
                "p99_ms": ms(s.median(|f| f.p99_ms)),
                "p999_ms": ms(s.median(|f| f.p999_ms)),
                "p50_loaded_ms": ms(s.median(|f| f.p50_loaded_ms)),
                "ratio_vs_raw_relay": ratio.map(|r| round_to(r, 3)),
                "p50_added_ms": ms(added),
                "router_peak_rss_mb": s.peak_rss_mb.map(|mb| round_to(mb, 1)),
                "gate_cpu_us_per_call": s.median(|f| f.gate_cpu_us_per_call).map(|us| round_to(us, 1)),
                "failures": s.slices.iter().map(|f| f.failures).sum::<u64>(),
                "relay_failures": s.relay_failures,
                "token_pool_exhausted": s.slices.iter().any(|f| f.pool_exhausted),
                "rounds_calls_per_s": s.round_rates.iter().map(|r| r.round()).collect::<Vec<_>>(),
            });
            if let Some(line) = line.as_object_mut() {
                if !s.beside.is_empty() {
                    let ratios = s.beside.iter().map(|b| round_to(b.ratio, 3));
                    line.insert("rounds_ratio".into(), ratios.collect::<Vec<_>>().into());
                }
                if let Some(settings) = settings.as_object() {
                    line.extend(settings.clone());
                }
            }
            line
        })
        .collect()
}

/// Prints `lines` as JSON lines or as a table.
pub(crate) fn print(lines: &[Value], as_json: bool) {
    if as_json {
        for line in lines {
            println!("{line}");
        }
        return;
    }
    let columns = [
        ("scenario", "scenario"),
        ("calls_per_s", "calls/s"),
        ("ratio_vs_raw_relay", "ratio"),
        ("p50_ms", "p50 ms"),
        ("p99_ms", "p99 ms"),
        ("p999_ms", "p99.9 ms"),
        ("p50_loaded_ms", "p50@N ms"),
        ("p50_added_ms", "+p50 ms"),
        ("router_peak_rss_mb", "rss MB"),
        ("gate_cpu_us_per_call", "gate µs"),
        ("failures", "failed"),
    ];
    let row = |cells: Vec<String>| {
        let (first, rest) = cells
            .split_first()
            .map_or(("", &[][..]), |(f, r)| (f.as_str(), r));
        let rest: Vec<String> = rest.iter().map(|c| format!("{c:>10}")).collect();
        println!("{first:<20} {}", rest.join(" "));
    };
    row(columns
        .iter()
        .map(|(_, title)| (*title).to_owned())
        .collect());
    for line in lines {
        row(columns
            .iter()
            .map(|(key, _)| match &line[key] {
                Value::String(s) => s.clone(),
                Value::Null => "-".to_owned(),
                other => other.to_string(),
            })
            .collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(calls_per_s: f64, p50_ms: f64) -> Figures {
        Figures {
            calls_per_s,
            p50_ms: Some(p50_ms),
            failures: 1,
            ..Figures::default()
        }
    }

    #[test]
    fn scenarios_are_compared_with_the_baseline_slice_beside_them() {
        let baseline = Summary::baseline(
            "raw_relay",
            vec![
                vec![round(1000.0, 1.0), round(3000.0, 3.0)],
                vec![round(2000.0, 2.0), round(2000.0, 2.0)],
                vec![round(500.0, 1.0), round(1500.0, 1.0)],
            ],
        );
        let pair = |baseline, scenario| Pair { baseline, scenario };
        let router = Summary::paired(
            "gateway_cached",
            vec![
                pair(round(1000.0, 1.0), round(900.0, 1.5)),
                pair(round(3000.0, 3.0), round(1500.0, 3.0)),
                pair(round(2000.0, 2.0), round(2000.0, 2.25)),
            ],
        );
        let lines = lines(&[baseline, router], &json!({"in_flight": 64}));
        assert_eq!(lines[0]["ratio_vs_raw_relay"], 1.0);
        assert_eq!(lines[0]["p50_added_ms"], 0.0);
        assert_eq!(
            lines[0]["rounds_calls_per_s"],
            json!([2000.0, 2000.0, 1000.0])
        );
        assert_eq!(lines[0]["failures"], 6);
        assert!(lines[0].get("rounds_ratio").is_none());
        // Ratios within the pairs 0.9, 0.5, 1.0; added p50 0.5, 0, 0.25.
        assert_eq!(lines[1]["ratio_vs_raw_relay"], 0.9);
        assert_eq!(lines[1]["rounds_ratio"], json!([0.9, 0.5, 1.0]));
        assert_eq!(lines[1]["p50_added_ms"], 0.25);
        assert_eq!(lines[1]["calls_per_s"], 1500.0);
        assert_eq!(lines[1]["failures"], 3);
        assert_eq!(lines[1]["in_flight"], 64);
        assert_eq!(
            lines[1]["rounds_calls_per_s"],
            json!([900.0, 1500.0, 2000.0])
        );
    }
}
