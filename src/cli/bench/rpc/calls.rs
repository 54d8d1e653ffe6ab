//! Calls through the SDK caller or the HTTP entry for a while, `in_flight`
//! at a time: how long each took, how many failed.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{client::Client, tokens::Tokens};

/// What to send on every call.
#[derive(Clone)]
pub(crate) struct Call {
    /// The request body.
    pub(crate) payload: Bytes,
    /// A call without a reply after this long fails.
    pub(crate) timeout: Duration,
}

/// The outcome of one measured phase.
#[derive(Debug, Default)]
pub(crate) struct Phase {
    /// The latency of every successful call, sorted.
    pub(crate) latencies: Vec<Duration>,
    /// Calls that failed or timed out.
    pub(crate) failures: u64,
    /// From the first call to the end of the last.
    pub(crate) elapsed: Duration,
    /// The token pool ran out before the time was up.
    pub(crate) exhausted: bool,
}

impl Phase {
    /// Successful calls per second.
    pub(crate) fn calls_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.latencies.len() as f64 / secs
        } else {
            0.0
        }
    }
}

/// Calls `in_flight` at a time (each worker starts its next call when its
/// last one ended) until `duration` is up or `tokens` run out.
pub(crate) async fn run(
    client: &Client,
    call: &Call,
    tokens: &Tokens,
    in_flight: usize,
    duration: Duration,
) -> anyhow::Result<Phase> {
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..in_flight.max(1))
        .map(|_| {
            tokio::spawn(worker(
                client.clone(),
                call.clone(),
                tokens.clone(),
                deadline,
            ))
        })
        .collect();
    let mut phase = Phase::default();
    for worker in workers {
        let done = worker.await?;
        phase.latencies.extend(done.latencies);
        phase.failures += done.failures;
        phase.exhausted |= done.exhausted;
    }
    phase.elapsed = started.elapsed();
    phase.latencies.sort_unstable();
    if phase.failures > 0 {
        tracing::warn!(failures = phase.failures, in_flight, "Calls failed.");
    }
    Ok(phase)
}

/// One call after another until `deadline`.
async fn worker(client: Client, call: Call, tokens: Tokens, deadline: Instant) -> Phase {
    let mut done = Phase::default();
    let mut line = client.line();
    while Instant::now() < deadline {
        let Some(token) = tokens.next() else {
            done.exhausted = true;
            break;
        };
        let start = Instant::now();
        match line.call(&call.payload, &token, call.timeout).await {
            Ok(_) => done.latencies.push(start.elapsed()),
            Err(e) => {
                if done.failures == 0 {
                    tracing::warn!(error = %e, "A bench call failed.");
                }
                done.failures += 1;
            }
        }
    }
    done
}
