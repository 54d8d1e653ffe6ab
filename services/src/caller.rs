//! Calling services through the router: requests with a reply, and fire-and-forget.
//!
//! One [`Caller`] owns one exclusive reply queue and serves any number of
//! requests in flight: each request gets a fresh correlation id, and the
//! reply consumer hands each reply to the request waiting for it.

use std::{collections::HashMap, sync::Arc};

use parking_lot::Mutex;
use serde::{Serialize, de::DeserializeOwned};
use tokio::{sync::oneshot, task::JoinHandle};
use tollgate_bus::{
    Address, BusNames, Envelope, ErrorBody, ReplyKey, SubscribeOptions, Subscription, Transport,
    bus_topology, headers, translate::Codec,
};

use crate::{error::CallError, options::RequestOptions};

/// Sends requests to `service.method` routes and waits for typed replies.
///
/// Dropping it stops its reply consumer; requests still waiting fail with
/// [`CallError::Closed`].
pub struct Caller {
    inner: Arc<Inner>,
    consumer: JoinHandle<()>,
}

struct Inner {
    transport: Arc<dyn Transport>,
    names: BusNames,
    /// Opens `queue`: every request carries its proof (see [`ReplyKey`]).
    reply_key: ReplyKey,
    queue: String,
    /// Waiting requests by correlation id; `None` once the reply consumer ended.
    pending: Mutex<Option<HashMap<String, oneshot::Sender<Envelope>>>>,
}

/// Removes a request from the waiting table when it ends in any way
/// (reply, timeout, error, or its future dropped).
struct Waiting<'a> {
    inner: &'a Inner,
    correlation_id: String,
}

// === Caller ===

impl Caller {
    /// Declares this caller's exclusive reply queue and starts consuming it.
    pub async fn connect(
        transport: Arc<dyn Transport>,
        names: BusNames,
    ) -> Result<Self, CallError> {
        let reply_key = ReplyKey::generate();
        transport
            .declare(&bus_topology::caller(&names, reply_key.id()))
            .await?;
        let queue = reply_key.queue(&names);
        let replies = transport
            .subscribe(&queue, SubscribeOptions::prefetch(256))
            .await?;
        let inner = Arc::new(Inner {
            transport,
            names,
            reply_key,
            queue,
            pending: Mutex::new(Some(HashMap::new())),
        });
        let consumer = tokio::spawn(receive(Arc::clone(&inner), replies));
        Ok(Self { inner, consumer })
    }

    /// The reply queue (`<ns>.caller.<id>`).
    pub fn reply_queue(&self) -> &str {
        &self.inner.queue
    }

    /// Sends `body` to `route` (`service.method`) and decodes the reply as `Resp`.
    ///
    /// Errors: [`CallError::Rejected`] for an error reply (from the router or
    /// the service), [`CallError::Timeout`] when no reply came within
    /// `options.timeout`, [`CallError::Transport`] when the request could not
    /// be published, and `Encode`/`Decode` for bodies the codec cannot handle.
    pub async fn request<Req, Resp>(
        &self,
        route: &str,
        body: &Req,
        options: &RequestOptions,
    ) -> Result<Resp, CallError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let codec = codec_of(&options.content_type)?;
        let payload = codec.to_vec(body).map_err(CallError::Encode)?;
        let reply = self
            .request_raw(route, Envelope::new(payload), options)
            .await?;
        let reply_codec = match reply.content_type.as_deref() {
            Some(ct) => codec_of(ct)?,
            None => codec,
        };
        reply_codec
            .from_slice(&reply.payload)
            .map_err(CallError::Decode)
    }

    /// Sends `envelope` (its payload, content type and headers) to `route` and
    /// returns the reply as it came. Sets the credential, schema version,
    /// correlation id and reply queue; keeps a content type already set.
    /// Error replies are returned as [`CallError::Rejected`].
    ///
    /// The reply is awaited beside the broker's confirm of the request, not
    /// after it: a reply proves the request arrived, so a call costs the
    /// round trip, not the round trip and the broker's disk write. A publish
    /// the broker refuses (unroutable, nacked, the connection lost) before
    /// a reply came fails the call; `options.timeout` bounds the whole.
    pub async fn request_raw(
        &self,
        route: &str,
        envelope: Envelope,
        options: &RequestOptions,
    ) -> Result<Envelope, CallError> {
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let mut envelope = prepare(envelope, options).with_correlation_id(correlation_id.clone());
        self.inner
            .reply_key
            .attach(&self.inner.names, &mut envelope);
        let (tx, mut rx) = oneshot::channel();
        let waiting = self.inner.wait_for(correlation_id, tx)?;
        // Its own task: the publish runs to its verdict even when the reply
        // comes first.
        let mut published = {
            let (inner, route) = (Arc::clone(&self.inner), route.to_owned());
            tokio::spawn(async move { inner.publish(&route, &envelope).await })
        };
        let mut confirmed = false;
        let deadline = tokio::time::sleep(options.timeout);
        tokio::pin!(deadline);
        let reply = loop {
            tokio::select! {
                reply = &mut rx => match reply {
                    Ok(reply) => break reply,
                    Err(_) => return Err(CallError::Closed),
                },
                verdict = &mut published, if !confirmed => match verdict {
                    Ok(Ok(())) => confirmed = true,
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Err(CallError::Closed),
                },
                () = &mut deadline => {
                    return Err(CallError::Timeout {
                        after: options.timeout,
                    });
                }
            }
        };
        drop(waiting);
        into_result(reply)
    }

    /// Sends `body` to `route` without waiting for a reply (no `reply_to`);
    /// returns once the broker confirmed the message.
    pub async fn publish<Req>(
        &self,
        route: &str,
        body: &Req,
        options: &RequestOptions,
    ) -> Result<(), CallError>
    where
        Req: Serialize + ?Sized,
    {
        let codec = codec_of(&options.content_type)?;
        let payload = codec.to_vec(body).map_err(CallError::Encode)?;
        let envelope = prepare(Envelope::new(payload), options);
        self.inner.publish(route, &envelope).await
    }

    /// Stops the reply consumer; waiting requests fail with [`CallError::Closed`].
    pub fn close(self) {
        drop(self);
    }
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("queue", &self.inner.queue)
            .finish_non_exhaustive()
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        self.consumer.abort();
        self.inner.pending.lock().take();
    }
}

// === Inner ===

impl Inner {
    fn wait_for(
        &self,
        correlation_id: String,
        tx: oneshot::Sender<Envelope>,
    ) -> Result<Waiting<'_>, CallError> {
        let mut pending = self.pending.lock();
        let table = pending.as_mut().ok_or(CallError::Closed)?;
        table.insert(correlation_id.clone(), tx);
        Ok(Waiting {
            inner: self,
            correlation_id,
        })
    }

    async fn publish(&self, route: &str, envelope: &Envelope) -> Result<(), CallError> {
        let to = Address::new(self.names.ingress_exchange(), route);
        self.transport.publish(&to, envelope).await?;
        Ok(())
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(table) = self.inner.pending.lock().as_mut() {
            table.remove(&self.correlation_id);
        }
    }
}

/// Hands each reply to its waiting request; drops (and acks) the others.
async fn receive(inner: Arc<Inner>, mut replies: Subscription) {
    while let Some(delivery) = replies.next().await {
        let waiter = delivery
            .envelope
            .correlation_id
            .as_ref()
            .and_then(|id| inner.pending.lock().as_mut()?.remove(id));
        let (envelope, _, acker) = delivery.into_parts();
        match waiter {
            Some(tx) => {
                let _ = tx.send(envelope);
            }
            None => tracing::debug!(
                msg.id = %envelope.id,
                correlation_id = envelope.correlation_id.as_deref().unwrap_or("-"),
                "Dropping a reply nobody waits for (late or unknown).",
            ),
        }
        if let Err(e) = acker.ack().await {
            tracing::debug!(error = %e, "Cannot ack a reply.");
        }
    }
    tracing::debug!(queue = %inner.queue, "Reply consumer ended.");
    inner.pending.lock().take();
}

fn codec_of(content_type: &str) -> Result<Codec, CallError> {
    Codec::from_content_type(content_type)
        .ok_or_else(|| CallError::UnsupportedContentType(content_type.to_owned()))
}

/// Sets what every request carries: credential, schema version, content type.
fn prepare(mut envelope: Envelope, options: &RequestOptions) -> Envelope {
    if let Some(token) = &options.token {
        envelope
            .headers
            .insert(headers::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(version) = &options.schema_version {
        envelope
            .headers
            .insert(headers::CALLER_SCHEMA_VERSION, version.as_str());
    }
    if envelope.content_type.is_none() {
        envelope.content_type = Some(options.content_type.clone());
    }
    envelope
}

/// An error reply becomes [`CallError::Rejected`]; anything else is the answer.
fn into_result(reply: Envelope) -> Result<Envelope, CallError> {
    let Some(code) = reply.headers.get_str(headers::ERROR) else {
        return Ok(reply);
    };
    Err(match ErrorBody::from_envelope(&reply) {
        Some(body) => CallError::Rejected {
            code: body.error.code,
            stage: body.error.stage,
            message: body.error.message,
        },
        None => CallError::Rejected {
            code: code.to_owned(),
            stage: "unknown".to_owned(),
            message: String::new(),
        },
    })
}
