//! Consumes the control exchange: authenticates each announcement, checks
//! the registration grant, declares the service's queue, updates the table.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;
use tollgate_auth::{Verifier, bearer_token};

use crate::{
    address::Address,
    bus_topology,
    central::CentralAuth,
    error::TransportError,
    events, headers,
    names::BusNames,
    transport::{Delivery, SubscribeOptions, Transport},
    trust::TrustBackend,
};

use super::{
    announce::{Announcement, Registration},
    answer::RegistrationAnswer,
    grants::RegistryGrants,
    sweep::Swept,
    table::{Change, RegistryTable},
};

/// How often expired leases are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Wait before retrying an announcement the broker could not act on.
const APPLY_BACKOFF: Duration = Duration::from_millis(500);

/// One router instance's registry listener.
pub struct RegistryListener {
    /// The table it maintains.
    pub table: Arc<RegistryTable>,
    /// Verifies the services' credentials (registration tokens only).
    pub verifier: Arc<Verifier>,
    /// Who may register what.
    pub grants: RegistryGrants,
    /// Longest lease an announcement may ask for.
    pub max_ttl: Duration,
    /// The bus's names.
    pub names: BusNames,
    /// This router instance's id.
    pub instance: String,
    /// The central auth client whose cache `sessions_ended` empties (a
    /// router with central-mode routes).
    pub central: Option<Arc<CentralAuth>>,
    /// The trust state that signed `trust_changed` broadcasts update (a
    /// router with a trust store).
    pub trust: Option<Arc<TrustBackend>>,
}

/// Why an announcement was refused.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("credential refused: {0}")]
    Credential(&'static str),
    #[error("consumer `{consumer}` may not register service `{service}`")]
    NotGranted { consumer: String, service: String },
    #[error("invalid registration: {0}")]
    Invalid(String),
}

impl Refusal {
    /// The stable code a refused service is told.
    fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_announcement",
            Self::Credential(code) => code,
            Self::NotGranted { .. } => "not_granted",
            Self::Invalid(_) => "invalid_registration",
        }
    }
}

/// Acks a judged announcement (whatever the verdict: it is not retried).
async fn settle(delivery: Delivery) {
    if let Err(e) = delivery.ack().await {
        tracing::debug!(error = %e, "Announcement ack failed.");
    }
}

impl RegistryListener {
    /// Declares this instance's control queue and starts listening; returns once
    /// subscribed (so nothing announced afterwards is missed), with the task handle.
    pub async fn start(
        self,
        transport: Arc<dyn Transport>,
        shutdown: CancellationToken,
    ) -> Result<tokio::task::JoinHandle<()>, TransportError> {
        let queue = self.names.router_control_queue(&self.instance);
        transport
            .declare(&bus_topology::control_listener(&self.names, &queue))
            .await?;
        let mut subscription = transport
            .subscribe(&queue, SubscribeOptions::prefetch(64))
            .await?;
        self.discover(transport.as_ref()).await?;
        Ok(tokio::spawn(async move {
            let mut sweep = tokio::time::interval(SWEEP_EVERY);
            let mut swept = Swept::default();
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = sweep.tick() => self.sweep(transport.as_ref(), &mut swept).await,
                    delivery = subscription.next() => match delivery {
                        Some(d) => self.handle(d, transport.as_ref()).await,
                        None => {
                            tracing::error!("Registry control queue closed; registry stops updating.");
                            return;
                        }
                    },
                }
            }
        }))
    }

    /// Asks every service to announce itself now.
    pub(super) async fn discover(&self, transport: &dyn Transport) -> Result<(), TransportError> {
        let discover = Announcement::Discover
            .to_envelope(None)
            .map_err(|e| TransportError::InvalidTopology(e.to_string()))?;
        transport
            .publish(&Address::new(self.names.control_exchange(), ""), &discover)
            .await
    }

    async fn handle(&self, delivery: Delivery, transport: &dyn Transport) {
        let announcement = match Announcement::from_bytes(&delivery.envelope.payload) {
            Ok(announcement) => announcement,
            Err(e) => {
                self.refused(&Refusal::Malformed(e.to_string()));
                return settle(delivery).await;
            }
        };
        let admitted = self.admit(&announcement, &delivery);
        let register = match &announcement {
            Announcement::Register(r) => Some(r),
            _ => None,
        };
        match admitted {
            Ok(()) if announcement == Announcement::Discover => {}
            Ok(()) if matches!(announcement, Announcement::SessionsEnded { .. }) => {
                self.sessions_ended(&announcement);
            }
            Ok(()) if matches!(announcement, Announcement::TrustChanged(_)) => {
                self.trust_changed(&announcement);
            }
            Ok(()) => {
                if let Err(e) = self.apply(&announcement, transport).await {
                    tracing::warn!(error = %e, "Cannot apply an announcement; retrying later.");
                    // Back off: the control queue has no delivery limit, so an
                    // immediate requeue would spin while the broker refuses.
                    // No answer: the service asks again until one router admits it.
                    tokio::time::sleep(APPLY_BACKOFF).await;
                    delivery.reject(true).await.ok();
                    return;
                }
                events::announcement("accepted", self.table.len(Instant::now()));
                if let Some(r) = register {
                    self.answer(transport, self.accepted(r)).await;
                }
            }
            Err(refusal) => {
                self.refused(&refusal);
                if let Some(r) = register {
                    self.answer(transport, self.refusal(r, &refusal)).await;
                }
            }
        }
        settle(delivery).await;
    }

    /// Forgets the cached answers of ended sessions, when the announcement
    /// comes from this router's central auth service.
    fn sessions_ended(&self, announcement: &Announcement) {
        let (
            Some(central),
            Announcement::SessionsEnded {
                service,
                credential_hashes,
                user,
            },
        ) = (&self.central, announcement)
        else {
            return;
        };
        if service != central.service() {
            tracing::warn!(target: events::AUDIT_TARGET, %service, "Sessions ended by a service that is not the central auth service; ignored.");
            return;
        }
        let mut forgotten = central.cache().forget(credential_hashes);
        if let Some(user) = user {
            forgotten += central.cache().forget_consumer(user);
        }
        tracing::info!(
            sessions = credential_hashes.len(),
            forgotten,
            "Sessions ended; cached answers forgotten."
        );
    }

    /// Applies a trust change broadcast by a router, if its signature
    /// verifies, it is fresh, and was not seen before; anything else is
    /// ignored and logged to the audit target.
    fn trust_changed(&self, announcement: &Announcement) {
        let (Some(trust), Announcement::TrustChanged(signed)) = (&self.trust, announcement) else {
            tracing::debug!("Trust change broadcast ignored: no trust store here.");
            return;
        };
        let now = crate::time::unix_now();
        match trust.key.open(signed, now) {
            Ok((id, entry)) => {
                // The central auth service re-reads the change as this router
                // applies it: cached answers of the old state are dropped.
                if let Some(central) = &self.central {
                    central.cache().clear();
                }
                if trust.live.first_sight(&id) {
                    tracing::info!(change = entry.change.kind(), entry = %entry.change.key(), "Trust change received.");
                    events::trust_change("applied", entry.change.kind());
                    trust.live.record(entry, now);
                }
            }
            Err(e) => {
                events::trust_change("ignored", e.code());
                tracing::warn!(target: events::AUDIT_TARGET, outcome = "ignored", code = e.code(), reason = %e, "Trust change broadcast refused.");
            }
        }
    }

    fn refused(&self, refusal: &Refusal) {
        tracing::warn!(target: events::AUDIT_TARGET, outcome = "refused", code = refusal.code(), reason = %refusal, "Registry announcement refused.");
        events::announcement("refused", self.table.len(Instant::now()));
    }

    /// Authenticates and authorizes an announcement. `discover` needs no credential.
    fn admit(&self, announcement: &Announcement, delivery: &Delivery) -> Result<(), Refusal> {
        let Some(service) = announcement.service() else {
            return Ok(());
        };
        let header = delivery.envelope.headers.get_str(headers::AUTHORIZATION);
        let identity = bearer_token(header)
            .and_then(|token| self.verifier.verify(token))
            .map_err(|e| Refusal::Credential(e.code()))?;
        if !self.grants.allows(&identity.consumer, service) {
            return Err(Refusal::NotGranted {
                consumer: identity.consumer.clone(),
                service: service.to_owned(),
            });
        }
        if let Announcement::Register(r) | Announcement::Heartbeat(r) = announcement {
            self.check(r)?;
        }
        Ok(())
    }

    fn accepted(&self, r: &Registration) -> RegistrationAnswer {
        RegistrationAnswer::Accepted {
            service: r.service.clone(),
            instance: r.instance.clone(),
            router: self.instance.clone(),
        }
    }

    fn refusal(&self, r: &Registration, refusal: &Refusal) -> RegistrationAnswer {
        RegistrationAnswer::Refused {
            service: r.service.clone(),
            instance: r.instance.clone(),
            router: self.instance.clone(),
            code: refusal.code().to_owned(),
            reason: refusal.to_string(),
        }
    }

    /// Sends `answer` to its instance's control queue. Best effort: an instance
    /// without a control queue (or a broker that refuses) goes unanswered, and
    /// the service, hearing nothing, registers again.
    async fn answer(&self, transport: &dyn Transport, answer: RegistrationAnswer) {
        if !RegistrationAnswer::is_answerable_instance(answer.instance()) {
            tracing::debug!("Registration of an instance id that cannot be answered.");
            return;
        }
        let to = Address::queue(self.names.service_control_queue(answer.instance()));
        // Only into a queue that exists (an exclusive one answers "locked"):
        // an instance that is gone gets no answer published at all.
        match transport.inspect(&to.routing_key).await {
            Ok(_) | Err(TransportError::PreconditionFailed(_)) => {}
            Err(e) => {
                tracing::debug!(error = %e, queue = %to.routing_key, "No control queue to answer a registration on.");
                return;
            }
        }
        let sent = match answer.to_envelope() {
            Ok(envelope) => transport
                .publish(&to, &envelope)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = sent {
            tracing::debug!(error = %e, queue = %to.routing_key, "Cannot answer a registration.");
        }
    }

    fn check(&self, r: &Registration) -> Result<(), Refusal> {
        if !Registration::is_valid_service_name(&r.service) {
            return Err(Refusal::Invalid(format!("service name `{}`", r.service)));
        }
        if r.service == crate::trust::TRUST_SERVICE {
            return Err(Refusal::Invalid(format!(
                "service name `{}` is the router's own",
                r.service
            )));
        }
        if crate::translate::Codec::from_content_type(&r.content_type).is_none() {
            return Err(Refusal::Invalid(format!(
                "unsupported content type `{}`",
                r.content_type
            )));
        }
        if r.ttl_secs == 0
            || r.ttl() > self.max_ttl
            || r.schema_version.is_empty()
            || r.instance.is_empty()
        {
            return Err(Refusal::Invalid(
                "ttl, schema version or instance out of range".into(),
            ));
        }
        Ok(())
    }

    async fn apply(
        &self,
        announcement: &Announcement,
        transport: &dyn Transport,
    ) -> Result<(), TransportError> {
        if let Announcement::Register(r) | Announcement::Heartbeat(r) = announcement
            && self.table.resolve(&r.service).is_none()
        {
            // The service's queue exists before the first message is routed to it.
            transport
                .declare(&bus_topology::service(&self.names, &r.service))
                .await?;
        }
        match self.table.apply(announcement, Instant::now()) {
            Change::ServiceAdded => {
                tracing::info!(service = ?announcement.service(), "Service joined the registry.")
            }
            Change::InstanceRemoved => {
                tracing::info!(service = ?announcement.service(), "Service instance left.")
            }
            _ => {}
        }
        Ok(())
    }
}
