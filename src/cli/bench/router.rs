//! `tollgate bench router`: requests through the whole router (gateway mode:
//! verify, authorize, translate, assert, deliver with confirm) and through
//! service mode, against a plain lapin relay measured in the same run.

use std::{sync::Arc, time::Instant};

use anyhow::anyhow;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tollgate_bus::{
    Address, BusNames, Envelope, QueueSpec, Topology, bus_topology,
    config::Config,
    headers,
    registry::{Announcement, Registration},
    router::Router,
};

use super::{RouterArgs, drive, relay::Relay, report};

/// Consumers and policy of the bench bus: `caller` may call anything, `sink-svc` registers `sink`.
const BENCH_CONFIG: &str = r##"
[auth]
ephemeral_assertion_key = true
[[auth.consumers]]
name = "caller"
[[auth.consumers.credentials]]
algorithm = "HS256"
secret = "bench-secret-of-the-caller-0123456789abcdef"
[[auth.consumers]]
name = "sink-svc"
[[auth.consumers.credentials]]
algorithm = "HS256"
secret = "bench-secret-of-the-sink-svc-0123456789abcdef"
[[policy.rules]]
name = "bench"
routes = ["#"]
consumers = ["caller"]
[registry]
grants = [{ consumer = "sink-svc", services = ["sink"] }]
"##;

pub(crate) async fn run(args: &RouterArgs) -> anyhow::Result<()> {
    let mut relay = report::Scenario::new("raw_relay");
    let mut gateway = report::Scenario::new("router_gateway");
    let mut service = report::Scenario::new("router_service_mode");
    for round in 0..args.rounds.max(1) {
        tracing::info!(round, "Bench round.");
        relay.rates.push(measure_relay(args).await?);
        gateway.rates.push(measure_router(args, "gateway").await?);
        service.rates.push(measure_router(args, "service").await?);
    }
    let extra = report::settings(args);
    report::print(&[relay, gateway, service], "raw_relay", &extra, args.json);
    Ok(())
}

/// Messages per second from an input queue, through the raw relay, into a sink queue.
async fn measure_relay(args: &RouterArgs) -> anyhow::Result<f64> {
    let transport = drive::connect(&args.amqp, "tollgate-bench-relay").await?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (input, output) = (
        format!("tollgate-bench.relay-in.{id}"),
        format!("tollgate-bench.relay-out.{id}"),
    );
    let topology = Topology::new()
        .queue(QueueSpec::quorum(&input))
        .queue(QueueSpec::quorum(&output));
    transport.declare(&topology).await?;
    let relay = Relay::start(&args.amqp, &input, &output, args.prefetch).await?;
    let entry = Address::queue(&input);
    let rate = drive::drive(args, &transport, &entry, &output, request(args, None)).await;
    relay.stop().await;
    transport.delete(&topology).await?;
    transport.close().await?;
    rate
}

/// Messages per second from the ingress exchange, through a router, into the service queue.
async fn measure_router(args: &RouterArgs, mode: &str) -> anyhow::Result<f64> {
    let dir =
        std::env::temp_dir().join(format!("tollgate-bench-{}", uuid::Uuid::new_v4().simple()));
    let namespace = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let toml = format!(
        "namespace = \"{namespace}\"\ndefault_auth = \"{mode}\"\n[router]\nprefetch = {}\n{BENCH_CONFIG}",
        args.prefetch
    );
    let config = Config::from_toml(&toml, &dir)?;
    let problems = |p: Vec<tollgate_bus::config::ConfigError>| anyhow!("{p:?}");
    let settings = config.router_settings().map_err(problems)?;
    let issuer = tollgate_auth::Issuer::new(Arc::new(config.consumers().map_err(problems)?));
    let token = |who: &str| {
        issuer.sign(
            who,
            std::time::Duration::from_secs(3600),
            serde_json::Map::new(),
        )
    };
    let names = BusNames::new(namespace);
    let transport = drive::connect(&args.amqp, "tollgate-bench-client").await?;
    let shutdown = CancellationToken::new();
    let router = Router::new(
        settings,
        drive::connect(&args.amqp, "tollgate-bench-router").await?,
    )
    .start(shutdown.clone())
    .await?;
    let registration = Registration {
        service: "sink".into(),
        instance: "bench".into(),
        content_type: "application/json".into(),
        schema_version: "1".into(),
        ttl_secs: 60,
    };
    let announce = Announcement::Register(registration).to_envelope(Some(&token("sink-svc")?))?;
    transport
        .publish(&Address::new(names.control_exchange(), ""), &announce)
        .await?;
    let started = Instant::now();
    while router.registry.resolve("sink", Instant::now()).is_none() {
        anyhow::ensure!(
            started.elapsed().as_secs() < 10,
            "the bench service did not register"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let credential = format!("Bearer {}", token("caller")?);
    let entry = Address::new(names.ingress_exchange(), "sink.consume");
    let sink = names.service_queue("sink");
    let rate = drive::drive(
        args,
        &transport,
        &entry,
        &sink,
        request(args, Some(credential)),
    )
    .await;
    shutdown.cancel();
    router.wait().await;
    let mut topology = bus_topology::core(&names);
    topology.merge(&bus_topology::service(&names, "sink"));
    topology.bindings.clear();
    transport.delete(&topology).await?;
    transport.close().await?;
    rate
}

/// The bench's request: about `args.size` bytes of JSON, with `credential`.
fn request(args: &RouterArgs, credential: Option<String>) -> Envelope {
    let body = json!({"padding": "x".repeat(args.size.saturating_sub(16))}).to_string();
    let mut envelope = Envelope::new(body).with_content_type("application/json");
    if let Some(credential) = credential {
        envelope.headers.insert(headers::AUTHORIZATION, credential);
    }
    envelope
}
