//! A confirmed publisher for fault tests: it publishes copies of one request,
//! each with a fresh id, keeps a window of them awaiting the broker's
//! confirm, and records which were confirmed: the delivery contract covers
//! exactly those.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::{StreamExt, stream::FuturesUnordered};
use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tollgate_bus::{Address, Envelope, Transport, TransportError};

/// Wait after a failed publish before the next one (a caller backs off).
const FAILURE_BACKOFF: Duration = Duration::from_millis(100);

/// Publishes in the background until it has published `count` requests or is stopped.
pub struct Publisher {
    record: Arc<Record>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// What a [`Publisher`] sent.
#[derive(Debug)]
pub struct Published {
    /// Ids of the requests the broker confirmed, in the order of their confirms.
    pub confirmed: Vec<String>,
    /// Publishes that failed (not confirmed: the contract does not cover them).
    pub failed: usize,
    /// The first failure, if any.
    pub first_error: Option<String>,
}

#[derive(Default)]
struct Record {
    confirmed: Mutex<Vec<String>>,
    failed: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

impl Publisher {
    /// Starts publishing `count` copies of `template` (fresh id and
    /// correlation id each) to `to`, with up to `window` awaiting their confirm.
    pub fn start(
        transport: Arc<dyn Transport>,
        to: Address,
        template: Envelope,
        count: usize,
        window: usize,
    ) -> Self {
        let record: Arc<Record> = Arc::default();
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            transport,
            Arc::new(to),
            template,
            count,
            window,
            Arc::clone(&record),
            stop.clone(),
        ));
        Self { record, stop, task }
    }

    /// How many publishes were confirmed so far.
    pub fn confirmed(&self) -> usize {
        self.record.confirmed.lock().len()
    }

    /// Waits until all `count` publishes are settled (confirmed or failed).
    pub async fn finish(self) -> Published {
        self.task.await.expect("publisher task");
        let record = &self.record;
        Published {
            confirmed: record.confirmed.lock().clone(),
            failed: record.failed.load(Ordering::Acquire),
            first_error: record.first_error.lock().clone(),
        }
    }

    /// Stops publishing, waits for the publishes in flight to settle.
    pub async fn stop(self) -> Published {
        self.stop.cancel();
        self.finish().await
    }
}

async fn run(
    transport: Arc<dyn Transport>,
    to: Arc<Address>,
    template: Envelope,
    count: usize,
    window: usize,
    record: Arc<Record>,
    stop: CancellationToken,
) {
    let mut in_flight = FuturesUnordered::new();
    let mut sent = 0;
    while sent < count && !stop.is_cancelled() {
        if in_flight.len() >= window
            && let Some((id, outcome)) = in_flight.next().await
        {
            settle(&record, id, outcome).await;
            continue;
        }
        let mut request = template.clone();
        request.id = uuid::Uuid::new_v4().to_string();
        request.correlation_id = Some(uuid::Uuid::new_v4().to_string());
        let (transport, to) = (Arc::clone(&transport), Arc::clone(&to));
        in_flight.push(async move {
            let outcome = transport.publish(&to, &request).await;
            (request.id, outcome)
        });
        sent += 1;
    }
    while let Some((id, outcome)) = in_flight.next().await {
        settle(&record, id, outcome).await;
    }
}

async fn settle(record: &Record, id: String, outcome: Result<(), TransportError>) {
    match outcome {
        Ok(()) => record.confirmed.lock().push(id),
        Err(e) => {
            record.failed.fetch_add(1, Ordering::AcqRel);
            record
                .first_error
                .lock()
                .get_or_insert_with(|| e.to_string());
            tokio::time::sleep(FAILURE_BACKOFF).await;
        }
    }
}
