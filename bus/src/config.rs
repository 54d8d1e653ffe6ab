//! The router's configuration: `tollgate.toml`, overridden by `TOLLGATE_*`
//! environment variables, checked as a whole before anything connects.
//!
//! Unknown fields are refused everywhere; every field has a default except
//! what only the operator can know (the consumers and the bus's key).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tollgate_auth::{ConsumerSpec, PolicySpec, VerifierConfig};

use crate::{
    bus_topology::DeadQueueBounds,
    chain::{AuthMode, Limits, RouteAuth},
    names::{BusNames, DEFAULT_NAMESPACE},
    registry::RegistryGrant,
    topology::QueueKind,
    translate::MappingSpec,
};

mod build;
mod central;
mod env;
mod error;
mod http;
mod purpose;
mod reload;
mod trust;

pub use central::{CentralAuthSection, MAX_CACHE_TTL_MS, SessionStoreKind};
pub use env::{EnvSource, ProcessEnv};
pub use error::ConfigError;
pub use http::HttpSection;
pub use purpose::{DEFAULT_REGISTRATION_AUDIENCE, TokenPurpose};
pub use trust::TrustSection;

/// Default broker.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// RabbitMQ URL, or one URL per cluster node separated by commas, tried
    /// in order and moved through when a connection breaks
    /// (`TOLLGATE_AMQP_URL`).
    #[serde(default = "default_amqp_url")]
    pub amqp_url: String,
    /// Prefix of every exchange and queue of the bus (`TOLLGATE_NAMESPACE`).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Type of the bus's shared durable queues (`TOLLGATE_QUEUE_TYPE`):
    /// `classic` on a single node (default), `quorum` in a cluster. Every
    /// router and service of a bus must use the same; see README's delivery
    /// contract.
    #[serde(default)]
    pub queue_type: QueueKind,
    /// This router instance's id; a random one when unset (`TOLLGATE_INSTANCE`).
    #[serde(default)]
    pub instance: Option<String>,
    /// Address of the Prometheus `/metrics` endpoint, e.g. `127.0.0.1:9464`;
    /// none when unset (`TOLLGATE_METRICS_ADDR`).
    #[serde(default)]
    pub metrics_addr: Option<String>,
    /// Mode of routes no `[[routes]]` entry matches (`TOLLGATE_DEFAULT_AUTH`).
    #[serde(default)]
    pub default_auth: AuthMode,
    /// Auth mode per route pattern; the first match decides.
    #[serde(default)]
    pub routes: Vec<RouteAuth>,
    /// Consumers, keys, verification and the bus's own key.
    #[serde(default)]
    pub auth: AuthSection,
    /// The access policy (gateway mode).
    #[serde(default)]
    pub policy: PolicySpec,
    /// Who may register which service.
    #[serde(default)]
    pub registry: RegistrySection,
    /// Size limits.
    #[serde(default)]
    pub limits: Limits,
    /// Bounds of the dead-letter queue `<ns>.dead`; past them its oldest
    /// messages are dropped. Part of the queue's declaration: every router
    /// (and a service that declares the bus) must use the same.
    #[serde(default)]
    pub dead_letters: DeadQueueBounds,
    /// Schema mappings between versions.
    #[serde(default)]
    pub translation: TranslationSection,
    /// Consumption settings.
    #[serde(default)]
    pub router: RouterSection,
    /// The central auth service (routes in `central` mode, and
    /// `tollgate auth-service`).
    #[serde(default)]
    pub central_auth: CentralAuthSection,
    /// The HTTP entry (`[http] listen = "127.0.0.1:8080"`); off by default.
    #[serde(default)]
    pub http: HttpSection,
    /// Revocations and consumer changes at runtime (`[trust] redis_url`).
    #[serde(default)]
    pub trust: TrustSection,
    /// Folder relative paths are resolved against (the config file's); not read from the file.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// A consumers file (TOML, or JSON by extension), relative to the config
    /// file (`TOLLGATE_CONSUMERS_FILE`). Combined with `consumers`.
    pub consumers_file: Option<PathBuf>,
    /// Consumers written inline.
    pub consumers: Vec<ConsumerSpec>,
    /// Token verification settings (`audiences` are the caller audiences).
    pub verifier: VerifierConfig,
    /// The `aud` a service account's registration token must carry, and a
    /// caller's token must not (default `tollgate-registration`): each token
    /// serves one purpose. `tollgate token sign --purpose registration` sets it.
    pub registration_audience: String,
    /// Remove the caller's credential before the service sees the message.
    pub strip_credential: bool,
    /// Also write the caller's identity as plain headers beside the
    /// assertion (`x-tollgate-consumer`, `-subject`, `-groups`, `-scopes`,
    /// `-auth-mode`; default off). Informational only: a service trusts the
    /// assertion, which holds the same. The broker handles every header of
    /// every message, and these five cost it more than the gate's own work
    /// (README, "Through the router").
    pub identity_headers: bool,
    /// The bus's Ed25519 private key (PEM) signing assertions; every router
    /// instance of a bus needs the same one (`TOLLGATE_ASSERTION_KEY_FILE`).
    pub assertion_key_file: Option<PathBuf>,
    /// Generate a throw-away assertion key at start instead (a single router,
    /// in-process services: the demo and tests). Never for production.
    pub ephemeral_assertion_key: bool,
    /// Lifetime of an assertion in seconds (1–300, default 300; never past the
    /// caller's own token). A message that waits in a service's queue longer
    /// than this is refused by the service (`not_from_bus`): the trade-off
    /// between replay window and tolerated service outage.
    pub assertion_ttl_secs: u64,
}

/// `[registry]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrySection {
    /// `{ consumer = "orders-svc", services = ["orders"] }`; `*` grants any service.
    pub grants: Vec<RegistryGrant>,
    /// Longest lease (seconds) a registration may ask for.
    pub max_ttl_secs: u64,
}

/// `[translation]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TranslationSection {
    /// `[[translation.mappings]]`, one per service and version pair.
    pub mappings: Vec<MappingSpec>,
}

/// `[router]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterSection {
    /// Unsettled messages at once per queue (`TOLLGATE_PREFETCH`).
    pub prefetch: u16,
    /// Seconds a service has to answer a request (1–86400, default 300):
    /// a reply later than this is refused (`not_from_bus`) and dead-lettered,
    /// since its sealed reply context expired with the request.
    pub reply_timeout_secs: u64,
    /// Oldest request, in seconds from its bus assertion, that a router
    /// re-admits when its service hands it back because it waited longer
    /// than an assertion lives (0–2592000; default 86400, a day; 0: none,
    /// recorded `stale`). Only requests the broker vouches a router
    /// delivered and its service never took are re-admitted (README,
    /// "Backlogs older than an assertion").
    pub readmit_max_age_secs: u64,
    /// Calls a router holds at once (`TOLLGATE_HOLD_CALLS`): the ingress
    /// delivery of a call stays unacked until its reply has passed the
    /// router, so its copy in the service queue needs no disk (README,
    /// "Delivery contract"). Below `prefetch`; 0 delivers every request
    /// durably; default: half the prefetch.
    pub hold_calls: Option<u16>,
    /// Threads that run the router (`TOLLGATE_ROUTER_THREADS`, 1–64,
    /// default 1). One thread runs every task of the router in turn, so a
    /// message never waits for another thread to wake up: on a host that
    /// also runs the broker this carries more calls than a thread per core
    /// (README, "Router threads"). More than one: a work-stealing runtime
    /// with that many workers, for a router alone on a host of many cores.
    /// Routers scale out by running more of them on the bus.
    pub threads: u16,
}

/// The most threads a router runs on.
pub const MAX_ROUTER_THREADS: u16 = 64;

impl RouterSection {
    /// Calls held at once: `hold_calls`, or half the prefetch.
    pub fn hold_calls(&self) -> u16 {
        self.hold_calls.unwrap_or(self.prefetch / 2)
    }
}

fn default_amqp_url() -> String {
    DEFAULT_AMQP_URL.to_owned()
}

fn default_namespace() -> String {
    DEFAULT_NAMESPACE.to_owned()
}

impl Default for Config {
    fn default() -> Self {
        Self {
            amqp_url: default_amqp_url(),
            namespace: default_namespace(),
            queue_type: QueueKind::Classic,
            instance: None,
            metrics_addr: None,
            default_auth: AuthMode::Gateway,
            routes: Vec::new(),
            auth: AuthSection::default(),
            policy: PolicySpec::default(),
            registry: RegistrySection::default(),
            limits: Limits::default(),
            dead_letters: DeadQueueBounds::default(),
            translation: TranslationSection::default(),
            router: RouterSection::default(),
            central_auth: CentralAuthSection::default(),
            http: HttpSection::default(),
            trust: TrustSection::default(),
            base_dir: PathBuf::from("."),
        }
    }
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            consumers_file: None,
            consumers: Vec::new(),
            verifier: VerifierConfig::default(),
            registration_audience: purpose::DEFAULT_REGISTRATION_AUDIENCE.to_owned(),
            strip_credential: true,
            identity_headers: false,
            assertion_key_file: None,
            ephemeral_assertion_key: false,
            assertion_ttl_secs: 300,
        }
    }
}

impl Default for RegistrySection {
    fn default() -> Self {
        Self {
            grants: Vec::new(),
            max_ttl_secs: 60,
        }
    }
}

/// How old a request the routers re-admit by default: a day.
pub const DEFAULT_READMIT_MAX_AGE_SECS: u64 = 86_400;

impl Default for RouterSection {
    fn default() -> Self {
        Self {
            prefetch: 256,
            reply_timeout_secs: crate::reply_context::DEFAULT_REPLY_TIMEOUT_SECS,
            readmit_max_age_secs: DEFAULT_READMIT_MAX_AGE_SECS,
            hold_calls: None,
            threads: 1,
        }
    }
}

impl Config {
    /// Parses TOML text; relative paths resolve against `base_dir`.
    pub fn from_toml(text: &str, base_dir: impl Into<PathBuf>) -> Result<Self, ConfigError> {
        let mut config: Config =
            toml::from_str(text).map_err(|e| ConfigError::new("(file)", e.to_string()))?;
        config.base_dir = base_dir.into();
        Ok(config)
    }

    /// Reads and parses a TOML file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new("(file)", format!("cannot read {}: {e}", path.display()))
        })?;
        let base = path
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_toml(
            &text,
            if base.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                base
            },
        )
    }

    /// The names of the bus this config describes (namespace, queue type and
    /// dead-letter queue bounds).
    pub fn bus_names(&self) -> BusNames {
        BusNames::new(self.namespace.clone())
            .with_queue_type(self.queue_type)
            .with_dead_queue_bounds(self.dead_letters)
    }

    /// Resolves `path` against the config file's folder.
    pub fn resolve(&self, path: &std::path::Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }
}
