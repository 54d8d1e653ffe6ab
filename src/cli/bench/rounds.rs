//! Rounds of a bench: every scenario once per round, in an order that
//! rotates, so no scenario always runs first (on a cold broker) or last;
//! and paired rounds, where each scenario runs right beside a slice of the
//! baseline.

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

/// A scenario's slice and the baseline's slice run right beside it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pair<T> {
    /// The baseline's slice.
    pub(crate) baseline: T,
    /// The scenario's slice.
    pub(crate) scenario: T,
}

/// What [`run_paired`] measured.
#[derive(Debug, PartialEq)]
pub(crate) struct Paired<T> {
    /// Per round, the baseline's slices (one beside each other scenario, or
    /// one alone when there is none).
    pub(crate) baseline: Vec<Vec<T>>,
    /// Per scenario `1..n` (at index `i - 1`), its pairs in round order.
    pub(crate) pairs: Vec<Vec<Pair<T>>>,
}

/// Runs every scenario of `1..n` in every round of `0..rounds` (at least
/// one) right beside a slice of the baseline, scenario `0`: the scenarios
/// in an order that rotates per round, and within a pair the baseline first
/// in one round and second in the next. Stops at the first error.
///
/// A ratio taken within a pair compares two slices seconds apart. On a
/// shared machine, what else runs moves a rate by more than a gate does,
/// and over a round of many scenarios it changes: beside each other, the
/// baseline and the scenario meet the same machine.
pub(crate) async fn run_paired<T: Clone>(
    n: usize,
    rounds: usize,
    mut measure: impl AsyncFnMut(usize) -> anyhow::Result<T>,
) -> anyhow::Result<Paired<T>> {
    let others = n.saturating_sub(1);
    let mut paired = Paired {
        baseline: Vec::new(),
        pairs: (0..others).map(|_| Vec::new()).collect(),
    };
    for round in 0..rounds.max(1) {
        tracing::info!(round, "Bench round.");
        let mut baseline = Vec::new();
        if others == 0 {
            baseline.push(measure(0).await?);
        }
        for scenario in rotation(others, round).map(|i| i + 1) {
            let pair = if (round + scenario) % 2 == 0 {
                let baseline = measure(0).await?;
                let scenario = measure(scenario).await?;
                Pair { baseline, scenario }
            } else {
                let scenario = measure(scenario).await?;
                let baseline = measure(0).await?;
                Pair { baseline, scenario }
            };
            baseline.push(pair.baseline.clone());
            paired.pairs[scenario - 1].push(pair);
        }
        paired.baseline.push(baseline);
    }
    Ok(paired)
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

    #[tokio::test]
    async fn each_scenario_runs_beside_the_baseline_which_goes_first_every_other_round() {
        let mut seen = Vec::new();
        let mut slice = 0;
        let paired = run_paired(3, 2, async |i| {
            seen.push(i);
            slice += 1;
            Ok((i, slice))
        })
        .await
        .unwrap();
        // Round 0: scenario 1 (odd: first), then 2 (even: the baseline first);
        // round 1 rotates to 2 (odd), then 1 (even).
        assert_eq!(seen, [1, 0, 0, 2, 2, 0, 0, 1]);
        assert_eq!(
            paired.pairs[0],
            [
                Pair {
                    baseline: (0, 2),
                    scenario: (1, 1)
                },
                Pair {
                    baseline: (0, 7),
                    scenario: (1, 8)
                },
            ]
        );
        assert_eq!(
            paired.pairs[1],
            [
                Pair {
                    baseline: (0, 3),
                    scenario: (2, 4)
                },
                Pair {
                    baseline: (0, 6),
                    scenario: (2, 5)
                },
            ]
        );
        assert_eq!(
            paired.baseline,
            [vec![(0, 2), (0, 3)], vec![(0, 6), (0, 7)]]
        );
    }

    #[tokio::test]
    async fn a_baseline_alone_runs_once_a_round() {
        let paired = run_paired(1, 3, async |i| Ok(i)).await.unwrap();
        assert_eq!(paired.baseline, [vec![0], vec![0], vec![0]]);
        assert!(paired.pairs.is_empty());
    }
}
