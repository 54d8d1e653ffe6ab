//! The demo's bus: a router, the three example services and the central auth
//! service, on one in-process broker or on RabbitMQ under a throw-away namespace.

use std::{path::PathBuf, sync::Arc, time::Instant};

use anyhow::{Context as _, anyhow};
use tokio_util::sync::CancellationToken;
use tollgate_auth::AssertionVerifier;
use tollgate_bus::{
    AmqpConfig, AmqpTransport, BusNames, MemoryBroker, Topology, Transport, bus_topology,
    config::Config,
    router::{Router, RunningRouter},
};
use tollgate_services::{Caller, RunningService, ServiceBuilder, examples};

use super::tokens::Tokens;

/// The example config, so the demo runs exactly what README documents.
const EXAMPLE_CONFIG: &str = include_str!("../../../tollgate.example.toml");

/// The example services and their service accounts.
const SERVICES: [(&str, &str); 3] = [
    ("orders", "orders-svc"),
    ("inventory", "inventory-svc"),
    ("billing-legacy", "billing-svc"),
];

enum Broker {
    Memory(MemoryBroker),
    Amqp(String),
}

/// Everything the scenario talks to.
pub(super) struct DemoBus {
    broker: Broker,
    names: BusNames,
    dir: PathBuf,
    shutdown: CancellationToken,
    router: RunningRouter,
    services: Vec<RunningService>,
    /// The central auth service's name.
    auth_service: String,
    /// Mints the scenario's tokens.
    pub(super) tokens: Tokens,
    /// The demo's caller.
    pub(super) caller: Caller,
    /// A plain connection, for the message sent around the router.
    pub(super) raw: Arc<dyn Transport>,
}

impl DemoBus {
    /// Starts the router and the services, and waits until all are registered.
    pub(super) async fn start(amqp: Option<&str>) -> anyhow::Result<Self> {
        let broker = match amqp {
            Some(url) => Broker::Amqp(url.to_owned()),
            None => Broker::Memory(MemoryBroker::new()),
        };
        let dir =
            std::env::temp_dir().join(format!("tollgate-demo-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("keys"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let (private, public) = tollgate_auth::generate_assertion_key()?;
        std::fs::write(dir.join("keys/bus-assertion.pem"), private)?;
        let mut config = Config::from_toml(EXAMPLE_CONFIG, &dir)?;
        config.metrics_addr = None;
        if matches!(broker, Broker::Amqp(_)) {
            config.namespace = format!("demo-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        }
        let problems = |p: Vec<tollgate_bus::config::ConfigError>| {
            anyhow!(
                p.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
        let tokens = Tokens::new(config.consumers().map_err(problems)?, &config);
        let names = config.bus_names();
        let shutdown = CancellationToken::new();
        let router = Router::from_config(&config)
            .map_err(problems)?
            .start(connect(&broker, "router").await?, shutdown.clone())
            .await?;
        let bus_key = AssertionVerifier::from_public_pem(public.as_bytes())?;
        let mut services = Vec::new();
        for (service, account) in SERVICES {
            let token = tokens.registration(account)?;
            let builder: ServiceBuilder = match service {
                "orders" => examples::orders::service(token, bus_key.clone()),
                "inventory" => examples::inventory::service(token, bus_key.clone()),
                _ => examples::billing_legacy::service(token, bus_key.clone()),
            };
            let running = builder
                .build()?
                .run(connect(&broker, service).await?, names.clone())
                .await?;
            services.push(running);
        }
        services.push(
            super::central::start_auth_service(
                &config,
                &tokens,
                bus_key.clone(),
                connect(&broker, "auth").await?,
                &names,
            )
            .await?,
        );
        wait_for_registrations(&router, &config.central_auth.service).await?;
        let caller = Caller::connect(connect(&broker, "caller").await?, names.clone()).await?;
        let raw = connect(&broker, "outsider").await?;
        Ok(Self {
            broker,
            names,
            dir,
            shutdown,
            router,
            services,
            auth_service: config.central_auth.service.clone(),
            tokens,
            caller,
            raw,
        })
    }

    /// The bus's names.
    pub(super) fn names(&self) -> &BusNames {
        &self.names
    }

    /// `in-memory transport` or the broker URL (without password).
    pub(super) fn transport_name(&self) -> String {
        match &self.broker {
            Broker::Memory(_) => "the in-memory transport".to_owned(),
            Broker::Amqp(url) => format!("RabbitMQ at {}", super::super::serve::redact(url)),
        }
    }

    /// Stops services and router; on RabbitMQ deletes the demo's namespace.
    pub(super) async fn stop(self) {
        for service in self.services {
            if let Err(e) = service.shutdown().await {
                tracing::warn!(error = %e, "A demo service did not stop cleanly.");
            }
        }
        self.shutdown.cancel();
        if let Err(e) = self.router.wait().await {
            tracing::warn!(error = %e, "The demo router stopped on an error.");
        }
        if matches!(self.broker, Broker::Amqp(_)) {
            let mut topology = bus_topology::core(&self.names);
            for (service, _) in SERVICES {
                topology.merge(&bus_topology::service(&self.names, service));
            }
            topology.merge(&bus_topology::service(&self.names, &self.auth_service));
            if let Err(e) = self
                .raw
                .delete(&Topology {
                    bindings: Vec::new(),
                    ..topology
                })
                .await
            {
                tracing::warn!(error = %e, "Could not delete the demo's namespace.");
            }
        }
        self.raw.close().await.ok();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// A connection for `role`, named after it on RabbitMQ.
async fn connect(broker: &Broker, role: &str) -> anyhow::Result<Arc<dyn Transport>> {
    Ok(match broker {
        Broker::Memory(b) => Arc::new(b.connect()),
        Broker::Amqp(url) => Arc::new({
            let config = AmqpConfig::new(url).with_connection_name(format!("tollgate-demo-{role}"));
            AmqpTransport::connect(config).await.with_context(|| {
                format!(
                    "cannot reach RabbitMQ at {}",
                    super::super::serve::redact(url)
                )
            })?
        }),
    })
}

async fn wait_for_registrations(router: &RunningRouter, auth: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while Instant::now() < deadline {
        if SERVICES
            .iter()
            .map(|(s, _)| *s)
            .chain([auth])
            .all(|s| router.registry.resolve(s).is_some())
        {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Err(anyhow!("the example services did not register within 10 s"))
}
