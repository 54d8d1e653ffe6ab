//! A door into the router's pipeline from the same process, for entries
//! that are not the AMQP ingress (the HTTP listener of `tollgate serve`).
//!
//! A request entering here goes through exactly the gate an AMQP request
//! goes through ([`Pipeline::run`]), in this process: the answer to "was it
//! delivered?" is the broker's confirm of the copy in the service's queue,
//! known before the entry answers its own client. A request that waits for
//! a reply names this entry's own caller queue (`<ns>.caller.<id>`, opened
//! by a reply key like any SDK caller's), so the reply comes back through
//! the reply path of whichever router instance consumes it, and the entry
//! hands it to the request waiting under its correlation id.

use std::{collections::HashMap, sync::Arc, time::Duration};

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::{
    bus_topology,
    chain::{Facts, InfraError, RouteKey},
    envelope::Envelope,
    error::TransportError,
    events::Entry,
    names::BusNames,
    rejection::Rejection,
    reply_key::ReplyKey,
    transport::{SubscribeOptions, Subscription, Transport},
};

use super::pipeline::Pipeline;

/// Replies taken from the entry's queue at once.
const REPLY_PREFETCH: u16 = 512;

/// An in-process entry to the router's pipeline (see the module doc).
/// Cheap to share behind an `Arc`; its reply consumer runs until the router's
/// shutdown.
pub struct DirectEntry {
    entry: Entry,
    pipeline: Arc<Pipeline>,
    names: BusNames,
    reply_key: ReplyKey,
    queue: String,
    pending: Arc<Pending>,
}

/// What became of a request.
#[derive(Debug)]
pub enum Answer {
    /// The service's reply, in the caller's content type and schema version
    /// (an error reply from the service carries `x-tollgate-error`).
    Reply(Envelope),
    /// Delivered (confirmed in the service's queue); no reply was asked for.
    Accepted,
    /// Refused by the gate: recorded in the audit line and the dead-letter
    /// queue, not delivered.
    Refused(Rejection),
}

/// Why a request got no answer; never the request's own fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectError {
    /// The bus could not take the request (broker unreachable, nack, signing
    /// failure): nothing was delivered, the client may retry.
    #[error("the bus is unavailable: {0}")]
    Unavailable(#[source] InfraError),
    /// Delivered, but the service did not answer in time.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The entry's reply queue was lost (the connection broke) while waiting:
    /// the request was delivered, and its reply may never come here.
    #[error("the reply queue was lost while waiting")]
    ReplyQueueLost,
}

/// Requests waiting for a reply, by correlation id.
#[derive(Default)]
struct Pending(Mutex<HashMap<String, oneshot::Sender<Envelope>>>);

/// Removes a waiting request however its wait ends (reply, timeout, or the
/// client gone and the future dropped).
struct Waiting<'a> {
    pending: &'a Pending,
    correlation_id: String,
}

// === DirectError ===

impl DirectError {
    /// A stable machine code: `bus_unavailable`, `timeout`, `reply_queue_lost`.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "bus_unavailable",
            Self::Timeout(_) => "timeout",
            Self::ReplyQueueLost => "reply_queue_lost",
        }
    }
}

// === DirectEntry ===

impl DirectEntry {
    /// Declares the entry's exclusive caller queue and consumes it until
    /// `shutdown`. Errors when the queue cannot be declared or consumed.
    pub(super) async fn open(
        entry: Entry,
        pipeline: Arc<Pipeline>,
        transport: Arc<dyn Transport>,
        names: BusNames,
        shutdown: CancellationToken,
    ) -> Result<Self, TransportError> {
        let reply_key = ReplyKey::generate();
        let queue = reply_key.queue(&names);
        let topology = bus_topology::caller(&names, reply_key.id());
        transport.declare(&topology).await?;
        let options = SubscribeOptions::prefetch(REPLY_PREFETCH);
        let subscription = transport.subscribe(&queue, options.clone()).await?;
        let pending = Arc::new(Pending::default());
        let consumer = ReplyConsumer {
            transport,
            topology,
            queue: queue.clone(),
            options,
            pending: Arc::clone(&pending),
        };
        tokio::spawn(consumer.run(subscription, shutdown));
        Ok(Self {
            entry,
            pipeline,
            names,
            reply_key,
            queue,
            pending,
        })
    }

    /// The entry's reply queue (`<ns>.caller.<id>`).
    pub fn reply_queue(&self) -> &str {
        &self.queue
    }

    /// Sends `envelope` to `route` (`service.method`) through the gate.
    ///
    /// With `wait` set to `Some(timeout)`, sets a fresh correlation id and
    /// this entry's reply queue and waits for the service's reply; with
    /// `None`, sends no `reply_to` and answers [`Answer::Accepted`] once the
    /// broker confirmed the delivery. A refusal is [`Answer::Refused`].
    /// Errors: [`DirectError::Unavailable`] when nothing could be delivered,
    /// [`DirectError::Timeout`] when the service did not answer in time.
    pub async fn send(
        &self,
        mut envelope: Envelope,
        route: &str,
        wait: Option<Duration>,
    ) -> Result<Answer, DirectError> {
        if envelope.id.is_empty() {
            envelope.id = uuid::Uuid::new_v4().to_string();
        }
        let Some(timeout) = wait else {
            envelope.reply_to = None;
            envelope.correlation_id = None;
            return match self.run(&mut envelope, route).await? {
                None => Ok(Answer::Accepted),
                Some(rejection) => Ok(Answer::Refused(rejection)),
            };
        };
        // Fresh and random: nobody can guess it to slip a reply in.
        let correlation_id = uuid::Uuid::new_v4().to_string();
        envelope.correlation_id = Some(correlation_id.clone());
        self.reply_key.attach(&self.names, &mut envelope);
        let (tx, rx) = oneshot::channel();
        let _waiting = self.pending.wait_for(correlation_id, tx);
        if let Some(rejection) = self.run(&mut envelope, route).await? {
            return Ok(Answer::Refused(rejection));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(Answer::Reply(reply)),
            Ok(Err(_)) => Err(DirectError::ReplyQueueLost),
            Err(_) => Err(DirectError::Timeout(timeout)),
        }
    }

    /// Records the refusal of `envelope`, sent to `route`, decided by the
    /// entry before the gate (a body past the size limit that was never read
    /// whole): the same audit line and dead-letter copy as a refusal by the
    /// gate. Errors when the dead-letter copy could not be confirmed.
    pub async fn refuse(
        &self,
        envelope: &Envelope,
        route: &str,
        rejection: &Rejection,
    ) -> Result<(), DirectError> {
        let facts = Facts {
            route: RouteKey::parse(route),
            ..Facts::default()
        };
        self.pipeline
            .refuse(self.entry, envelope, &facts, rejection)
            .await
            .map_err(DirectError::Unavailable)
    }

    async fn run(
        &self,
        envelope: &mut Envelope,
        route: &str,
    ) -> Result<Option<Rejection>, DirectError> {
        self.pipeline
            .run(envelope, route, self.entry)
            .await
            .map_err(DirectError::Unavailable)
    }
}

// === Pending ===

impl Pending {
    fn wait_for(&self, correlation_id: String, tx: oneshot::Sender<Envelope>) -> Waiting<'_> {
        self.0.lock().insert(correlation_id.clone(), tx);
        Waiting {
            pending: self,
            correlation_id,
        }
    }

    /// Hands `reply` to the request waiting for it; a reply nobody waits for
    /// (its request timed out, its client left) is dropped.
    fn answer(&self, reply: Envelope) {
        let waiting = reply
            .correlation_id
            .as_deref()
            .and_then(|id| self.0.lock().remove(id));
        match waiting {
            Some(tx) => {
                let _ = tx.send(reply);
            }
            None => tracing::debug!(
                corr.id = reply.correlation_id.as_deref().unwrap_or("-"),
                "A reply nobody waits for any more; dropped."
            ),
        }
    }

    /// Fails every waiting request (their reply queue is gone).
    fn fail_all(&self) {
        self.0.lock().clear();
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.pending.0.lock().remove(&self.correlation_id);
    }
}

/// Consumes the entry's reply queue; declares and consumes it again when the
/// consumer ends before shutdown (an exclusive queue dies with its
/// connection: the transport reconnects, the queue must be declared anew).
struct ReplyConsumer {
    transport: Arc<dyn Transport>,
    topology: crate::Topology,
    queue: String,
    options: SubscribeOptions,
    pending: Arc<Pending>,
}

impl ReplyConsumer {
    async fn run(self, mut subscription: Subscription, shutdown: CancellationToken) {
        loop {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    delivery = subscription.next() => match delivery {
                        Some(d) => {
                            let (reply, _, acker) = d.into_parts();
                            // A reply needs no disk (README's delivery contract).
                            if let Err(e) = acker.ack().await {
                                tracing::debug!(error = %e, "Acking a reply failed.");
                            }
                            self.pending.answer(reply);
                        }
                        None => break,
                    },
                }
            }
            tracing::warn!(queue = %self.queue, "The entry's reply queue ended; declaring it again.");
            self.pending.fail_all();
            subscription = match self.resume(&shutdown).await {
                Some(s) => s,
                None => return,
            };
        }
    }

    async fn resume(&self, shutdown: &CancellationToken) -> Option<Subscription> {
        let mut backoff = Duration::from_millis(100);
        loop {
            let resumed = match self.transport.declare(&self.topology).await {
                Ok(()) => {
                    self.transport
                        .subscribe(&self.queue, self.options.clone())
                        .await
                }
                Err(e) => Err(e),
            };
            match resumed {
                Ok(s) => return Some(s),
                Err(TransportError::Closed) => return None,
                Err(e) => {
                    tracing::warn!(queue = %self.queue, error = %e, "Cannot consume the entry's reply queue yet.")
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}
