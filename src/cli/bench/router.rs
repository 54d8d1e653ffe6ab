//! `tollgate bench router`: requests through `tollgate serve` (gateway mode:
//! verify, authorize, translate, assert, deliver with confirm; and service
//! mode) into a service queue, against the baseline relay process on the
//! same exchanges and queues, measured in the same run.

use std::sync::Arc;

use tollgate_auth::AssertionAlg;
use tollgate_bus::{
    Address, Envelope, Transport, bus_topology, headers,
    registry::{Announcement, Registration},
};

use super::{
    RouterArgs,
    bench_bus::{AuthMode, BenchBus, SINK, on_fresh_bus},
    cpu::Parties,
    drive::{self, Driven},
    gate::{Gate, GateKind, GateReport},
    keys::{self, BenchKeys, CALLER_HS256, SERVICE_ACCOUNT},
    payload, report, rounds,
    router_config::queue_type_name,
};

/// The scenarios, the baseline first, with how the sink asks the router to
/// sign its assertions: with its own secret (HS256), as a service given one
/// does, or Ed25519 (a service holding only the bus's public key).
const SCENARIOS: [(&str, GateKind, AssertionAlg); 4] = [
    ("raw_relay", GateKind::Relay, AssertionAlg::HS256),
    (
        "router_gateway",
        GateKind::Router(AuthMode::Gateway),
        AssertionAlg::HS256,
    ),
    (
        "router_gateway_ed25519",
        GateKind::Router(AuthMode::Gateway),
        AssertionAlg::EdDSA,
    ),
    (
        "router_service_mode",
        GateKind::Router(AuthMode::Service),
        AssertionAlg::HS256,
    ),
];

/// The caller's and the sink service's tokens.
struct Tokens {
    caller: String,
    service: String,
}

/// What one run of a scenario measured.
struct Run {
    driven: Driven,
    gate: GateReport,
}

pub(crate) async fn run(args: &RouterArgs) -> anyhow::Result<()> {
    let keys = BenchKeys::generate()?;
    let issuer = keys.issuer()?;
    let tokens = Tokens {
        caller: keys::token(&issuer, CALLER_HS256)?,
        service: keys::registration_token(&issuer, SERVICE_ACCOUNT)?,
    };
    let results = rounds::run_rotated(SCENARIOS.len(), args.common.rounds, async |i| {
        let (_, kind, assertion) = SCENARIOS[i];
        measure(args, &keys, kind, assertion, &tokens).await
    })
    .await?;
    let scenarios: Vec<report::Scenario> = SCENARIOS
        .iter()
        .zip(results)
        .map(|((name, _, _), runs)| {
            let mut scenario = report::Scenario::new(name);
            for run in runs {
                scenario.rates.push(run.driven.measured.msgs_per_s);
                scenario.cpu.push(run.driven.measured.cpu);
                scenario.peak_rss_mb.extend(run.gate.peak_rss_mb);
                scenario.fail(run.driven.lost);
                if let Some(relay) = run.gate.relay {
                    scenario.fail_in_relay(relay.failures);
                }
            }
            scenario
        })
        .collect();
    let mut extra = report::settings(args);
    extra["queue_type"] = queue_type_name(args.common.queue_type).into();
    report::print(&scenarios, SCENARIOS[0].0, &extra, args.common.json);
    Ok(())
}

/// One run of the gate `kind` on a bus of its own, deleted afterwards.
async fn measure(
    args: &RouterArgs,
    keys: &Arc<BenchKeys>,
    kind: GateKind,
    assertion: AssertionAlg,
    tokens: &Tokens,
) -> anyhow::Result<Run> {
    tracing::info!(gate = ?kind, "Bench scenario.");
    let run =
        async |bus: &BenchBus, t: &_| measure_on(args, bus, (kind, assertion), t, tokens).await;
    on_fresh_bus(&args.common, keys, "tollgate-bench-client", run).await
}

async fn measure_on(
    args: &RouterArgs,
    bus: &BenchBus,
    (kind, assertion): (GateKind, AssertionAlg),
    transport: &Arc<dyn Transport>,
    tokens: &Tokens,
) -> anyhow::Result<Run> {
    let mut gate = Gate::start(kind, bus, transport.as_ref()).await?;
    transport
        .declare(&bus_topology::service(&bus.names, SINK))
        .await?;
    if kind != GateKind::Relay {
        register_sink(bus, transport.as_ref(), &tokens.service, assertion).await?;
    }
    let mut request =
        Envelope::new(payload::body(args.common.size)).with_content_type("application/json");
    request
        .headers
        .insert(headers::AUTHORIZATION, format!("Bearer {}", tokens.caller));
    let entry = Address::new(bus.names.ingress_exchange(), format!("{SINK}.consume"));
    let sink = bus.names.service_queue(SINK);
    let parties = Parties::with_gate(gate.pid());
    let driven = drive::drive(args, transport, &entry, &sink, request, parties).await?;
    gate.ensure_running()?;
    Ok(Run {
        driven,
        gate: gate.stop().await?,
    })
}

/// Announces the sink service to the routers (which then route `sink.*` to
/// its queue), as the SDK does for a service.
async fn register_sink(
    bus: &BenchBus,
    transport: &dyn Transport,
    token: &str,
    assertion: AssertionAlg,
) -> anyhow::Result<()> {
    let registration = Registration {
        service: SINK.into(),
        instance: "bench".into(),
        content_type: "application/json".into(),
        schema_version: "1".into(),
        ttl_secs: 60,
        assertion,
    };
    let announce = Announcement::Register(registration).to_envelope(Some(token))?;
    let control = Address::new(bus.names.control_exchange(), "");
    transport.publish(&control, &announce).await?;
    Ok(())
}
