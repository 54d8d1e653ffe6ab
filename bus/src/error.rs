//! Transport errors: the infrastructure's fault, never the message's.

use crate::{header_map::HeaderError, transport::amqp::NodeListError};

/// A transport operation failed. Callers may retry most of these; see
/// [`TransportError::is_retryable`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The broker could not be reached or the connection could not be set up.
    #[error("cannot connect to the broker: {0}")]
    Connect(#[source] tollgate_wire::WireError),
    /// The broker URL (or node list) cannot be used; retrying cannot help.
    #[error("bad broker URL: {0}")]
    BadUrl(#[from] NodeListError),
    /// The connection or channel was lost while the operation was in flight;
    /// a publish may or may not have reached the broker.
    #[error("connection lost during {operation}")]
    ConnectionLost {
        /// What was in flight.
        operation: &'static str,
        /// The underlying error, when there is one.
        #[source]
        source: Option<tollgate_wire::WireError>,
    },
    /// The transport was closed by its owner.
    #[error("transport is closed")]
    Closed,
    /// No queue took the message (the broker returned it).
    #[error("message to {exchange}/{routing_key} is unroutable: no queue is bound for it")]
    Unroutable {
        /// Target exchange.
        exchange: String,
        /// Routing key that matched nothing.
        routing_key: String,
    },
    /// The broker refused the message (publisher confirm nack), e.g. a full queue
    /// with `reject-publish` overflow.
    #[error("broker refused the message to {exchange}/{routing_key}")]
    Nacked {
        /// Target exchange.
        exchange: String,
        /// Routing key.
        routing_key: String,
    },
    /// An exchange or queue does not exist.
    #[error("{kind} `{name}` does not exist")]
    NotFound {
        /// `exchange` or `queue`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// A declaration conflicts with what exists, or a queue is in exclusive use.
    #[error("declaration refused: {0}")]
    PreconditionFailed(String),
    /// The broker refused access to a resource.
    #[error("access refused: {0}")]
    AccessRefused(String),
    /// A topology is not valid (e.g. a non-durable quorum queue).
    #[error("invalid topology: {0}")]
    InvalidTopology(String),
    /// Headers AMQP cannot carry.
    #[error("headers cannot be sent: {0}")]
    InvalidHeaders(#[from] HeaderError),
    /// The delivery can no longer be acked or rejected (its channel or
    /// subscription is gone); the broker will redeliver it.
    #[error("delivery can no longer be settled: its channel or subscription is gone")]
    DeliveryStale,
    /// Any other broker error.
    #[error("broker error: {0}")]
    Broker(#[source] tollgate_wire::WireError),
}

impl TransportError {
    /// A stable snake_case code for logs and metrics.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::BadUrl(_) => "bad_url",
            Self::ConnectionLost { .. } => "connection_lost",
            Self::Closed => "closed",
            Self::Unroutable { .. } => "unroutable",
            Self::Nacked { .. } => "nacked",
            Self::NotFound { .. } => "not_found",
            Self::PreconditionFailed(_) => "precondition_failed",
            Self::AccessRefused(_) => "access_refused",
            Self::InvalidTopology(_) => "invalid_topology",
            Self::InvalidHeaders(_) => "invalid_headers",
            Self::DeliveryStale => "delivery_stale",
            Self::Broker(_) => "broker",
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub const fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Connect(_) | Self::ConnectionLost { .. } | Self::Nacked { .. } | Self::Broker(_)
        )
    }
}

/// Why a remote JSON Web Key Set could not be fetched or used. The last good
/// set stays in force.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The URL does not parse.
    #[error("bad JWKS URL: {0}")]
    BadUrl(String),
    /// No connection, TLS or HTTP exchange with the provider.
    #[error("cannot reach the JWKS provider: {0}")]
    Unreachable(String),
    /// The provider answered with a status other than 2xx.
    #[error("the JWKS provider answered HTTP {0}")]
    Status(u16),
    /// The body was over the size limit, or broke off.
    #[error("the JWKS body was refused: {0}")]
    Body(String),
    /// No answer within the fetch timeout.
    #[error("the JWKS fetch timed out")]
    Timeout,
    /// The document is not a usable key set (the load-time checks of a
    /// `jwks_file` failed on it).
    #[error("the JWKS document is not usable: {0}")]
    Invalid(#[source] tollgate_auth::LoadError),
    /// The consumer store refused the keys (e.g. a `kid` another consumer holds).
    #[error("the JWKS keys were refused: {0}")]
    Refused(#[source] tollgate_auth::LoadError),
}

impl JwksError {
    /// A stable snake_case code for logs and metrics.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::BadUrl(_) => "bad_url",
            Self::Unreachable(_) => "unreachable",
            Self::Status(_) => "status",
            Self::Body(_) => "body",
            Self::Timeout => "timeout",
            Self::Invalid(_) => "invalid",
            Self::Refused(_) => "refused",
        }
    }
}
