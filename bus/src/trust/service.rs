//! The routes the router answers itself: `tollgate.trust.revoke`,
//! `tollgate.trust.consumers` and `tollgate.trust.list`. A request reaches
//! them only through the whole gate (credential, then the access policy),
//! so the policy decides who may change trust state.
//!
//! A change is checked, written to Redis, applied here, then broadcast
//! signed on the control exchange; the reply goes back through the reply
//! path like any service's.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tollgate_auth::{TrustChange, TrustEntry};

use crate::{
    address::Address,
    chain::Permitted,
    envelope::Envelope,
    error::TransportError,
    error_reply::{ErrorBody, ErrorDetail},
    events, headers,
    hop::Hop,
    names::BusNames,
    registry::Announcement,
    time::unix_now,
    transport::Transport,
};

use super::{BroadcastKey, LiveTrust, TrustStore};

/// The service name the router answers itself (reserved: a registered
/// service of this name is never routed to).
pub const TRUST_SERVICE: &str = "tollgate";
/// Whether `routing_key` names one of the routes the router answers itself
/// (`tollgate.…`): their answers pass the reply path, never a service.
pub fn is_router_route(routing_key: &str) -> bool {
    routing_key
        .split_once('.')
        .is_some_and(|(service, _)| service == TRUST_SERVICE)
}

/// Revokes, reinstates, cuts off (`revoke_*`, `reinstate_consumer`).
pub const REVOKE_METHOD: &str = "trust.revoke";
/// Disables, enables, adds or removes a key (`*_consumer`, `*_credential`).
pub const CONSUMERS_METHOD: &str = "trust.consumers";
/// Lists the entries in force (keys shown by `kid` and algorithm only).
pub const LIST_METHOD: &str = "trust.list";

/// What a process needs to take trust changes (Redis configured).
pub struct TrustBackend {
    /// The state in force here.
    pub live: Arc<LiveTrust>,
    /// Its durable copy.
    pub store: Arc<TrustStore>,
    /// Signs broadcasts.
    pub key: BroadcastKey,
    /// Longest token lifetime (s).
    pub max_lifetime: u64,
    /// Clock skew allowed (s).
    pub leeway: u64,
}

/// Answers the trust routes.
pub struct TrustService {
    backend: Option<Arc<TrustBackend>>,
    transport: Arc<dyn Transport>,
    names: BusNames,
}

/// A refused trust request: a stable code and a reason for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    code: &'static str,
    message: String,
}

/// The body of `tollgate.trust.list`'s reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrustListing {
    /// The entries in force, secrets left out.
    pub entries: Vec<TrustEntry>,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl TrustService {
    /// The service; without `backend` every route answers `trust_store_unavailable`.
    pub fn new(
        backend: Option<Arc<TrustBackend>>,
        transport: Arc<dyn Transport>,
        names: BusNames,
    ) -> Self {
        Self {
            backend,
            transport,
            names,
        }
    }

    /// Answers `request`, admitted by `permit`: acts, then sends the reply
    /// (when the caller wants one). Errors when Redis took the change but the
    /// broadcast or the reply could not be published (the request is
    /// requeued; taking it again is harmless).
    pub(crate) async fn answer(
        &self,
        request: &Envelope,
        permit: &Permitted,
    ) -> Result<(), TransportError> {
        let who = permit
            .identity()
            .map_or("anonymous", |i| i.consumer.as_str());
        let outcome = match permit.route().method() {
            LIST_METHOD => self.list().await,
            method @ (REVOKE_METHOD | CONSUMERS_METHOD) => {
                self.change(request, method, who).await?
            }
            other => Err(Refusal::new(
                "no_route",
                format!("`{TRUST_SERVICE}` has no method `{other}`"),
            )),
        };
        let reply = match outcome {
            Ok(body) => Envelope::new(serde_json::to_vec(&body).unwrap_or_default())
                .with_content_type("application/json")
                .with_correlation_id(
                    request
                        .correlation_id
                        .clone()
                        .unwrap_or_else(|| request.id.clone()),
                )
                .for_hop(Hop::Reply),
            Err(refusal) => {
                events::trust_change("refused", refusal.code);
                tracing::warn!(target: events::AUDIT_TARGET, consumer = who, code = refusal.code, reason = %refusal.message, "Trust request refused.");
                ErrorBody {
                    error: ErrorDetail {
                        code: refusal.code.to_owned(),
                        stage: "service".to_owned(),
                        message: refusal.message,
                    },
                }
                .reply_to(request)
            }
        };
        self.reply(request, reply).await
    }

    async fn list(&self) -> Result<Value, Refusal> {
        let backend = self.backend()?;
        let state = backend
            .store
            .load(unix_now())
            .await
            .map_err(|e| Refusal::new("trust_store_unavailable", e.to_string()))?;
        let entries = state.entries().map(redacted).collect();
        serde_json::to_value(TrustListing { entries })
            .map_err(|e| Refusal::new("trust_store_unavailable", e.to_string()))
    }

    /// Takes one change; `Ok(Err)` is the request's fault, `Err` the bus's.
    async fn change(
        &self,
        request: &Envelope,
        method: &str,
        who: &str,
    ) -> Result<Result<Value, Refusal>, TransportError> {
        let now = unix_now();
        let (backend, entry) = match self
            .backend()
            .and_then(|backend| Ok((backend, backend.entry(request, method, now)?)))
        {
            Ok(taken) => taken,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if let Err(e) = backend.store.write(&entry).await {
            return Ok(Err(Refusal::new("trust_store_unavailable", e.to_string())));
        }
        backend.live.record(entry.clone(), now);
        let id = uuid::Uuid::new_v4().to_string();
        backend.live.first_sight(&id);
        let signed = backend.key.seal(&entry, &id, now);
        let envelope = Announcement::TrustChanged(signed)
            .to_envelope(None)
            .map_err(|e| TransportError::InvalidTopology(e.to_string()))?;
        self.transport
            .publish(&Address::new(self.names.control_exchange(), ""), &envelope)
            .await?;
        events::trust_change("taken", entry.change.kind());
        tracing::warn!(target: events::AUDIT_TARGET, consumer = who, change = entry.change.kind(), entry = %entry.change.key(), "Trust changed.");
        Ok(Ok(json!({ "applied": redacted(&entry) })))
    }

    fn backend(&self) -> Result<&TrustBackend, Refusal> {
        self.backend.as_deref().ok_or_else(|| {
            Refusal::new(
                "trust_store_unavailable",
                "this router has no trust store (`[trust] redis_url`)",
            )
        })
    }

    async fn reply(&self, request: &Envelope, mut reply: Envelope) -> Result<(), TransportError> {
        let Some(reply_to) = &request.reply_to else {
            return Ok(());
        };
        if let Some(context) = request.headers.get_str(headers::REPLY_CONTEXT) {
            reply.headers.insert(headers::REPLY_CONTEXT, context);
        }
        self.transport
            .publish(&Address::queue(reply_to.as_str()), &reply)
            .await
    }
}

impl TrustBackend {
    /// The entry `request` asks for on `method`, checked against the state
    /// in force at `now`.
    fn entry(&self, request: &Envelope, method: &str, now: u64) -> Result<TrustEntry, Refusal> {
        let invalid = |message: String| Refusal::new("invalid_trust_change", message);
        let change: TrustChange =
            serde_json::from_slice(&request.payload).map_err(|e| invalid(e.to_string()))?;
        if route_of(&change) != method {
            return Err(invalid(format!(
                "`{}` is taken on `{TRUST_SERVICE}.{}`",
                change.kind(),
                route_of(&change)
            )));
        }
        let entry = TrustEntry {
            expires_at: change.expires_at(now, self.max_lifetime, self.leeway),
            change,
        };
        if entry.is_expired(now) {
            return Err(invalid(
                "it names only tokens that have expired already".into(),
            ));
        }
        self.live.check(&entry).map_err(|e| invalid(e.0))?;
        Ok(entry)
    }
}

/// The method a change is taken on.
fn route_of(change: &TrustChange) -> &'static str {
    match change {
        TrustChange::RevokeToken { .. }
        | TrustChange::RevokeSubject { .. }
        | TrustChange::RevokeConsumer { .. }
        | TrustChange::ReinstateConsumer { .. }
        | TrustChange::RevokeIssuedBefore { .. } => REVOKE_METHOD,
        _ => CONSUMERS_METHOD,
    }
}

/// `entry` without key material (an added key shows its `kid` and algorithm).
fn redacted(entry: &TrustEntry) -> TrustEntry {
    let mut entry = entry.clone();
    if let TrustChange::AddCredential { credential, .. } = &mut entry.change {
        *credential = tollgate_auth::CredentialSpec {
            kid: credential.kid.take(),
            algorithm: credential.algorithm,
            ..Default::default()
        };
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_routes_of_the_tollgate_service_are_the_routers_own() {
        assert!(is_router_route("tollgate.trust.revoke"));
        assert!(!is_router_route("tollgates.trust"));
        assert!(!is_router_route("orders.tollgate"));
        assert!(!is_router_route("tollgate"));
    }
}
