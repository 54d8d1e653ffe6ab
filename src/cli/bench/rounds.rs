//! Rounds of a bench: every scenario once per round, in an order that
//! rotates, so no scenario always runs first (on a cold broker) or last.

/// The scenario indexes of round `round` out of `n`: starting at `round % n`
/// and wrapping around.
pub(crate) fn rotation(n: usize, round: usize) -> impl Iterator<Item = usize> {
    let start = if n == 0 { 0 } else { round % n };
    (0..n).map(move |i| (start + i) % n)
}

/// Runs `measure(scenario)` for every scenario of `0..n` in every round of
/// `0..rounds` (at least one), rotating the order; returns each scenario's
/// results in round order. Stops at the first error.
pub(crate) async fn run_rotated<T>(
    n: usize,
    rounds: usize,
    mut measure: impl AsyncFnMut(usize) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<Vec<T>>> {
    let mut results: Vec<Vec<T>> = (0..n).map(|_| Vec::new()).collect();
    for round in 0..rounds.max(1) {
        tracing::info!(round, "Bench round.");
        for scenario in rotation(n, round) {
            results[scenario].push(measure(scenario).await?);
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_round_starts_one_scenario_later() {
        let order = |round| rotation(3, round).collect::<Vec<_>>();
        assert_eq!(order(0), [0, 1, 2]);
        assert_eq!(order(1), [1, 2, 0]);
        assert_eq!(order(2), [2, 0, 1]);
        assert_eq!(order(3), [0, 1, 2]);
        assert_eq!(rotation(0, 5).count(), 0);
    }

    #[tokio::test]
    async fn results_stay_with_their_scenario_whatever_the_order() {
        let mut seen = Vec::new();
        let results = run_rotated(3, 2, async |i| {
            seen.push(i);
            Ok(i * 10)
        })
        .await
        .unwrap();
        assert_eq!(seen, [0, 1, 2, 1, 2, 0]);
        assert_eq!(results, [vec![0, 0], vec![10, 10], vec![20, 20]]);
    }
}
