//! Announcing a service instance to the routers: register, heartbeat, answer
//! `discover`, deregister.
//!
//! Every announcement carries the service's credential, since routers verify
//! announcements like any message. A failed announcement is logged and tried
//! again on the next heartbeat: the routers' TTL, not this loop, decides when
//! an instance is gone. The first registration waits for a router's answer
//! (`admission`); later ones (for `discover`) log a refusal.

use std::{sync::Arc, time::Duration};

use tokio::{sync::watch, time::MissedTickBehavior};
use tollgate_bus::{
    Address, BusNames, Delivery, Subscription, Transport,
    registry::{Announcement, Registration, RegistrationAnswer},
};

use crate::{credential::TokenSource, error::ServiceError, running::stopped};

/// Announces one instance on the control exchange.
pub(crate) struct Announcer {
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) names: BusNames,
    pub(crate) registration: Registration,
    pub(crate) credential: TokenSource,
    pub(crate) interval: Duration,
}

impl Announcer {
    /// Publishes `announcement` with the current credential.
    pub(crate) async fn announce(&self, announcement: &Announcement) -> Result<(), ServiceError> {
        let token = self.credential.token();
        let envelope = announcement
            .to_envelope(token.as_deref())
            .map_err(|e| ServiceError::TaskFailed(format!("cannot encode an announcement: {e}")))?;
        let to = Address::new(self.names.control_exchange(), "");
        self.transport.publish(&to, &envelope).await?;
        Ok(())
    }

    /// Heartbeats every interval and answers `discover` until `stop` fires
    /// (or its sender is dropped); then deregisters.
    pub(crate) async fn run(
        self,
        mut control: Option<Subscription>,
        mut stop: watch::Receiver<bool>,
    ) {
        let start = tokio::time::Instant::now() + self.interval;
        let mut ticks = tokio::time::interval_at(start, self.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stopped(&mut stop) => break,
                _ = ticks.tick() => {
                    let heartbeat = Announcement::Heartbeat(self.registration.clone());
                    self.announce_logged(&heartbeat, "heartbeat").await;
                }
                delivery = next(&mut control) => match delivery {
                    Some(d) => self.on_control(d).await,
                    None => {
                        tracing::warn!(service = %self.registration.service, "Control queue consumer ended; discover requests go unanswered.");
                        control = None;
                    }
                },
            }
        }
        let bye = Announcement::Deregister {
            service: self.registration.service.clone(),
            instance: self.registration.instance.clone(),
        };
        self.announce_logged(&bye, "deregister").await;
    }

    async fn on_control(&self, delivery: Delivery) {
        let body = &delivery.envelope.payload;
        if let Ok(Announcement::Discover) = Announcement::from_bytes(body) {
            let register = Announcement::Register(self.registration.clone());
            self.announce_logged(&register, "register").await;
        } else if let Ok(RegistrationAnswer::Refused {
            code,
            reason,
            router,
            ..
        }) = RegistrationAnswer::from_bytes(body)
        {
            // An answer to a registration sent for `discover`; the heartbeats go on.
            tracing::error!(
                service = %self.registration.service,
                code = %code,
                reason = %reason,
                router = %router,
                "A router refused the registration.",
            );
        }
        if let Err(e) = delivery.ack().await {
            tracing::debug!(error = %e, "Cannot ack a control message.");
        }
    }

    async fn announce_logged(&self, announcement: &Announcement, kind: &'static str) {
        match self.announce(announcement).await {
            Ok(()) => tracing::debug!(
                service = %self.registration.service,
                instance = %self.registration.instance,
                kind,
                "Announced.",
            ),
            Err(e) => tracing::warn!(
                service = %self.registration.service,
                kind,
                error = %e,
                "Cannot announce; trying again on the next heartbeat.",
            ),
        }
    }
}

/// The next control message; never resolves once the consumer is gone.
async fn next(control: &mut Option<Subscription>) -> Option<Delivery> {
    match control {
        Some(sub) => sub.next().await,
        None => std::future::pending().await,
    }
}

/// Seconds a registration lives without a heartbeat: three intervals, at least one second.
pub(crate) fn ttl_secs(interval: Duration) -> u64 {
    (interval * 3).as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ttl_covers_three_heartbeats() {
        assert_eq!(ttl_secs(Duration::from_secs(5)), 15);
        assert_eq!(ttl_secs(Duration::from_millis(100)), 1);
        assert_eq!(ttl_secs(Duration::from_millis(700)), 3);
    }
}
