//! One bench bus: a random namespace `bench-xxxxxxxx` for every exchange and
//! queue, and a temporary folder (removed on drop) with the router's config,
//! its keys and the logs of the bench's child processes.

use std::{net::TcpListener, path::PathBuf, sync::Arc};

use anyhow::{Context as _, anyhow};
use tollgate_auth::{AssertionSigner, AssertionVerifier, Revocations, ServiceSecret, Verifier};
use tollgate_bus::{
    BusNames, QueueKind, Topology, Transport, bus_topology,
    config::{Config, RouterSection},
};

use super::{
    CommonArgs, drive,
    keys::{BenchKeys, ConsumerKey},
    router_config::{RouterPlan, public_key_file, router_toml},
};

/// The service of `bench rpc`: replies to every call.
pub(crate) const ECHO: &str = "echo";
/// The service of `bench router`: a queue the bench drains.
pub(crate) const SINK: &str = "sink";
/// The central auth service of `bench rpc`'s central scenarios.
pub(crate) const AUTH: &str = "auth";

/// How the router of a bench bus authenticates the bench's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthMode {
    /// The router verifies the token and asserts the caller to the service.
    Gateway,
    /// The router passes the token on; the service verifies it.
    Service,
    /// The echo routes are `central`: the router asks the central auth
    /// service about each message's session, keeping a positive answer for
    /// `cache_ttl_ms` (0: asks for every message).
    Central {
        /// The router's `[central_auth] cache_ttl_ms`.
        cache_ttl_ms: u64,
    },
}

/// A bench bus; dropping it removes its folder.
pub(crate) struct BenchBus {
    /// The bus's names.
    pub(crate) names: BusNames,
    /// The folder of its config, keys and logs.
    pub(crate) dir: PathBuf,
    /// The broker.
    pub(crate) amqp: String,
    /// The prefetch of the router, the relay and the services.
    pub(crate) prefetch: u16,
    /// The calls the router and the relay hold (`None`: the router's default).
    pub(crate) hold_calls: Option<u16>,
    /// The threads the router and the relay run on.
    pub(crate) threads: u16,
    /// Where the router serves its HTTP entry, when its config asks for one.
    pub(crate) http_addr: String,
    keys: Arc<BenchKeys>,
}

/// A fresh bus with the settings of `args`, and a connection named
/// `connection` to its broker; [`remove_bus`] deletes it.
pub(crate) async fn fresh_bus(
    args: &CommonArgs,
    keys: &Arc<BenchKeys>,
    connection: &str,
) -> anyhow::Result<(BenchBus, Arc<dyn Transport>)> {
    let mut bus = BenchBus::new(&args.amqp, args.prefetch, args.queue_type, Arc::clone(keys))?;
    bus.hold_calls = args.hold_calls;
    bus.threads = args.router_threads;
    let transport = drive::connect(&args.amqp, connection).await?;
    Ok((bus, transport))
}

/// Deletes the exchanges and queues of `bus` through `transport`, then
/// closes it.
pub(crate) async fn remove_bus(
    bus: &BenchBus,
    transport: &Arc<dyn Transport>,
) -> anyhow::Result<()> {
    let deleted = transport.delete(&bus.topology()).await;
    if let Err(e) = transport.close().await {
        tracing::debug!(error = %e, "Closing a bench connection failed.");
    }
    Ok(deleted?)
}

/// The names of bus `namespace` with shared queues of `queue_type`, as the
/// bench, its relay and its router see them.
pub(crate) fn names(namespace: &str, queue_type: QueueKind) -> BusNames {
    BusNames::new(namespace).with_queue_type(queue_type)
}

// === BenchBus ===

impl BenchBus {
    /// A bus under a fresh namespace, with its folder created.
    pub(crate) fn new(
        amqp: &str,
        prefetch: u16,
        queue_type: QueueKind,
        keys: Arc<BenchKeys>,
    ) -> anyhow::Result<Self> {
        let namespace = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let dir = std::env::temp_dir().join(format!("tollgate-{namespace}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self {
            names: names(&namespace, queue_type),
            dir,
            amqp: amqp.to_owned(),
            prefetch,
            hold_calls: None,
            threads: RouterSection::default().threads,
            http_addr: free_local_port()?,
            keys,
        })
    }

    /// The namespace.
    pub(crate) fn namespace(&self) -> &str {
        self.names.namespace()
    }

    /// Writes the router's key files and config (`mode`, metrics on a free
    /// local port, the HTTP entry on [`BenchBus::http_addr`] when `http`)
    /// into the folder; returns the config's path.
    pub(crate) fn write_router_config(
        &self,
        mode: AuthMode,
        http: bool,
    ) -> anyhow::Result<PathBuf> {
        let path = self.dir.join("tollgate.toml");
        let toml = self.router_toml(mode, http)?;
        std::fs::write(&path, toml).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// The verifier a service-mode service of this bus holds: the router's
    /// consumers and verifier settings, as its config file would give them.
    pub(crate) fn service_verifier(&self) -> anyhow::Result<Arc<Verifier>> {
        let config = Config::from_toml(&self.router_toml(AuthMode::Service, false)?, &self.dir)?;
        let store = config.consumers().map_err(|p| anyhow!("{p:?}"))?;
        Ok(Arc::new(Verifier::new(
            Arc::new(store),
            Arc::new(Revocations::new()),
            config.auth.verifier.clone(),
        )))
    }

    /// The key a gateway-mode service checks the bus's assertions with.
    pub(crate) fn bus_key(&self) -> anyhow::Result<AssertionVerifier> {
        Ok(AssertionVerifier::from_public_pem(
            self.keys.assertion.public.as_bytes(),
        )?)
    }

    /// The secret with which `service` checks HS256 assertions, derived
    /// from the bus key as `tollgate keys service-secret` does.
    pub(crate) fn service_secret(&self, service: &str) -> anyhow::Result<ServiceSecret> {
        let signer = AssertionSigner::from_pem(self.keys.assertion.private.as_bytes())?;
        Ok(signer.service_secret(service)?)
    }

    /// The router config for `mode`, its key files written into the folder.
    fn router_toml(&self, mode: AuthMode, http: bool) -> anyhow::Result<String> {
        let write = |name: &str, text: &str| {
            let path = self.dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
        };
        write("bus-assertion.pem", &self.keys.assertion.private)?;
        for consumer in &self.keys.consumers {
            if let ConsumerKey::Pair(pair) = &consumer.key {
                write(&public_key_file(consumer.name), &pair.public)?;
            }
        }
        let metrics_addr = free_local_port()?;
        Ok(router_toml(&RouterPlan {
            names: &self.names,
            amqp_url: &self.amqp,
            metrics_addr: &metrics_addr,
            mode,
            prefetch: self.prefetch,
            hold_calls: self.hold_calls,
            threads: self.threads,
            keys: &self.keys,
            http_addr: http.then_some(self.http_addr.as_str()),
        }))
    }

    /// The router config written last, as the router reads it.
    #[cfg(test)]
    fn router_config(&self) -> anyhow::Result<Config> {
        let path = self.dir.join("tollgate.toml");
        Config::load(&path).map_err(|e| anyhow!("{}: {e}", path.display()))
    }

    /// A log file in the bus's folder.
    pub(crate) fn log(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    /// Every shared exchange and queue the bench may have declared on this
    /// bus (the core and the services' queues), without bindings: what to delete.
    pub(crate) fn topology(&self) -> Topology {
        let mut topology = bus_topology::core(&self.names);
        for service in [ECHO, SINK, AUTH] {
            topology.merge(&bus_topology::service(&self.names, service));
        }
        topology.bindings.clear();
        topology
    }
}

impl Drop for BenchBus {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::debug!(dir = %self.dir.display(), error = %e, "Cannot remove a bench folder.");
        }
    }
}

/// `127.0.0.1:<a port free right now>`.
fn free_local_port() -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::bench::keys::{self, SERVICE_ACCOUNT};

    #[test]
    fn the_router_config_is_valid_and_lets_every_caller_call() {
        let keys = BenchKeys::generate().unwrap();
        let issuer = keys.issuer().unwrap();
        let bus = BenchBus::new(
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            128,
            QueueKind::Classic,
            keys,
        )
        .unwrap();
        for mode in [AuthMode::Gateway, AuthMode::Service] {
            bus.write_router_config(mode, mode == AuthMode::Gateway)
                .unwrap();
            let config = bus.router_config().unwrap();
            let settings = config.router_settings().unwrap();
            assert_eq!(config.bus_names(), bus.names);
            assert_eq!(settings.prefetch, 128);
            assert!(config.metrics_socket().is_some());
            for caller in [keys::CALLER_HS256, keys::CALLER_RS256, keys::CALLER_EDDSA] {
                let token = keys::token(&issuer, caller).unwrap();
                let identity = settings.verifier.verify(&token).unwrap();
                assert_eq!(identity.consumer, caller);
                assert!(
                    settings
                        .policy
                        .decide(Some(&identity), "echo.call")
                        .is_allowed()
                );
            }
            let verifier = bus.service_verifier().unwrap();
            let token = keys::token(&issuer, keys::CALLER_RS256).unwrap();
            assert_eq!(
                verifier.verify(&token).unwrap().consumer,
                keys::CALLER_RS256
            );
            let service = keys::registration_token(&issuer, SERVICE_ACCOUNT).unwrap();
            assert_eq!(
                settings.verifier.verify(&service).map_err(|e| e.code()),
                Err("claims_invalid"),
                "a registration token is no caller's"
            );
            let identity = settings.registration_verifier.verify(&service).unwrap();
            assert!(
                !settings
                    .policy
                    .decide(Some(&identity), "echo.call")
                    .is_allowed()
            );
        }
        let dir = bus.dir.clone();
        drop(bus);
        assert!(!dir.exists());
    }
}
