//! One `bench rpc` scenario kept up for the whole run: its bus, its gate,
//! the echo service (and the central auth service), and a caller whose
//! first call was answered. It waits idle between its slices of calls.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::bail;
use tollgate_bus::Transport;
use tollgate_services::{Caller, RunningService};

use crate::cli::bench::{
    RpcArgs,
    bench_bus::{BenchBus, fresh_bus, remove_bus},
    cpu::Parties,
    drive,
    gate::{Gate, GateReport},
    stands,
    stats::{ms, percentile},
};

use super::{
    Setup,
    calls::{self, Call, Phase},
    central,
    client::Client,
    echo,
    report::Figures,
    scenario::Scenario,
    tokens::Tokens,
};

/// How long a fresh bus may take to carry its first call.
const FIRST_REPLY_TIMEOUT: Duration = Duration::from_secs(15);

/// A scenario's parties, running, and the calls' client and tokens.
pub(super) struct Stand {
    started: Started,
    client: Client,
    /// Handed out across all slices: a fresh-token scenario's router keeps
    /// its verified tokens for the whole run, so no token is used twice.
    tokens: Tokens,
}

impl Stand {
    /// Starts `scenario` on a bus of its own and waits for its first reply;
    /// whatever was started is stopped again, and the bus deleted, when this
    /// fails.
    pub(super) async fn open(
        args: &RpcArgs,
        setup: &Setup,
        scenario: Scenario,
    ) -> anyhow::Result<Self> {
        tracing::info!(scenario = scenario.name(), "Bench scenario.");
        let mut common = args.common.clone();
        if !scenario.holds_calls() {
            common.hold_calls = Some(0);
        }
        let (bus, admin) = fresh_bus(&common, &setup.keys, "tollgate-bench-rpc").await?;
        let gate = match Gate::start(scenario.gate(), &bus, admin.as_ref()).await {
            Ok(gate) => gate,
            Err(e) => {
                stands::discard_bus(&bus, &admin).await;
                return Err(e);
            }
        };
        let mut started = Started {
            scenario,
            bus,
            admin,
            gate,
            service: None,
            auth_service: None,
            caller: None,
        };
        match started.start(args, setup).await {
            Ok((client, tokens)) => Ok(Self {
                started,
                client,
                tokens,
            }),
            Err(e) => {
                if let Err(cleanup) = started.stop().await {
                    tracing::warn!(error = %cleanup, "Stopping a bench scenario failed.");
                }
                Err(e)
            }
        }
    }

    /// Calls through the gate for one slice: a warm-up at `--in-flight`,
    /// one call at a time for `--duration` (latency), then `--in-flight`
    /// for `--duration` (calls/s, and the gate's CPU per call).
    pub(super) async fn slice(&mut self, args: &RpcArgs, call: &Call) -> anyhow::Result<Figures> {
        let (client, tokens, n) = (&self.client, &self.tokens, args.in_flight);
        let warm_up = calls::run(client, call, tokens, n, args.warm_up).await?;
        let idle = calls::run(client, call, tokens, 1, args.common.duration).await?;
        let gate = &mut self.started.gate;
        let parties = Parties::with_gate(gate.pid());
        let before = parties.read();
        let loaded = calls::run(client, call, tokens, n, args.common.duration).await?;
        let cpu = before.per_message(&parties.read(), loaded.latencies.len() as u64);
        gate.ensure_running()?;
        Ok(Figures {
            gate_cpu_us_per_call: cpu.gate_us,
            ..figures(&warm_up, &idle, &loaded)
        })
    }

    /// Stops the services and the gate (its peak memory read over the whole
    /// run), and deletes the bus.
    pub(super) async fn close(self) -> anyhow::Result<GateReport> {
        drop(self.client);
        self.started.stop().await
    }
}

/// What a stand has started so far.
struct Started {
    scenario: Scenario,
    bus: BenchBus,
    /// The bench's own connection to the bus (declarations, deletion).
    admin: Arc<dyn Transport>,
    gate: Gate,
    /// The echo service and the connection it runs on.
    service: Option<(RunningService, Arc<dyn Transport>)>,
    /// The central auth service (central scenarios).
    auth_service: Option<(RunningService, Arc<dyn Transport>)>,
    caller: Option<(Arc<Caller>, Arc<dyn Transport>)>,
}

impl Started {
    /// Starts the services and the caller, and calls until the first reply.
    async fn start(&mut self, args: &RpcArgs, setup: &Setup) -> anyhow::Result<(Client, Tokens)> {
        let amqp = &args.common.amqp;
        let (bus, scenario) = (&self.bus, self.scenario);
        let transport = drive::connect(amqp, "tollgate-bench-echo").await?;
        let service = echo::service(scenario, bus, &setup.service_token)?
            .run(Arc::clone(&transport), bus.names.clone())
            .await;
        self.service = Some((service?, transport));
        if scenario.is_central() {
            let transport = drive::connect(amqp, "tollgate-bench-auth").await?;
            let auth = central::start(bus, &setup.service_token, Arc::clone(&transport)).await;
            self.auth_service = Some((auth?, transport));
        }
        let transport = drive::connect(amqp, "tollgate-bench-caller").await?;
        let caller = Caller::connect(Arc::clone(&transport), bus.names.clone()).await;
        let caller = Arc::new(caller?);
        self.caller = Some((Arc::clone(&caller), transport));
        let token: Arc<str> = if scenario.is_central() {
            central::login(&caller, &setup.token).await?.into()
        } else {
            Arc::clone(&setup.token)
        };
        let client = match scenario {
            Scenario::HttpGateway => Client::Http(bus.http_addr.clone()),
            _ => Client::Amqp(caller),
        };
        await_first_reply(&client, &setup.call, &token).await?;
        let tokens = match scenario.fresh_tokens_of() {
            Some(consumer) => Tokens::fresh(&setup.pools[consumer]),
            None => Tokens::Fixed(token),
        };
        Ok((client, tokens))
    }

    /// Stops whatever was started, the services first, then the gate;
    /// deletes the bus whatever failed on the way.
    async fn stop(self) -> anyhow::Result<GateReport> {
        let mut stopped: anyhow::Result<()> = Ok(());
        for (service, transport) in [self.service, self.auth_service].into_iter().flatten() {
            if let Err(e) = service.shutdown().await {
                stopped = stopped.and(Err(e.into()));
            }
            transport.close().await.ok();
        }
        if let Some((caller, transport)) = self.caller {
            drop(caller);
            transport.close().await.ok();
        }
        let gate = self.gate.stop().await;
        let removed = remove_bus(&self.bus, &self.admin).await;
        let gate = gate?;
        stopped?;
        removed?;
        Ok(gate)
    }
}

/// Calls (with the fixed token) until a reply comes: the gate consumes and
/// the router has learnt the service's registration.
async fn await_first_reply(client: &Client, call: &Call, token: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut line = client.line();
    loop {
        match line
            .call(&call.payload, token, Duration::from_secs(1))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() > FIRST_REPLY_TIMEOUT => {
                bail!("no reply within {FIRST_REPLY_TIMEOUT:?}: {e}")
            }
            Err(e) => {
                tracing::debug!(error = %e, "No reply yet.");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The figures of one slice (its CPU per call aside).
fn figures(warm_up: &Phase, idle: &Phase, loaded: &Phase) -> Figures {
    let at = |phase: &Phase, q| percentile(&phase.latencies, q).map(ms);
    Figures {
        calls_per_s: loaded.calls_per_s(),
        p50_ms: at(idle, 0.5),
        p99_ms: at(idle, 0.99),
        p999_ms: at(idle, 0.999),
        p50_loaded_ms: at(loaded, 0.5),
        failures: warm_up.failures + idle.failures + loaded.failures,
        pool_exhausted: warm_up.exhausted || idle.exhausted || loaded.exhausted,
        gate_cpu_us_per_call: None,
    }
}
