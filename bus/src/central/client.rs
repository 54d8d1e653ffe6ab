//! The router's side of central mode: ask `introspect`, wait, retry, refuse.

use std::{collections::HashMap, sync::Arc, time::Duration};

use parking_lot::Mutex;
use tokio::{sync::oneshot, task::JoinHandle};
use tollgate_auth::{
    AssertionSigner, CredentialHash, INTROSPECT_METHOD, Identity, IntrospectAnswer,
    IntrospectRequest, ROUTER_CONSUMER,
};

use crate::{
    address::Address,
    bus_topology,
    envelope::Envelope,
    headers,
    names::BusNames,
    rejection::Rejection,
    reply_key::ReplyKey,
    transport::{SubscribeOptions, Subscription, Transport},
};

use super::{
    CentralSettings, IntrospectionCache,
    outcome::{AskError, judge, unavailable},
};

/// Asks the central auth service who holds a credential; see the module docs.
pub struct CentralAuth {
    settings: CentralSettings,
    route: String,
    transport: Arc<dyn Transport>,
    names: BusNames,
    signer: AssertionSigner,
    cache: Arc<IntrospectionCache>,
    /// The reply queue, opened at the first question and again after it closed.
    replies: tokio::sync::Mutex<Option<Arc<Replies>>>,
}

/// One reply queue of this router and the questions waiting on it.
struct Replies {
    key: ReplyKey,
    /// Waiting questions by correlation id; `None` once the queue closed.
    pending: Mutex<Option<HashMap<String, oneshot::Sender<Envelope>>>>,
    consumer: Mutex<Option<JoinHandle<()>>>,
}

impl CentralAuth {
    /// A client of the service `settings` names, signing its questions with
    /// the bus's `signer`; nothing is declared until the first question.
    pub fn new(
        settings: CentralSettings,
        transport: Arc<dyn Transport>,
        names: BusNames,
        signer: AssertionSigner,
    ) -> Self {
        let cache = Arc::new(IntrospectionCache::new(
            settings.cache_ttl,
            settings.cache_max_entries,
        ));
        Self {
            route: format!("{}.{INTROSPECT_METHOD}", settings.service),
            settings,
            transport,
            names,
            signer,
            cache,
            replies: tokio::sync::Mutex::new(None),
        }
    }

    /// The auth service's name (its `sessions_ended` announcements are heeded).
    pub fn service(&self) -> &str {
        &self.settings.service
    }

    /// The positive-answer cache (emptied by `sessions_ended`).
    pub fn cache(&self) -> &Arc<IntrospectionCache> {
        &self.cache
    }

    /// Who holds `token` (a session token or a JWT, without `Bearer `).
    ///
    /// A fresh cached answer is used as it is. Otherwise each attempt waits
    /// at most the timeout; a failed one (no answer, an error reply, a
    /// broker error) is retried after the back-off, doubled each time. Refuses
    /// with the code the answer means (`token_expired`, `token_revoked`,
    /// `invalid_token`), or `auth_unavailable` when no attempt got an answer.
    pub async fn introspect(&self, token: &str) -> Result<Arc<Identity>, Rejection> {
        let hash = CredentialHash::of(token);
        if let Some(identity) = self.cache.get(&hash) {
            return Ok(identity);
        }
        let mut backoff = self.settings.retry_backoff;
        for attempt in 1..=self.settings.attempts {
            let answer = match self.ask(token).await {
                Ok(answer) => judge(answer),
                Err(e) => Err(e),
            };
            match answer {
                Ok(Ok(identity)) => {
                    let expires_in = identity.expires_at.map_or(Duration::MAX, |at| {
                        Duration::from_secs(at.saturating_sub(crate::time::unix_now()))
                    });
                    self.cache.insert(hash, Arc::clone(&identity), expires_in);
                    return Ok(identity);
                }
                Ok(Err(refused)) => return Err(refused),
                Err(e) => {
                    tracing::warn!(attempt, error = %e, service = %self.settings.service, "Central auth: no answer.");
                    if attempt < self.settings.attempts {
                        tokio::time::sleep(backoff).await;
                        backoff = backoff.saturating_mul(2);
                    }
                }
            }
        }
        Err(unavailable(self.settings.attempts))
    }

    /// One attempt: publish the question to the service's queue, await the answer.
    async fn ask(&self, token: &str) -> Result<IntrospectAnswer, AskError> {
        let replies = self.replies().await?;
        let body = IntrospectRequest {
            token: token.to_owned(),
        };
        let payload = serde_json::to_vec(&body).map_err(|e| AskError::Malformed(e.to_string()))?;
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let mut envelope = Envelope::new(payload)
            .with_content_type("application/json")
            .with_id(uuid::Uuid::new_v4().to_string())
            .with_correlation_id(correlation_id.clone())
            .transient();
        let assertion =
            self.signer
                .sign(&Identity::new(ROUTER_CONSUMER), &self.route, &envelope.id)?;
        let h = &mut envelope.headers;
        h.insert(headers::ROUTE, self.route.as_str());
        h.insert(headers::CONSUMER, ROUTER_CONSUMER);
        h.insert(headers::ASSERTION, assertion);
        replies.key.attach(&self.names, &mut envelope);
        let (tx, rx) = oneshot::channel();
        let _waiting = Waiting::new(&replies, correlation_id, tx)?;
        let to = Address::new(
            self.names.deliver_exchange(),
            self.settings.service.as_str(),
        );
        self.transport.publish(&to, &envelope).await?;
        let reply = match tokio::time::timeout(self.settings.timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => return Err(AskError::Closed),
            Err(_) => return Err(AskError::Timeout(self.settings.timeout)),
        };
        if let Some(code) = reply.headers.get_str(headers::ERROR) {
            return Err(AskError::ErrorReply(code.to_owned()));
        }
        serde_json::from_slice(&reply.payload).map_err(|e| AskError::Malformed(e.to_string()))
    }

    /// The open reply queue, declared and consumed anew when there is none.
    async fn replies(&self) -> Result<Arc<Replies>, AskError> {
        let mut slot = self.replies.lock().await;
        if let Some(replies) = slot.as_ref()
            && replies.pending.lock().is_some()
        {
            return Ok(Arc::clone(replies));
        }
        let key = ReplyKey::generate();
        self.transport
            .declare(&bus_topology::caller(&self.names, key.id()))
            .await?;
        let subscription = self
            .transport
            .subscribe(&key.queue(&self.names), SubscribeOptions::prefetch(256))
            .await?;
        let replies = Arc::new(Replies {
            key,
            pending: Mutex::new(Some(HashMap::new())),
            consumer: Mutex::new(None),
        });
        let consumer = tokio::spawn(receive(Arc::clone(&replies), subscription));
        *replies.consumer.lock() = Some(consumer);
        if let Some(old) = slot.replace(Arc::clone(&replies)) {
            old.stop();
        }
        Ok(replies)
    }
}

impl Drop for CentralAuth {
    fn drop(&mut self) {
        if let Some(replies) = self.replies.get_mut().take() {
            replies.stop();
        }
    }
}

impl Replies {
    fn stop(&self) {
        if let Some(consumer) = self.consumer.lock().take() {
            consumer.abort();
        }
        self.pending.lock().take();
    }
}

/// A question waiting for its answer; leaves the table however it ends.
struct Waiting<'a> {
    replies: &'a Replies,
    correlation_id: String,
}

impl<'a> Waiting<'a> {
    fn new(
        replies: &'a Replies,
        correlation_id: String,
        tx: oneshot::Sender<Envelope>,
    ) -> Result<Self, AskError> {
        let mut pending = replies.pending.lock();
        let table = pending.as_mut().ok_or(AskError::Closed)?;
        table.insert(correlation_id.clone(), tx);
        Ok(Self {
            replies,
            correlation_id,
        })
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(table) = self.replies.pending.lock().as_mut() {
            table.remove(&self.correlation_id);
        }
    }
}

/// Hands each answer to its question; acks and drops late or unknown ones.
async fn receive(replies: Arc<Replies>, mut subscription: Subscription) {
    while let Some(delivery) = subscription.next().await {
        let (envelope, _, acker) = delivery.into_parts();
        let waiter = envelope
            .correlation_id
            .as_ref()
            .and_then(|id| replies.pending.lock().as_mut()?.remove(id));
        if let Some(tx) = waiter {
            let _ = tx.send(envelope);
        }
        if let Err(e) = acker.ack().await {
            tracing::debug!(error = %e, "Cannot ack an introspection answer.");
        }
    }
    tracing::warn!(
        "Central auth: the reply queue closed; it is opened again at the next question."
    );
    replies.pending.lock().take();
}
