//! Summarising bench rounds: medians and ratios against the baseline.

use serde_json::json;

/// Throughput of one scenario over all rounds.
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) rates: Vec<f64>,
}

impl Scenario {
    /// A scenario with no round yet.
    pub(crate) fn new(name: &'static str) -> Self {
        Self {
            name,
            rates: Vec::new(),
        }
    }

    pub(crate) fn median(&self) -> f64 {
        let mut sorted = self.rates.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }
}

/// The run's settings, printed with every scenario.
pub(crate) fn settings(args: &super::TransportArgs) -> serde_json::Value {
    json!({
        "payload_bytes": args.size,
        "window": args.window,
        "prefetch": args.prefetch,
        "duration_s": args.duration.as_secs_f64(),
        "rounds": args.rounds.max(1),
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
            "{:<20} {:>12} {:>10}   rounds (msg/s)",
            "scenario", "msg/s", "ratio"
        );
    }
    for s in scenarios {
        let median = s.median();
        let ratio = if base > 0.0 { median / base } else { f64::NAN };
        if as_json {
            let mut line = json!({
                "scenario": s.name,
                "msgs_per_s": median.round(),
                ratio_key.clone(): (ratio * 1000.0).round() / 1000.0,
                "rounds_msgs_per_s": s.rates.iter().map(|r| r.round()).collect::<Vec<_>>(),
            });
            if let (Some(line), Some(extra)) = (line.as_object_mut(), extra.as_object()) {
                line.extend(extra.clone());
            }
            println!("{line}");
        } else {
            let rounds: Vec<String> = s.rates.iter().map(|r| format!("{r:.0}")).collect();
            println!(
                "{:<20} {:>12.0} {:>9.3}x   {}",
                s.name,
                median,
                ratio,
                rounds.join(" ")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Scenario;

    #[test]
    fn median_of_odd_and_even_rounds() {
        assert_eq!(
            Scenario {
                name: "a",
                rates: vec![3.0, 1.0, 2.0]
            }
            .median(),
            2.0
        );
        assert_eq!(
            Scenario {
                name: "a",
                rates: vec![4.0, 1.0, 2.0, 3.0]
            }
            .median(),
            2.5
        );
        assert_eq!(
            Scenario {
                name: "a",
                rates: vec![]
            }
            .median(),
            0.0
        );
    }
}
