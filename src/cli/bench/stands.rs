//! Stands: the scenarios a bench keeps up for its whole run, each on a bus
//! of its own, opened one after another and all closed at the end, whatever
//! the others' outcome.

use std::sync::Arc;

use tollgate_bus::Transport;

use super::bench_bus::{BenchBus, remove_bus};

/// Opens a stand for each of `scenarios` with `open`, in order. When one
/// fails, the stands opened already are closed with `close` (their
/// outcomes dropped) and its error is returned.
pub(crate) async fn open_all<I, S, T>(
    scenarios: impl IntoIterator<Item = I>,
    mut open: impl AsyncFnMut(I) -> anyhow::Result<S>,
    close: impl AsyncFnMut(S) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<S>> {
    let mut stands = Vec::new();
    for scenario in scenarios {
        match open(scenario).await {
            Ok(stand) => stands.push(stand),
            Err(e) => {
                close_all(stands, close).await;
                return Err(e);
            }
        }
    }
    Ok(stands)
}

/// Closes every stand with `close`, in order, whatever the others' outcome.
pub(crate) async fn close_all<S, T>(
    stands: Vec<S>,
    mut close: impl AsyncFnMut(S) -> anyhow::Result<T>,
) -> Vec<anyhow::Result<T>> {
    let mut closed = Vec::with_capacity(stands.len());
    for stand in stands {
        closed.push(close(stand).await);
    }
    closed
}

/// Deletes the bus of a stand whose opening failed: a failure to delete it
/// is logged, the opening's error is the one reported.
pub(crate) async fn discard_bus(bus: &BenchBus, transport: &Arc<dyn Transport>) {
    if let Err(e) = remove_bus(bus, transport).await {
        tracing::warn!(error = %e, "Removing a bench bus failed.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_opening_closes_the_stands_opened_before_it() {
        let mut closed = Vec::new();
        let opened = open_all(
            [1, 2, 3],
            async |i| {
                anyhow::ensure!(i != 3, "stand {i} failed");
                Ok(i)
            },
            async |s| {
                closed.push(s);
                Ok(())
            },
        )
        .await;
        assert_eq!(opened.unwrap_err().to_string(), "stand 3 failed");
        assert_eq!(closed, [1, 2]);
    }

    #[tokio::test]
    async fn every_stand_is_closed_whatever_the_others_outcome() {
        let outcomes = close_all(vec![1, 2, 3], async |s| {
            anyhow::ensure!(s != 2, "stand {s} failed to close");
            Ok(s * 10)
        })
        .await;
        let outcomes: Vec<Option<i32>> = outcomes.into_iter().map(Result::ok).collect();
        assert_eq!(outcomes, [Some(10), None, Some(30)]);
    }
}
