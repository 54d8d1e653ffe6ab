//! Declaring a service: name, contract, credential, how it admits messages,
//! and one typed handler per method.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use serde::{Deserialize, Serialize};
//! # use tollgate_auth::AssertionVerifier;
//! # use tollgate_bus::{BusNames, MemoryTransport, Transport};
//! # use tollgate_services::{HandlerError, Request, Service};
//! #[derive(Deserialize)]
//! struct Create { item: String }
//! #[derive(Serialize)]
//! struct Created { id: u64 }
//!
//! # async fn demo(bus_key: AssertionVerifier, transport: Arc<dyn Transport>) -> Result<(), Box<dyn std::error::Error>> {
//! let orders = Service::builder("orders")
//!     .content_type("application/json")
//!     .schema_version("2")
//!     .credential("service-token")
//!     .bus_key(bus_key)
//!     .handler("create", |req: Request<Create>| async move {
//!         if req.body.item.is_empty() {
//!             return Err(HandlerError::invalid("no item"));
//!         }
//!         Ok(Created { id: 1 })
//!     })
//!     .build()?;
//! let running = orders.run(transport, BusNames::default()).await?;
//! running.shutdown().await?;
//! # Ok(()) }
//! ```

use std::{future::Future, sync::Arc, time::Duration};

use serde::{Serialize, de::DeserializeOwned};
use tollgate_auth::{AssertionVerifier, Policy, ServiceSecret, Verifier};
use tollgate_bus::{
    BusNames, Topology, Transport, TransportError, bus_topology, dead_letter::DeadLetterBounds,
    registry::Registration, translate::Codec,
};

use crate::{
    admission,
    credential::TokenSource,
    dispatch::Dispatcher,
    error::{HandlerError, ServiceError},
    guard::Guard,
    handler::Handlers,
    registration::{Announcer, ttl_secs},
    request::Request,
    resume::Resumer,
    running::RunningService,
};

/// Default number of requests a service instance handles at once.
pub const DEFAULT_PREFETCH: u16 = 16;
/// Default interval between heartbeats (the registration lives three of them).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);
/// Default bound on waiting for a router to admit the service.
pub const DEFAULT_ADMISSION_TIMEOUT: Duration = Duration::from_secs(60);

/// A service, ready to [`run`](Service::run) on a transport.
#[derive(Debug, Clone)]
pub struct Service {
    name: String,
    codec: Codec,
    schema_version: String,
    credential: TokenSource,
    guard: Guard,
    handlers: Handlers,
    prefetch: u16,
    heartbeat: Duration,
    admission_timeout: Duration,
    dead_letter_bounds: DeadLetterBounds,
}

/// Builds a [`Service`]; see [`Service::builder`].
#[must_use]
pub struct ServiceBuilder {
    name: String,
    content_type: String,
    schema_version: String,
    credential: Option<TokenSource>,
    bus_key: Option<AssertionVerifier>,
    service_secret: Option<ServiceSecret>,
    assertion_leeway: Option<Duration>,
    verifier: Option<Arc<Verifier>>,
    policy: Option<Arc<Policy>>,
    handlers: Handlers,
    first_error: Option<ServiceError>,
    prefetch: u16,
    heartbeat: Duration,
    admission_timeout: Duration,
    dead_letter_bounds: DeadLetterBounds,
}

// === ServiceBuilder ===

impl ServiceBuilder {
    /// Content type the service accepts and replies in (default `application/json`).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = content_type.into();
        self
    }

    /// Schema version the service speaks (default `1`).
    pub fn schema_version(mut self, version: impl Into<String>) -> Self {
        self.schema_version = version.into();
        self
    }

    /// The credential the service registers with: a token, or a [`TokenSource`].
    pub fn credential(mut self, credential: impl Into<TokenSource>) -> Self {
        self.credential = Some(credential.into());
        self
    }

    /// Gateway mode: admit messages that carry a bus assertion this key verifies.
    pub fn bus_key(mut self, key: AssertionVerifier) -> Self {
        self.bus_key = Some(key);
        self
    }

    /// Gateway mode: also admit HS256 assertions made with this service's
    /// own secret (`tollgate keys service-secret --service NAME`), and ask
    /// routers for them when registering. An HMAC costs the router and this
    /// service ~1 µs a message where an Ed25519 signature costs ~11 µs to
    /// make and ~40 µs to check. Routers keep signing Ed25519 while any
    /// instance of the service does not ask for HS256, so instances moving
    /// to a secret keep the [`bus_key`](Self::bus_key) too until all have moved.
    pub fn service_secret(mut self, secret: ServiceSecret) -> Self {
        self.service_secret = Some(secret);
        self
    }

    /// Gateway mode: how far the routers' clocks and this service's may
    /// differ (0 to 300 s; default 5 s). An assertion issued further in the
    /// future, or expired longer ago, is refused as `not_from_bus`; the
    /// measured difference is logged (warn, once a minute) and exported as
    /// the gauge `tollgate_clock_skew_seconds`.
    pub fn assertion_leeway(mut self, leeway: Duration) -> Self {
        self.assertion_leeway = Some(leeway);
        self
    }

    /// Service mode: admit messages whose bearer token this verifier accepts.
    pub fn verifier(mut self, verifier: Arc<Verifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Service mode: also require `policy` to allow the caller on the route.
    pub fn policy(mut self, policy: Arc<Policy>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Handles `method` (route `service.method`) with `f`: the body is decoded
    /// into `T`, and `f`'s `R` encoded as the reply, in the service's content type.
    pub fn handler<F, Fut, T, R>(mut self, method: &str, f: F) -> Self
    where
        F: Fn(Request<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, HandlerError>> + Send + 'static,
        T: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
    {
        if let Err(e) = self.handlers.insert(method, f) {
            self.first_error.get_or_insert(e);
        }
        self
    }

    /// Most requests handled at once (the consumer's prefetch; default 16).
    pub fn prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch.max(1);
        self
    }

    /// Interval between heartbeats (default 5 s); the registration's TTL is three of them.
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval.max(Duration::from_millis(10));
        self
    }

    /// How long [`Service::run`] keeps registering until a router admits the
    /// service (default 60 s); past it, `run` fails with
    /// [`ServiceError::NotAdmitted`], so a service no router accepts exits
    /// instead of idling unreachable.
    pub fn admission_timeout(mut self, bound: Duration) -> Self {
        self.admission_timeout = bound;
        self
    }

    /// How much of a refused message (one that did not pass the guard) its
    /// copy in the dead-letter queue carries; by default the router's default
    /// limits (1 MiB of payload, 64 headers, 16 KiB of headers).
    pub fn dead_letter_bounds(mut self, bounds: DeadLetterBounds) -> Self {
        self.dead_letter_bounds = bounds;
        self
    }

    /// The service, or the first problem: an invalid name or method, no handler,
    /// no credential, no way to admit messages, or an unsupported content type.
    pub fn build(self) -> Result<Service, ServiceError> {
        if let Some(e) = self.first_error {
            return Err(e);
        }
        if !Registration::is_valid_service_name(&self.name) {
            return Err(ServiceError::InvalidName(self.name));
        }
        if self.handlers.is_empty() {
            return Err(ServiceError::NoHandlers);
        }
        if self.bus_key.is_none() && self.service_secret.is_none() && self.verifier.is_none() {
            return Err(ServiceError::NoAuthentication);
        }
        let credential = self.credential.ok_or(ServiceError::MissingCredential)?;
        let codec = Codec::from_content_type(&self.content_type)
            .ok_or(ServiceError::UnsupportedContentType(self.content_type))?;
        let bus_key = match (self.bus_key, &self.service_secret) {
            (Some(key), Some(secret)) => Some(key.with_service_secret(self.name.clone(), secret)),
            (None, Some(secret)) => Some(AssertionVerifier::from_service_secret(
                self.name.clone(),
                secret,
            )),
            (key, None) => key,
        };
        let bus_key = match (bus_key, self.assertion_leeway) {
            (_, Some(leeway)) if leeway > tollgate_auth::MAX_ASSERTION_LEEWAY => {
                return Err(ServiceError::LeewayOutOfRange(leeway));
            }
            (Some(key), Some(leeway)) => Some(key.with_leeway(leeway)),
            (key, _) => key,
        };
        let guard = Guard::new(self.name.clone(), bus_key, self.verifier, self.policy);
        Ok(Service {
            name: self.name,
            codec,
            schema_version: self.schema_version,
            credential,
            guard,
            handlers: self.handlers,
            prefetch: self.prefetch,
            heartbeat: self.heartbeat,
            admission_timeout: self.admission_timeout,
            dead_letter_bounds: self.dead_letter_bounds,
        })
    }
}

// === Service ===

impl Service {
    /// A builder for service `name` (lowercase letters, digits, `-`, `_`).
    pub fn builder(name: impl Into<String>) -> ServiceBuilder {
        ServiceBuilder {
            name: name.into(),
            content_type: "application/json".to_owned(),
            schema_version: "1".to_owned(),
            credential: None,
            bus_key: None,
            service_secret: None,
            assertion_leeway: None,
            verifier: None,
            policy: None,
            handlers: Handlers::default(),
            first_error: None,
            prefetch: DEFAULT_PREFETCH,
            heartbeat: DEFAULT_HEARTBEAT,
            admission_timeout: DEFAULT_ADMISSION_TIMEOUT,
            dead_letter_bounds: DeadLetterBounds::default(),
        }
    }

    /// The service name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts an instance on `transport` under `names`.
    ///
    /// Declares the service queue and the instance's control queue (and the
    /// bus's core topology if the router has not yet), registers until a
    /// router admits the instance, then starts consuming. Returns once
    /// admitted and consuming; errors when the broker refuses any of these
    /// steps, or with [`ServiceError::NotAdmitted`] when no router accepted
    /// the registration within the admission bound.
    pub async fn run(
        &self,
        transport: Arc<dyn Transport>,
        names: BusNames,
    ) -> Result<RunningService, ServiceError> {
        let instance = uuid::Uuid::new_v4().simple().to_string();
        let control_queue = names.service_control_queue(&instance);
        let mut topology = bus_topology::service(&names, &self.name);
        topology.merge(&bus_topology::control_listener(&names, &control_queue));
        declare(transport.as_ref(), &names, &topology).await?;

        let mut control = transport
            .subscribe(&control_queue, tollgate_bus::SubscribeOptions::prefetch(8))
            .await?;
        let announcer = Announcer {
            transport: Arc::clone(&transport),
            names: names.clone(),
            registration: Registration {
                service: self.name.clone(),
                instance: instance.clone(),
                content_type: self.codec.content_type().to_owned(),
                schema_version: self.schema_version.clone(),
                ttl_secs: ttl_secs(self.heartbeat),
                assertion: self.guard.assertion_alg(),
            },
            credential: self.credential.clone(),
            interval: self.heartbeat,
        };
        let router = admission::admitted(&announcer, &mut control, self.admission_timeout)
            .await
            .inspect_err(|e| {
                tracing::error!(service = %self.name, %instance, error = %e, "Service not admitted.");
            })?;
        let queue = names.service_queue(&self.name);
        let options = tollgate_bus::SubscribeOptions::prefetch(self.prefetch);
        let deliveries = transport.subscribe(&queue, options.clone()).await?;
        tracing::info!(service = %self.name, %instance, %queue, %router, "Service registered and consuming.");
        let resumer = Resumer {
            service: self.name.clone(),
            transport: Arc::clone(&transport),
            names: names.clone(),
            options,
        };
        let dispatcher = Arc::new(Dispatcher {
            service: self.name.clone(),
            transport,
            names,
            guard: self.guard.clone(),
            handlers: self.handlers.clone(),
            codec: self.codec,
            dead_letter_bounds: self.dead_letter_bounds,
        });
        Ok(RunningService::start(
            instance, dispatcher, deliveries, resumer, announcer, control,
        ))
    }
}

/// Declares `topology`, first declaring the bus's core when its exchanges are missing.
async fn declare(
    transport: &dyn Transport,
    names: &BusNames,
    topology: &Topology,
) -> Result<(), ServiceError> {
    match transport.declare(topology).await {
        Err(TransportError::NotFound { .. }) => {
            tracing::info!(
                ns = names.namespace(),
                "Bus topology missing; declaring it."
            );
            transport.declare(&bus_topology::core(names)).await?;
            transport.declare(topology).await?;
            Ok(())
        }
        other => Ok(other?),
    }
}
