//! Summarising `bench rpc`: the median of each figure over the rounds, and
//! each scenario against the baseline.

use serde_json::{Value, json};

use crate::cli::bench::stats::{median_of, round_to};

use super::scenario::BASELINE;

/// What one round of one scenario measured.
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
    /// Peak resident memory of the gate process (MB).
    pub(crate) peak_rss_mb: Option<f64>,
    /// Calls that failed or timed out (warm-up included).
    pub(crate) failures: u64,
    /// Messages the relay could not deliver (the relay only).
    pub(crate) relay_failures: Option<u64>,
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
    /// Each round's figures.
    pub(crate) rounds: Vec<Figures>,
}

impl Summary {
    fn median(&self, figure: impl Fn(&Figures) -> Option<f64>) -> Option<f64> {
        median_of(self.rounds.iter().map(figure))
    }

    fn calls_per_s(&self) -> Option<f64> {
        self.median(|f| Some(f.calls_per_s))
    }

    fn p50_ms(&self) -> Option<f64> {
        self.median(|f| f.p50_ms)
    }
}

/// One JSON object per scenario: medians over the rounds, the ratio of
/// calls/s and the added p50 against the baseline, and `settings`.
pub(crate) fn lines(summaries: &[Summary], settings: &Value) -> Vec<Value> {
    let base = summaries.iter().find(|s| s.name == BASELINE);
    let base_rate = base.and_then(Summary::calls_per_s).filter(|r| *r > 0.0);
    let base_p50 = base.and_then(Summary::p50_ms);
    let ms = |v: Option<f64>| v.map(|v| round_to(v, 3));
    summaries
        .iter()
        .map(|s| {
            let rate = s.calls_per_s();
            let relay_failures: Option<u64> = s.rounds.iter().map(|f| f.relay_failures).sum();
            let mut line = json!({
                "scenario": s.name,
                "calls_per_s": rate.map(f64::round),
                "p50_ms": ms(s.p50_ms()),
                "p99_ms": ms(s.median(|f| f.p99_ms)),
                "p999_ms": ms(s.median(|f| f.p999_ms)),
                "p50_loaded_ms": ms(s.median(|f| f.p50_loaded_ms)),
                "ratio_vs_raw_relay": rate.zip(base_rate).map(|(r, b)| round_to(r / b, 3)),
                "p50_added_ms": ms(s.p50_ms().zip(base_p50).map(|(p, b)| p - b)),
                "router_peak_rss_mb": s.median(|f| f.peak_rss_mb).map(|mb| round_to(mb, 1)),
                "gate_cpu_us_per_call": s.median(|f| f.gate_cpu_us_per_call).map(|us| round_to(us, 1)),
                "failures": s.rounds.iter().map(|f| f.failures).sum::<u64>(),
                "relay_failures": relay_failures,
                "token_pool_exhausted": s.rounds.iter().any(|f| f.pool_exhausted),
                "rounds_calls_per_s": s.rounds.iter().map(|f| f.calls_per_s.round()).collect::<Vec<_>>(),
            });
            if let (Some(line), Some(settings)) = (line.as_object_mut(), settings.as_object()) {
                line.extend(settings.clone());
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
    fn scenarios_are_compared_with_the_baseline_by_their_medians() {
        let summaries = [
            Summary {
                name: BASELINE,
                rounds: vec![round(1000.0, 1.0), round(3000.0, 3.0), round(2000.0, 2.0)],
            },
            Summary {
                name: "gateway_cached",
                rounds: vec![round(1500.0, 2.5), round(1000.0, 3.0), round(500.0, 9.0)],
            },
        ];
        let lines = lines(&summaries, &json!({"in_flight": 64}));
        assert_eq!(lines[0]["ratio_vs_raw_relay"], 1.0);
        assert_eq!(lines[0]["p50_added_ms"], 0.0);
        assert_eq!(lines[1]["calls_per_s"], 1000.0);
        assert_eq!(lines[1]["ratio_vs_raw_relay"], 0.5);
        assert_eq!(lines[1]["p50_added_ms"], 1.0);
        assert_eq!(lines[1]["failures"], 3);
        assert_eq!(lines[1]["in_flight"], 64);
        assert_eq!(
            lines[1]["rounds_calls_per_s"],
            json!([1500.0, 1000.0, 500.0])
        );
    }
}
