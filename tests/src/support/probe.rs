//! Sends requests to one route and tells, for each, whether the router
//! delivered it to the service or refused it (and with which code).

use serde_json::json;
use tollgate_bus::{ErrorBody, ReplyKey, SubscribeOptions, Subscription, Transport};

use super::TestBus;
use crate::conformance::transport::recv;

/// A raw consumer of a service's queue plus a caller's reply queue.
pub struct Probe {
    route: String,
    service: Subscription,
    replies: Subscription,
    caller: ReplyKey,
}

impl Probe {
    /// Consumes the queue of `route`'s service (register the service
    /// separately) and opens a caller queue for error replies.
    ///
    /// # Panics
    /// When a queue cannot be consumed.
    pub async fn new(bus: &TestBus, tr: &dyn Transport, route: &str) -> Self {
        let service = route.split('.').next().unwrap_or(route);
        let service = tr
            .subscribe(
                &bus.names.service_queue(service),
                SubscribeOptions::default(),
            )
            .await
            .expect("consume the service queue");
        let (caller, replies) = bus.caller_queue(tr).await;
        Self {
            route: route.to_owned(),
            service,
            replies,
            caller,
        }
    }

    /// Sends a small request with `token`: `Ok` once the service got it, or
    /// the code of the router's error reply.
    ///
    /// # Panics
    /// When neither arrives in time, or they do not match the request.
    pub async fn send(
        &mut self,
        bus: &TestBus,
        tr: &dyn Transport,
        token: &str,
    ) -> Result<(), String> {
        self.send_body(bus, tr, token, &json!({"n": 1})).await
    }

    /// Like [`Probe::send`], with the JSON `body`.
    ///
    /// # Panics
    /// When neither arrives in time, or they do not match the request.
    pub async fn send_body(
        &mut self,
        bus: &TestBus,
        tr: &dyn Transport,
        token: &str,
        body: &serde_json::Value,
    ) -> Result<(), String> {
        let request = bus.request(body, Some(token), Some(&self.caller));
        bus.send(tr, &self.route, &request).await;
        tokio::select! {
            d = recv(&mut self.service, "the request at the service") => {
                assert_eq!(d.envelope.correlation_id, request.correlation_id);
                d.ack().await.expect("ack at the service");
                Ok(())
            }
            r = recv(&mut self.replies, "the router's error reply") => {
                assert_eq!(r.envelope.correlation_id, request.correlation_id);
                let code = ErrorBody::from_envelope(&r.envelope).map(|b| b.error.code);
                r.ack().await.expect("ack the reply");
                Err(code.unwrap_or_else(|| "a reply that is no error".into()))
            }
        }
    }
}
