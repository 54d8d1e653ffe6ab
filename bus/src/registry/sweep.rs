//! Forgetting services whose leases ran out — but not for the broker's
//! silence: a lease lapses when its heartbeats stop reaching the router, and
//! a broker outage or alarm stops every service's heartbeats at once.

use std::time::{Duration, Instant};

use crate::{events, transport::Transport};

use super::listener::RegistryListener;

/// How long every lease is held past a broker outage or alarm seen by the
/// router (a default lease): the services were as cut off as the router, and
/// announce again once they are back (at once, on the `discover` sent then).
const HOLD_AFTER_OUTAGE: Duration = Duration::from_secs(15);

/// How long the `discover` a lapse sends may wait for its confirm. Longer
/// means the broker holds this router's publishes — an alarm the broker has
/// not told an idle router of, since it tells only connections that publish —
/// and so holds the services' heartbeats too.
const PROBE_WAIT: Duration = Duration::from_secs(1);

/// How long a service whose lease lapsed has to answer that `discover`.
const LAPSE_GRACE: Duration = Duration::from_secs(3);

/// What one sweep leaves to the next.
#[derive(Debug, Default)]
pub(super) struct Swept {
    /// The router was cut off from the broker, or held by it, at the last sweep.
    cut_off: bool,
}

impl RegistryListener {
    /// Drops expired leases, except while the router is cut off from the
    /// broker or the broker blocks publishing (an alarm blocks every
    /// service's heartbeat too), and just after: a missing heartbeat then
    /// says nothing of the services, so every lease is held and, once back,
    /// services are asked to announce. Before a lapsed lease is dropped the
    /// router asks services to announce (`discover`), once per lapse: a
    /// confirm within [`PROBE_WAIT`] shows the broker takes publishes, and
    /// the service gets [`LAPSE_GRACE`] to answer; no confirm shows an
    /// alarm, and every lease is held as for an outage. Only a lease that
    /// ran out after its instance was asked, unanswered, is dropped.
    pub(super) async fn sweep(&self, transport: &dyn Transport, swept: &mut Swept) {
        let now = Instant::now();
        if !transport.is_connected() || transport.is_blocked() {
            self.table.hold_leases(now + HOLD_AFTER_OUTAGE);
            swept.cut_off = true;
            return;
        }
        if swept.cut_off {
            swept.cut_off = false;
            self.table.hold_leases(now + HOLD_AFTER_OUTAGE);
            tracing::info!("Back on the broker: leases held, services asked to announce.");
            if let Err(e) = self.discover(transport).await {
                tracing::warn!(error = %e, "Cannot ask services to announce after an outage.");
            }
        }
        if self.table.has_unasked_lapse(now) {
            // Held (and noted as asked) before asking, so the service stays
            // routable while the `discover` and its answer travel.
            self.table.ask_all(now + PROBE_WAIT + LAPSE_GRACE);
            match tokio::time::timeout(PROBE_WAIT, self.discover(transport)).await {
                Ok(Ok(())) => {
                    tracing::debug!("A lease lapsed: services asked to announce.");
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "A lease lapsed and the broker refused the discover; holding every lease.");
                    self.table.hold_leases(now + HOLD_AFTER_OUTAGE);
                    swept.cut_off = true;
                }
                Err(_) => {
                    tracing::warn!(
                        "A lease lapsed while the broker holds this router's publishes (an alarm?); holding every lease."
                    );
                    self.table.hold_leases(now + HOLD_AFTER_OUTAGE);
                    swept.cut_off = true;
                }
            }
            return;
        }
        self.expire(now);
    }

    fn expire(&self, now: Instant) {
        for service in self.table.expire(now) {
            tracing::info!(service = %service, "Service left the registry (lease expired).");
        }
        metrics::gauge!(events::REGISTRY_SERVICES).set(self.table.len(Instant::now()) as f64);
    }
}
