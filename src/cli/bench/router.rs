//! `tollgate bench router`: requests through `tollgate serve` (gateway mode:
//! verify, authorize, translate, assert, deliver with confirm; and service
//! mode) into a service queue, against the baseline relay process on the
//! same exchanges and queues, measured in the same run: every gate runs for
//! the whole run, and the rounds alternate slices of traffic between them,
//! each router scenario's slice right beside one of the relay.

use std::{sync::Arc, time::Duration};

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
    gate: Gate,
    path: Path,
    /// Renews the sink's registration for the whole run (routers).
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    /// Dead letters once the path was open: the probes refused `no_route`
    /// before the router knew the sink, which are not the slices'.
    dead_at_open: u64,
}

/// What a closed stand counted over the whole run.
struct Closed {
    /// Messages published that never reached the sink.
    lost: u64,
    /// Messages the gate refused during the slices (dead letters).
    dead_letters: u64,
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
        stands[i].slice(args).await
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
        scenario.dead_letters = Some(closed.dead_letters);
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
            Ok((gate, path, dead_at_open)) => {
                let heartbeat = (kind != GateKind::Relay).then(|| {
                    tokio::spawn(renew_sink(
                        control(&bus),
                        Arc::clone(&transport),
                        tokens.service.clone(),
                        assertion,
                    ))
                });
                Ok(Self {
                    bus,
                    transport,
                    gate,
                    path,
                    heartbeat,
                    dead_at_open,
                })
            }
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
    ) -> anyhow::Result<(Gate, Path, u64)> {
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
        let dead = u64::from(transport.inspect(bus.names.dead_queue()).await?.messages);
        Ok((gate, path, dead))
    }

    /// Drives one slice of traffic through the gate and measures it.
    async fn slice(&mut self, args: &RouterArgs) -> anyhow::Result<Measured> {
        let parties = Parties::with_gate(self.gate.pid()).with_broker_at(&args.common.amqp);
        let measured = self.path.run(args.common.duration, parties).await?;
        self.gate.ensure_running()?;
        Ok(measured)
    }

    /// Stops the path and the gate, counts the dead letters, and deletes
    /// the bus.
    async fn close(self) -> anyhow::Result<Closed> {
        if let Some(heartbeat) = &self.heartbeat {
            heartbeat.abort();
        }
        let lost = self.path.close().await;
        let gate = self.gate.stop().await;
        let dead_letters = self.transport.inspect(self.bus.names.dead_queue()).await;
        let removed = remove_bus(&self.bus, &self.transport).await;
        let closed = Closed {
            lost,
            dead_letters: u64::from(dead_letters?.messages).saturating_sub(self.dead_at_open),
            gate: gate?,
        };
        removed?;
        Ok(closed)
    }
}

/// How long the sink's registration lives without a heartbeat.
const SINK_TTL: Duration = Duration::from_secs(60);

/// Announces the sink service to the routers (which then route `sink.*` to
/// its queue), as the SDK does for a service.
async fn register_sink(
    bus: &BenchBus,
    transport: &dyn Transport,
    token: &str,
    assertion: AssertionAlg,
) -> anyhow::Result<()> {
    let register = Announcement::Register(sink(assertion));
    announce(&control(bus), transport, token, register).await
}

/// Sends the sink's heartbeat every third of its lease, as the SDK does for
/// a service, so that a run longer than the lease never finds the route
/// gone (its requests would be refused `no_route` until the next
/// registration reached the router). Runs until aborted.
async fn renew_sink(
    control: Address,
    transport: Arc<dyn Transport>,
    token: String,
    assertion: AssertionAlg,
) {
    let mut every = tokio::time::interval(SINK_TTL / 3);
    every.tick().await;
    loop {
        every.tick().await;
        let heartbeat = Announcement::Heartbeat(sink(assertion));
        if let Err(e) = announce(&control, transport.as_ref(), &token, heartbeat).await {
            tracing::warn!(error = %e, "Cannot renew the bench sink's registration.");
        }
    }
}

/// The sink service's registration.
fn sink(assertion: AssertionAlg) -> Registration {
    Registration {
        service: SINK.into(),
        instance: "bench".into(),
        content_type: "application/json".into(),
        schema_version: "1".into(),
        ttl_secs: SINK_TTL.as_secs(),
        assertion,
    }
}

/// Where announcements to the bus's routers go.
fn control(bus: &BenchBus) -> Address {
    Address::new(bus.names.control_exchange(), "")
}

/// Publishes `announcement` to the bus's routers, with the sink's token.
async fn announce(
    control: &Address,
    transport: &dyn Transport,
    token: &str,
    announcement: Announcement,
) -> anyhow::Result<()> {
    let envelope = announcement.to_envelope(Some(token))?;
    transport.publish(control, &envelope).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use tollgate_bus::{BusNames, MemoryTransport, SubscribeOptions};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_sink_sends_a_heartbeat_every_third_of_its_lease() {
        let names = BusNames::new("bench-heartbeat");
        let transport: Arc<dyn Transport> = Arc::new(MemoryTransport::new());
        let listener = "bench-heartbeat.listener";
        transport
            .declare(&bus_topology::core(&names))
            .await
            .unwrap();
        transport
            .declare(&bus_topology::control_listener(&names, listener))
            .await
            .unwrap();
        let mut heard = transport
            .subscribe(listener, SubscribeOptions::prefetch(8))
            .await
            .unwrap();
        let control = Address::new(names.control_exchange(), "");
        let renew = tokio::spawn(renew_sink(
            control,
            Arc::clone(&transport),
            "token".into(),
            AssertionAlg::HS256,
        ));

        for _ in 0..3 {
            let before = tokio::time::Instant::now();
            let delivery = tokio::time::timeout(SINK_TTL, heard.next())
                .await
                .expect("a heartbeat within the lease")
                .expect("the listener's queue is there");
            assert_eq!(
                before.elapsed(),
                SINK_TTL / 3,
                "one a third of the lease after the last"
            );
            let announcement = Announcement::from_bytes(&delivery.envelope.payload).unwrap();
            assert_eq!(
                announcement,
                Announcement::Heartbeat(sink(AssertionAlg::HS256))
            );
            delivery.ack().await.unwrap();
        }
        renew.abort();
    }
}
