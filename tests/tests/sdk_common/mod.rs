//! What the SDK tests share: a tiny stand-in for the router, the bus keys,
//! and helpers to wait for messages.
//!
//! The stand-in does only what a service and a caller can observe of the
//! router: it admits every registration, takes requests from the ingress queue, trusts the bearer token
//! as the consumer's name (authentication is not under test here), signs a
//! bus assertion, and delivers to the service with the caller's queue as the
//! reply context; replies are forwarded to the queue named by their context.

// Test code: a failed expectation should panic loudly.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tollgate_auth::{AssertionSigner, AssertionVerifier, Identity, generate_assertion_key};
use tollgate_bus::{
    Address, BusNames, Delivery, Envelope, ErrorBody, ErrorDetail, SubscribeOptions, Subscription,
    Transport, bus_topology, headers,
};
use tollgate_services::Caller;
use tollgate_tests::support::{Fixture, admit_every_registration};

/// How long a test waits for something that must happen.
pub const WAIT: Duration = Duration::from_secs(15);

/// The bus's assertion key pair.
pub struct BusKeys {
    pub signer: AssertionSigner,
    pub verifier: AssertionVerifier,
}

impl BusKeys {
    pub fn generate() -> Self {
        let (private, public) = generate_assertion_key().unwrap();
        Self {
            signer: AssertionSigner::from_pem(private.as_bytes()).unwrap(),
            verifier: AssertionVerifier::from_public_pem(public.as_bytes()).unwrap(),
        }
    }
}

/// A signer with a key of its own, not the bus's: its assertions are forgeries.
pub fn foreign_signer() -> AssertionSigner {
    let (private, _) = generate_assertion_key().unwrap();
    AssertionSigner::from_pem(private.as_bytes()).unwrap()
}

/// The identity the stand-in attaches for a bearer token: the token is the consumer.
pub fn identity_of(consumer: &str) -> Identity {
    let mut who = Identity::new(consumer)
        .with_subject(format!("{consumer}-user"))
        .with_scopes(["orders:write"]);
    who.token_id = Some(uuid::Uuid::new_v4().to_string());
    who
}

/// The router's two loops, aborted on drop.
pub struct StandIn {
    tasks: Vec<JoinHandle<()>>,
}

impl StandIn {
    /// Starts consuming the ingress and replies queues, and admits every
    /// registration (the core topology must exist).
    pub async fn start(
        transport: Arc<dyn Transport>,
        names: &BusNames,
        signer: AssertionSigner,
    ) -> Self {
        let registry = admit_every_registration(Arc::clone(&transport), names).await;
        let ingress = subscribe(&*transport, names.ingress_queue()).await;
        let replies = subscribe(&*transport, names.replies_queue()).await;
        let deliver = tokio::spawn(deliver(
            Arc::clone(&transport),
            names.clone(),
            signer,
            ingress,
        ));
        let forward = tokio::spawn(forward(transport, replies));
        Self {
            tasks: vec![registry, deliver, forward],
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn subscribe(transport: &dyn Transport, queue: &str) -> Subscription {
    transport
        .subscribe(queue, SubscribeOptions::prefetch(64))
        .await
        .unwrap()
}

async fn deliver(
    transport: Arc<dyn Transport>,
    names: BusNames,
    signer: AssertionSigner,
    mut ingress: Subscription,
) {
    while let Some(d) = ingress.next().await {
        let (request, info, acker) = d.into_parts();
        let route = info.routing_key;
        let service = route.split('.').next().unwrap_or_default().to_owned();
        let consumer = request
            .headers
            .get_str(headers::AUTHORIZATION)
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("anonymous")
            .to_owned();
        let assertion = signer
            .sign(&identity_of(&consumer), &route, &request.id)
            .unwrap();
        let mut out = Envelope::new(request.payload.clone()).with_id(request.id.clone());
        out.content_type = request.content_type.clone();
        out.correlation_id = request.correlation_id.clone();
        out.headers.insert(headers::ROUTE, route.as_str());
        out.headers.insert(headers::ASSERTION, assertion);
        out.headers.insert(headers::CONSUMER, consumer.as_str());
        if let Some(caller_queue) = &request.reply_to {
            out.reply_to = Some(names.replies_queue().to_owned());
            out.headers
                .insert(headers::REPLY_CONTEXT, caller_queue.as_str());
        }
        let to = Address::new(names.deliver_exchange(), service);
        let delivered = transport.publish(&to, &out).await;
        if let (Err(_), Some(caller_queue)) = (delivered, &request.reply_to) {
            let body = ErrorBody {
                error: ErrorDetail {
                    code: "no_route".into(),
                    stage: "route".into(),
                    message: "no such service".into(),
                },
            };
            let reply = body.reply_to(&request);
            transport
                .publish(&Address::queue(caller_queue), &reply)
                .await
                .ok();
        }
        acker.ack().await.ok();
    }
}

async fn forward(transport: Arc<dyn Transport>, mut replies: Subscription) {
    while let Some(d) = replies.next().await {
        let (mut reply, _, acker) = d.into_parts();
        let context = reply.headers.remove(headers::REPLY_CONTEXT);
        if let Some(queue) = context.as_ref().and_then(|c| c.as_str()) {
            transport.publish(&Address::queue(queue), &reply).await.ok();
        }
        acker.ack().await.ok();
    }
}

/// The next delivery of `sub`, or a panic naming what was awaited.
pub async fn recv(sub: &mut Subscription, what: &str) -> Delivery {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(d)) => d,
        Ok(None) => panic!("subscription ended while waiting for {what}"),
        Err(_) => panic!("nothing within {WAIT:?} while waiting for {what}"),
    }
}

/// Whether nothing arrives on `sub` within `quiet` (for "must not happen" checks,
/// after something that must happen has been awaited).
pub async fn stays_quiet(sub: &mut Subscription, quiet: Duration) -> bool {
    tokio::time::timeout(quiet, sub.next()).await.is_err()
}

/// A memory bus with its core topology, the stand-in router, and a caller.
pub struct Bus {
    pub fx: Fixture,
    pub names: BusNames,
    pub keys: BusKeys,
    _router: StandIn,
    pub caller: Caller,
}

/// A fresh [`Bus`] on the memory transport.
pub async fn bus() -> Bus {
    let fx = Fixture::memory().await;
    let names = BusNames::new(fx.ns.prefix());
    fx.declare(&bus_topology::core(&names)).await.unwrap();
    let keys = BusKeys::generate();
    let router = StandIn::start(fx.transport().clone(), &names, keys.signer.clone()).await;
    let caller = Caller::connect(fx.connect().await, names.clone())
        .await
        .unwrap();
    Bus {
        fx,
        names,
        keys,
        _router: router,
        caller,
    }
}
