//! What a handler receives: the decoded body and the verified caller.

use tollgate_auth::Identity;
use tollgate_bus::Headers;

/// One admitted request, as a handler sees it.
///
/// `identity` comes from the verified bus assertion (gateway mode) or the
/// verified bearer token (service mode), never from the informational
/// `x-tollgate-consumer`/`-scopes` headers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Request<T> {
    /// Who is calling, as verified.
    pub identity: Identity,
    /// The decoded body.
    pub body: T,
    /// The route, `service.method`.
    pub route: String,
    /// The method part of the route.
    pub method: String,
    /// The message id (what the bus assertion is bound to).
    pub message_id: String,
    /// The caller's correlation id, when the caller wants a reply.
    pub correlation_id: Option<String>,
    /// The message's headers, without the credential and the assertion.
    pub headers: Headers,
}

impl<T> Request<T> {
    /// A request of `identity` to `route` with `body`: for unit-testing handlers.
    pub fn new(identity: Identity, route: impl Into<String>, body: T) -> Self {
        let route = route.into();
        let method = route
            .split_once('.')
            .map(|(_, m)| m.to_owned())
            .unwrap_or_default();
        Self {
            identity,
            body,
            route,
            method,
            message_id: uuid::Uuid::new_v4().to_string(),
            correlation_id: None,
            headers: Headers::new(),
        }
    }

    /// The same request with another body (e.g. after validation).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Request<U> {
        Request {
            identity: self.identity,
            body: f(self.body),
            route: self.route,
            method: self.method,
            message_id: self.message_id,
            correlation_id: self.correlation_id,
            headers: self.headers,
        }
    }
}
