//! A plain consumer standing in for a service: it records every message id
//! that reaches a queue, and how often, so a fault test can prove that no
//! request was lost and count the duplicates at-least-once delivery allows.

use std::{collections::HashMap, sync::Arc, time::Duration};

use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tollgate_bus::{SubscribeOptions, Transport};

use super::poll_until;

/// Consumes one queue, acking each delivery once its id is recorded.
pub struct Tap {
    seen: Arc<Mutex<HashMap<String, u32>>>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Tap {
    /// Starts consuming `queue` on `transport` (prefetch 500).
    ///
    /// # Panics
    /// When the queue cannot be consumed.
    pub async fn start(transport: &dyn Transport, queue: &str) -> Self {
        let mut subscription = transport
            .subscribe(queue, SubscribeOptions::prefetch(500))
            .await
            .unwrap_or_else(|e| panic!("cannot consume {queue}: {e}"));
        let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (seen, stop) = (Arc::clone(&seen), stop.clone());
            async move {
                while let Some(Some(d)) = stop.run_until_cancelled(subscription.next()).await {
                    *seen.lock().entry(d.envelope.id.clone()).or_default() += 1;
                    d.ack().await.ok();
                }
                // Dropping the subscription cancels the consumer.
            }
        });
        Self { seen, stop, task }
    }

    /// How many distinct ids arrived.
    pub fn distinct(&self) -> usize {
        self.seen.lock().len()
    }

    /// Whether `id` arrived.
    pub fn has(&self, id: &str) -> bool {
        self.seen.lock().contains_key(id)
    }

    /// Whether every one of `ids` arrived.
    pub fn has_all(&self, ids: &[String]) -> bool {
        let seen = self.seen.lock();
        ids.iter().all(|id| seen.contains_key(id))
    }

    /// Those of `ids` that did not arrive.
    pub fn missing(&self, ids: &[String]) -> Vec<String> {
        let seen = self.seen.lock();
        ids.iter()
            .filter(|id| !seen.contains_key(*id))
            .cloned()
            .collect()
    }

    /// Waits up to `limit` until every one of `ids` arrived, then prints how
    /// many arrived more than once (at-least-once delivery allows it).
    ///
    /// # Panics
    /// When some did not, saying how many and which (at most 10), with `hint`
    /// (e.g. where the router's log is).
    pub async fn wait_for_all(&self, ids: &[String], limit: Duration, hint: &str) {
        if poll_until(limit, async || self.has_all(ids)).await {
            self.report_duplicates();
            return;
        }
        let missing = self.missing(ids);
        panic!(
            "{} of {} confirmed requests did not arrive within {limit:?} ({hint}), e.g. {:?}",
            missing.len(),
            ids.len(),
            &missing[..missing.len().min(10)]
        );
    }

    /// The ids that arrived more than once, with how often, most often first.
    pub fn duplicates(&self) -> Vec<(String, u32)> {
        let mut twice: Vec<_> = self
            .seen
            .lock()
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, n)| (id.clone(), *n))
            .collect();
        twice.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        twice
    }

    /// Prints how many ids arrived more than once, and which (at most 20).
    fn report_duplicates(&self) {
        let duplicates = self.duplicates();
        let extra: u32 = duplicates.iter().map(|(_, n)| n - 1).sum();
        println!(
            "{} distinct ids, {} of them more than once ({extra} extra deliveries)",
            self.distinct(),
            duplicates.len()
        );
        for (id, n) in duplicates.iter().take(20) {
            println!("  {id} ×{n}");
        }
    }

    /// Stops consuming: the subscription is dropped, which cancels the
    /// consumer (deliveries it did not ack go back to the queue).
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.ok();
    }
}
