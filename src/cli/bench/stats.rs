//! Pure summaries of measured samples: percentiles and medians.

use std::time::Duration;

/// The `q`-quantile (`0.0..=1.0`) of `sorted` by the nearest-rank method:
/// the smallest sample with at least `q` of all samples at or below it.
/// `None` for no samples.
pub(crate) fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    let last = sorted.len().checked_sub(1)?;
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1).min(last)).copied()
}

/// Milliseconds, for reports.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median of `values` (the mean of the middle two for an even count);
/// `None` for no values.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The median of the values present (rounds where a figure could not be
/// measured are left out).
pub(crate) fn median_of(values: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    median(&values.into_iter().flatten().collect::<Vec<_>>())
}

/// `value` rounded to `digits` decimals, for reports.
pub(crate) fn round_to(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ms_list(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sorted = ms_list(&(1..=1000).collect::<Vec<_>>());
        assert_eq!(percentile(&sorted, 0.5), Some(Duration::from_millis(500)));
        assert_eq!(percentile(&sorted, 0.99), Some(Duration::from_millis(990)));
        assert_eq!(percentile(&sorted, 0.999), Some(Duration::from_millis(999)));
        assert_eq!(percentile(&sorted, 1.0), Some(Duration::from_millis(1000)));
        assert_eq!(percentile(&sorted, 0.0), Some(Duration::from_millis(1)));
    }

    #[test]
    fn percentiles_of_few_samples_are_the_largest_when_ranks_run_out() {
        let sorted = ms_list(&[1, 2, 3]);
        assert_eq!(percentile(&sorted, 0.5), Some(Duration::from_millis(2)));
        assert_eq!(percentile(&sorted, 0.999), Some(Duration::from_millis(3)));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median_of([Some(1.0), None, Some(3.0)]), Some(2.0));
    }

    #[test]
    fn rounds_to_decimals() {
        assert_eq!(round_to(1.23456, 3), 1.235);
        assert_eq!(ms(Duration::from_micros(1500)), 1.5);
    }
}
