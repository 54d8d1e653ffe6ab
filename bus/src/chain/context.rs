//! What the chain learns about a message as it passes.

use tollgate_auth::Identity;

use crate::{registry::ServiceContract, translate::Format};

use super::{authorize::Permit, mode::AuthMode};

/// `service.method`, parsed from the routing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The whole key.
    pub full: String,
    /// First segment.
    pub service: String,
    /// The rest (may contain dots).
    pub method: String,
}

/// Per-message state of the chain.
#[derive(Debug)]
pub struct Context {
    /// The route, when the routing key is a valid `service.method`.
    pub route: Option<Route>,
    /// How this route authenticates.
    pub mode: AuthMode,
    /// The verified caller (gateway mode).
    pub identity: Option<Identity>,
    /// The target, once resolved.
    pub target: Option<ServiceContract>,
    /// What the caller speaks, once known.
    pub caller_format: Option<Format>,
    /// The caller's `reply_to` (checked by sanitize).
    pub caller_reply_to: Option<String>,
    permit: Option<Permit>,
}

impl Route {
    /// Parses `service.method`; `None` unless both parts are non-empty and
    /// free of AMQP wildcards.
    pub fn parse(key: &str) -> Option<Self> {
        let (service, method) = key.split_once('.')?;
        let valid = !service.is_empty() && !method.is_empty() && !key.contains(['*', '#']);
        valid.then(|| Self {
            full: key.to_owned(),
            service: service.to_owned(),
            method: method.to_owned(),
        })
    }
}

impl Context {
    /// A fresh context for a message published with `routing_key`.
    pub fn new(routing_key: &str, mode: AuthMode) -> Self {
        Self {
            route: Route::parse(routing_key),
            mode,
            identity: None,
            target: None,
            caller_format: None,
            caller_reply_to: None,
            permit: None,
        }
    }

    /// The proof that authorization passed, if it did.
    pub fn permit(&self) -> Option<&Permit> {
        self.permit.as_ref()
    }

    pub(super) fn grant(&mut self, permit: Permit) {
        self.permit = Some(permit);
    }

    /// The route as a string for logs (`-` when invalid).
    pub fn route_str(&self) -> &str {
        self.route.as_ref().map_or("-", |r| r.full.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_a_service_and_a_method() {
        let r = Route::parse("orders.item.add").unwrap();
        assert_eq!(
            (r.service.as_str(), r.method.as_str()),
            ("orders", "item.add")
        );
        assert!(Route::parse("orders").is_none());
        assert!(Route::parse(".create").is_none());
        assert!(Route::parse("orders.").is_none());
        assert!(Route::parse("orders.*").is_none());
    }
}
