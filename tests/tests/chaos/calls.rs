//! The campaign's caller: a paced stream of requests on a reply queue of its
//! own, each retried with its correlation id until a reply (or an error
//! reply) arrives, as any RPC client does; it counts replies per request.

use std::{collections::HashMap, sync::Arc, time::Duration};

use parking_lot::Mutex;
use tokio::{sync::Semaphore, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tollgate_bus::{Address, Envelope, ErrorBody, Subscription, Transport, headers};
use tollgate_tests::support::poll_until;

/// How the stream runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Requests in the stream.
    pub(crate) requests: usize,
    /// Requests started per second.
    pub(crate) rate: u32,
    /// Requests awaiting their reply at once.
    pub(crate) window: usize,
    /// How long a request waits for its reply before it is sent again.
    pub(crate) retry_after: Duration,
}

/// What a stream ended with.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) sent: usize,
    pub(crate) replied: usize,
    pub(crate) lost: usize,
    pub(crate) duplicates: u32,
    pub(crate) error_replies: usize,
    /// Error replies by code (`token_missing`: 2 …), for the fault's line.
    pub(crate) error_codes: String,
    /// The distinct reasons of error replies other than the expected
    /// `token_missing` (`no_route: no service …`), for the post-mortem.
    pub(crate) unexpected_reasons: Vec<String>,
    pub(crate) resent: usize,
}

/// Replies seen, by correlation id.
#[derive(Default)]
struct Replies {
    seen: HashMap<String, u32>,
    errors: usize,
    codes: std::collections::BTreeMap<String, usize>,
    reasons: std::collections::BTreeSet<String>,
}

/// A running stream.
pub(crate) struct Calls {
    replies: Arc<Mutex<Replies>>,
    resent: Arc<Mutex<usize>>,
    stop: CancellationToken,
    sender: JoinHandle<Vec<String>>,
    counter: JoinHandle<()>,
}

impl Calls {
    /// Starts sending `pace.requests` requests to `to`: request `n` is
    /// `refused` when `n % 10 == 9` (no token: the router answers with an
    /// error and keeps a dead-letter copy), else `valid`; replies arrive
    /// on `inbox`.
    pub(crate) fn start(
        transport: Arc<dyn Transport>,
        to: Address,
        (valid, refused): (Envelope, Envelope),
        mut inbox: Subscription,
        pace: Pace,
    ) -> Self {
        let replies: Arc<Mutex<Replies>> = Arc::default();
        let resent = Arc::default();
        let stop = CancellationToken::new();
        let counter = {
            let replies = Arc::clone(&replies);
            tokio::spawn(async move {
                while let Some(delivery) = inbox.next().await {
                    let error = delivery.envelope.headers.get_str(headers::ERROR);
                    let id = delivery.envelope.correlation_id.clone().unwrap_or_default();
                    {
                        let mut r = replies.lock();
                        if let Some(code) = error {
                            r.errors += 1;
                            *r.codes.entry(code.to_owned()).or_default() += 1;
                            if code != "token_missing" {
                                let reason =
                                    serde_json::from_slice::<ErrorBody>(&delivery.envelope.payload)
                                        .map_or_else(
                                            |_| "(unreadable body)".to_owned(),
                                            |b| b.error.message,
                                        );
                                r.reasons.insert(format!("{code}: {reason}"));
                            }
                        }
                        *r.seen.entry(id).or_default() += 1;
                    }
                    delivery.ack().await.ok();
                }
            })
        };
        let sender = tokio::spawn(send_all(
            transport,
            to,
            (valid, refused),
            pace,
            Shared {
                replies: Arc::clone(&replies),
                resent: Arc::clone(&resent),
                stop: stop.clone(),
            },
        ));
        Self {
            replies,
            resent,
            stop,
            sender,
            counter,
        }
    }

    /// Requests answered so far.
    pub(crate) fn replied(&self) -> usize {
        self.replies.lock().seen.len()
    }

    /// Waits until every request of the stream was sent and answered, or
    /// `limit` passed; then stops retrying and counts.
    pub(crate) async fn finish(self, requests: usize, limit: Duration) -> Tally {
        poll_until(limit, async || {
            self.sender.is_finished() && self.replied() >= requests
        })
        .await;
        self.stop.cancel();
        let sent = self.sender.await.expect("the sender");
        self.counter.abort();
        let r = self.replies.lock();
        let replied = sent.iter().filter(|id| r.seen.contains_key(*id)).count();
        Tally {
            sent: sent.len(),
            replied,
            lost: sent.len() - replied,
            duplicates: r.seen.values().map(|n| n - 1).sum(),
            error_replies: r.errors,
            error_codes: r
                .codes
                .iter()
                .map(|(code, n)| format!("{code}: {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            unexpected_reasons: r.reasons.iter().cloned().collect(),
            resent: *self.resent.lock(),
        }
    }
}

/// What the request tasks share with the stream.
#[derive(Clone)]
struct Shared {
    replies: Arc<Mutex<Replies>>,
    resent: Arc<Mutex<usize>>,
    stop: CancellationToken,
}

/// Starts the requests at `pace`; returns the correlation ids of those
/// confirmed by the broker at least once (all of them, unless stopped).
async fn send_all(
    transport: Arc<dyn Transport>,
    to: Address,
    (valid, refused): (Envelope, Envelope),
    pace: Pace,
    shared: Shared,
) -> Vec<String> {
    let window = Arc::new(Semaphore::new(pace.window));
    let mut tick = tokio::time::interval(Duration::from_secs(1) / pace.rate.max(1));
    let mut tasks = Vec::with_capacity(pace.requests);
    for n in 0..pace.requests {
        tick.tick().await;
        let permit = tokio::select! {
            p = Arc::clone(&window).acquire_owned() => p.expect("window"),
            () = shared.stop.cancelled() => break,
        };
        let mut request = if n % 10 == 9 { &refused } else { &valid }.clone();
        request.correlation_id = Some(uuid::Uuid::new_v4().to_string());
        let (transport, to, shared) = (Arc::clone(&transport), to.clone(), shared.clone());
        tasks.push(tokio::spawn(async move {
            let sent = call(transport.as_ref(), &to, request, pace, &shared).await;
            drop(permit);
            sent
        }));
    }
    let mut sent = Vec::with_capacity(tasks.len());
    for task in tasks {
        sent.extend(task.await.expect("a request task"));
    }
    sent
}

/// Publishes `request` (a fresh message id per attempt) until the broker
/// confirms it, waits `pace.retry_after` for its reply, and sends it again
/// while none came, until stopped; the correlation id once confirmed.
async fn call(
    transport: &dyn Transport,
    to: &Address,
    mut request: Envelope,
    pace: Pace,
    shared: &Shared,
) -> Option<String> {
    let id = request.correlation_id.clone().unwrap_or_default();
    let mut confirmed = false;
    loop {
        request.id = uuid::Uuid::new_v4().to_string();
        let published = tokio::select! {
            r = transport.publish(to, &request) => r,
            () = shared.stop.cancelled() => break,
        };
        match published {
            Ok(()) => confirmed = true,
            Err(e) => {
                eprintln!("publish of {id} failed ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        let waited = tokio::select! {
            done = wait_for_reply(shared, &id, pace.retry_after) => done,
            () = shared.stop.cancelled() => break,
        };
        if waited {
            break;
        }
        *shared.resent.lock() += 1;
    }
    confirmed.then_some(id)
}

/// Whether a reply to `id` arrived within `limit` (a plain loop: an async
/// closure here would make the request task not `Send`).
async fn wait_for_reply(shared: &Shared, id: &str, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if shared.replies.lock().seen.contains_key(id) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
