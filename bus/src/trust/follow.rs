//! Trust state for a process that does not hold the bus key (the central
//! auth service): it cannot check a broadcast's signature, so it takes a
//! broadcast only as a hint to re-read Redis, and applies what Redis holds.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use crate::{
    bus_topology,
    error::TransportError,
    names::BusNames,
    registry::Announcement,
    time::unix_now,
    transport::{SubscribeOptions, Subscription, Transport},
};

use super::{LiveTrust, TrustStore};

/// Follows the trust state from Redis into `live`: re-reads it whenever a
/// trust broadcast passes on the control exchange, and every `every`. Runs
/// until `live` is dropped; returns once it listens.
///
/// Errors when its control queue cannot be declared or consumed.
pub async fn follow(
    store: Arc<TrustStore>,
    live: Weak<LiveTrust>,
    transport: Arc<dyn Transport>,
    names: &BusNames,
    every: Duration,
) -> Result<tokio::task::JoinHandle<()>, TransportError> {
    let queue = names.router_control_queue(&format!("trust-{}", uuid::Uuid::new_v4().simple()));
    transport
        .declare(&bus_topology::control_listener(names, &queue))
        .await?;
    let subscription = transport
        .subscribe(&queue, SubscribeOptions::prefetch(64))
        .await?;
    Ok(tokio::spawn(run(store, live, subscription, every)))
}

async fn run(
    store: Arc<TrustStore>,
    live: Weak<LiveTrust>,
    subscription: Subscription,
    every: Duration,
) {
    let mut subscription = Some(subscription);
    let mut resync = tokio::time::interval(every);
    resync.tick().await;
    loop {
        let reload = tokio::select! {
            _ = resync.tick() => true,
            delivery = next(&mut subscription) => match delivery {
                Some(d) => {
                    let hint = matches!(
                        Announcement::from_bytes(&d.envelope.payload),
                        Ok(Announcement::TrustChanged(_))
                    );
                    d.ack().await.ok();
                    hint
                }
                None => {
                    tracing::warn!("Control queue closed; trust state now re-read only periodically.");
                    subscription = None;
                    false
                }
            },
        };
        let Some(live) = live.upgrade() else {
            return;
        };
        if reload {
            match store.load(unix_now()).await {
                Ok(state) => live.replace(state),
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot re-read the trust state; keeping the one in force.")
                }
            }
        }
    }
}

async fn next(subscription: &mut Option<Subscription>) -> Option<crate::transport::Delivery> {
    match subscription {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}
