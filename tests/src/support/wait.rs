//! Waiting for a condition with a bounded timeout, never sleeping and then asserting.

use std::time::{Duration, Instant};

/// How often a condition is checked.
const POLL: Duration = Duration::from_millis(25);

/// Checks `check` every 25 ms until it holds; whether it did within `limit`
/// (for a test that explains the failure itself).
pub async fn poll_until(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Checks `check` every 25 ms until it holds.
///
/// # Panics
/// When it does not hold within `limit`, naming `what`.
pub async fn wait_until(what: &str, limit: Duration, check: impl AsyncFnMut() -> bool) {
    assert!(
        poll_until(limit, check).await,
        "timed out after {limit:?} waiting for {what}"
    );
}
