//! `tollgate bench router`: requests through `tollgate serve` (gateway mode:
//! verify, authorize, translate, assert, deliver with confirm; and service
//! mode) into a service queue, against the baseline relay process on the
//! same exchanges and queues, measured in the same run: every gate runs for
//! the whole run, and the rounds alternate slices of traffic between them,
//! each router scenario's slice right beside one of the relay.

use std::sync::Arc;

use tollgate_auth::AssertionAlg;
use tollgate_bus::{
    Address, Envelope, Transport, bus_topology, headers,
    registry::{Announcement, Registration},
};

use super::{
    RouterArgs,
    bench_bus::{AuthMode, BenchBus, SINK, fresh_bus, remove_bus},
    cpu::Parties,
    drive::{Measured, Path},
    gate::{Gate, GateKind, GateReport},
    keys::{self, BenchKeys, CALLER_HS256, SERVICE_ACCOUNT},
    payload, report, rounds,
    router_config::queue_type_name,
    stands, stats,
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

/// One scenario's bus, with its gate running and a path through it that
/// carried its first message; it waits idle between its slices of traffic.
struct Stand {
    bus: BenchBus,
    transport: Arc<dyn Transport>,
    kind: GateKind,
    assertion: AssertionAlg,
    gate: Gate,
    path: Path,
}

/// What a closed stand counted over the whole run.
struct Closed {
    /// Messages published that never reached the sink.
    lost: u64,
    gate: GateReport,
}

pub(crate) async fn run(args: &RouterArgs) -> anyhow::Result<()> {
    let keys = BenchKeys::generate()?;
    let issuer = keys.issuer()?;
    let tokens = Tokens {
        caller: keys::token(&issuer, CALLER_HS256)?,
        service: keys::registration_token(&issuer, SERVICE_ACCOUNT)?,
    };
    // Every scenario's gate starts once and stays up; each round drives
    // every router scenario for a slice right beside a slice of the relay,
    // while the other gates wait idle (`rounds::run_paired`).
    let mut stands = stands::open_all(
        SCENARIOS,
        async |(_, kind, assertion)| Stand::open(args, &keys, kind, assertion, &tokens).await,
        Stand::close,
    )
    .await?;
    let measured = rounds::run_paired(SCENARIOS.len(), args.common.rounds, async |i| {
        stands[i].slice(args, &tokens).await
    })
    .await;
    let closed = stands::close_all(stands, Stand::close).await;
    let measured = measured?;
    let mut scenarios = vec![baseline(SCENARIOS[0].0, &measured.baseline)];
    for ((name, _, _), pairs) in SCENARIOS[1..].iter().zip(&measured.pairs) {
        let mut scenario = report::Scenario::new(name);
        for pair in pairs {
            scenario.rates.push(pair.scenario.msgs_per_s);
            scenario.cpu.push(pair.scenario.cpu);
            let ratio = pair.scenario.msgs_per_s / pair.baseline.msgs_per_s;
            scenario.paired_ratios.push(ratio);
        }
        scenarios.push(scenario);
    }
    for (scenario, closed) in scenarios.iter_mut().zip(closed) {
        let closed = closed?;
        scenario.peak_rss_mb.extend(closed.gate.peak_rss_mb);
        scenario.fail(closed.lost);
        if let Some(relay) = closed.gate.relay {
            scenario.fail_in_relay(relay.failures);
        }
    }
    let mut extra = report::settings(args);
    extra["queue_type"] = queue_type_name(args.common.queue_type).into();
    report::print(&scenarios, SCENARIOS[0].0, &extra, args.common.json);
    Ok(())
}

/// The baseline's figures: per round the median rate of its slices in that
/// round, and the CPU of every slice.
fn baseline(name: &'static str, rounds: &[Vec<Measured>]) -> report::Scenario {
    let mut scenario = report::Scenario::new(name);
    for slices in rounds {
        let rates: Vec<f64> = slices.iter().map(|m| m.msgs_per_s).collect();
        scenario.rates.extend(stats::median(&rates));
        scenario.cpu.extend(slices.iter().map(|m| m.cpu));
    }
    scenario
}

impl Stand {
    /// Sets up the gate `kind` on a bus of its own and opens the path through
    /// it to the sink; the bus is deleted again when this fails.
    async fn open(
        args: &RouterArgs,
        keys: &Arc<BenchKeys>,
        kind: GateKind,
        assertion: AssertionAlg,
        tokens: &Tokens,
    ) -> anyhow::Result<Self> {
        tracing::info!(gate = ?kind, "Bench scenario.");
        let (bus, transport) = fresh_bus(&args.common, keys, "tollgate-bench-client").await?;
        match Self::start(args, &bus, &transport, (kind, assertion), tokens).await {
            Ok((gate, path)) => Ok(Self {
                bus,
                transport,
                kind,
                assertion,
                gate,
                path,
            }),
            Err(e) => {
                stands::discard_bus(&bus, &transport).await;
                Err(e)
            }
        }
    }

    async fn start(
        args: &RouterArgs,
        bus: &BenchBus,
        transport: &Arc<dyn Transport>,
        (kind, assertion): (GateKind, AssertionAlg),
        tokens: &Tokens,
    ) -> anyhow::Result<(Gate, Path)> {
        let gate = Gate::start(kind, bus, transport.as_ref()).await?;
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
        let path = Path::open(args, transport, entry, &sink, request).await?;
        Ok((gate, path))
    }

    /// Drives one slice of traffic through the gate and measures it. The
    /// sink's registration is renewed first (its lease outlives a slice,
    /// not a whole run).
    async fn slice(&mut self, args: &RouterArgs, tokens: &Tokens) -> anyhow::Result<Measured> {
        if self.kind != GateKind::Relay {
            register_sink(
                &self.bus,
                self.transport.as_ref(),
                &tokens.service,
                self.assertion,
            )
            .await?;
        }
        let parties = Parties::with_gate(self.gate.pid());
        let measured = self.path.run(args.common.duration, parties).await?;
        self.gate.ensure_running()?;
        Ok(measured)
    }

    /// Stops the path and the gate, and deletes the bus.
    async fn close(self) -> anyhow::Result<Closed> {
        let lost = self.path.close().await;
        let gate = self.gate.stop().await;
        let removed = remove_bus(&self.bus, &self.transport).await;
        let closed = Closed { lost, gate: gate? };
        removed?;
        Ok(closed)
    }
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
