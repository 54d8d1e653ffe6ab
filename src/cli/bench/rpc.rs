//! `tollgate bench rpc`: request → reply through a gate process (`tollgate
//! serve`, or the baseline relay) and an SDK service, called by the SDK
//! caller: latency at one call in flight, calls/s at `--in-flight`.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::bail;
use serde_json::json;
use tollgate_bus::Transport;
use tollgate_services::Caller;

use super::{
    RpcArgs,
    bench_bus::{BenchBus, on_fresh_bus},
    cpu::Parties,
    drive,
    gate::{Gate, GateReport},
    keys::{self, BenchKeys, CALLER_HS256, SERVICE_ACCOUNT},
    payload, rounds,
    router_config::queue_type_name,
    stats::{ms, percentile},
};

mod calls;
mod central;
mod chart;
mod client;
mod echo;
mod report;
mod scenario;
mod tokens;

use calls::{Call, Phase};
use client::Client;
use report::{Figures, Summary};
use scenario::Scenario;
use tokens::Tokens;

/// How long a fresh bus may take to carry its first call.
const FIRST_REPLY_TIMEOUT: Duration = Duration::from_secs(15);

/// What every scenario run shares: keys, tokens, the call.
struct Setup {
    keys: Arc<BenchKeys>,
    /// The HS256 caller's one token (cached scenarios, and the first call of each run).
    token: Arc<str>,
    /// The echo service's registration token.
    service_token: String,
    /// Pre-signed distinct tokens per caller of a fresh-token scenario.
    pools: HashMap<&'static str, Arc<[String]>>,
    call: Call,
}

pub(crate) async fn run(args: &RpcArgs) -> anyhow::Result<()> {
    let scenarios = scenario::select(&args.scenarios)?;
    let keys = BenchKeys::generate()?;
    let issuer = Arc::new(keys.issuer()?);
    let pool_size = tokens::pool_size(args.common.duration, args.warm_up);
    let mut pools = HashMap::new();
    for caller in scenarios.iter().filter_map(|s| s.fresh_tokens_of()) {
        tracing::info!(caller, pool_size, "Signing a token pool.");
        pools.insert(caller, tokens::sign_pool(&issuer, caller, pool_size).await?);
    }
    let setup = Setup {
        token: keys::token(&issuer, CALLER_HS256)?.into(),
        service_token: keys::registration_token(&issuer, SERVICE_ACCOUNT)?,
        keys,
        pools,
        call: Call {
            payload: payload::body(args.common.size).into(),
            timeout: args.timeout,
        },
    };
    let results = rounds::run_rotated(scenarios.len(), args.common.rounds, async |i| {
        measure(args, &setup, scenarios[i]).await
    })
    .await?;
    let summaries: Vec<Summary> = scenarios
        .iter()
        .zip(results)
        .map(|(s, rounds)| Summary {
            name: s.name(),
            rounds,
        })
        .collect();
    let settings = json!({
        "in_flight": args.in_flight,
        "payload_bytes": args.common.size,
        "queue_type": queue_type_name(args.common.queue_type),
        "prefetch": args.common.prefetch,
        "router_threads": args.common.router_threads,
        "rounds": args.common.rounds.max(1),
        "duration_s": args.common.duration.as_secs_f64(),
        "warm_up_s": args.warm_up.as_secs_f64(),
        "token_pool": pool_size,
    });
    let lines = report::lines(&summaries, &settings);
    report::print(&lines, args.common.json);
    if let Some(path) = &args.chart {
        let title = format!(
            "tollgate bench rpc: {} queues, {} in flight, {} B, median of {} rounds",
            queue_type_name(args.common.queue_type),
            args.in_flight,
            args.common.size,
            args.common.rounds.max(1)
        );
        chart::write(path, &lines, &title)?;
        tracing::info!(chart = %path.display(), "Chart written.");
    }
    Ok(())
}

/// One run of `scenario` on a bus of its own, deleted afterwards.
async fn measure(args: &RpcArgs, setup: &Setup, scenario: Scenario) -> anyhow::Result<Figures> {
    tracing::info!(scenario = scenario.name(), "Bench scenario.");
    let run = async |bus: &BenchBus, t: &_| measure_on(args, setup, scenario, bus, t).await;
    let mut common = args.common.clone();
    if !scenario.holds_calls() {
        common.hold_calls = Some(0);
    }
    on_fresh_bus(&common, &setup.keys, "tollgate-bench-rpc", run).await
}

async fn measure_on(
    args: &RpcArgs,
    setup: &Setup,
    scenario: Scenario,
    bus: &BenchBus,
    admin: &Arc<dyn Transport>,
) -> anyhow::Result<Figures> {
    let amqp = &args.common.amqp;
    let mut gate = Gate::start(scenario.gate(), bus, admin.as_ref()).await?;
    let service_transport = drive::connect(amqp, "tollgate-bench-echo").await?;
    let service = echo::service(scenario, bus, &setup.service_token)?
        .run(Arc::clone(&service_transport), bus.names.clone())
        .await?;
    let auth_service = if scenario.is_central() {
        let transport = drive::connect(amqp, "tollgate-bench-auth").await?;
        Some(central::start(bus, &setup.service_token, transport).await?)
    } else {
        None
    };
    let caller_transport = drive::connect(amqp, "tollgate-bench-caller").await?;
    let caller = Arc::new(Caller::connect(Arc::clone(&caller_transport), bus.names.clone()).await?);
    let token: Arc<str> = if scenario.is_central() {
        central::login(&caller, &setup.token).await?.into()
    } else {
        Arc::clone(&setup.token)
    };
    let client = match scenario {
        Scenario::HttpGateway => Client::Http(bus.http_addr.clone()),
        _ => Client::Amqp(Arc::clone(&caller)),
    };
    await_first_reply(&client, &setup.call, &token).await?;
    let tokens = match scenario.fresh_tokens_of() {
        Some(consumer) => Tokens::fresh(&setup.pools[consumer]),
        None => Tokens::Fixed(token),
    };
    let (call, n) = (&setup.call, args.in_flight);
    let warm_up = calls::run(&client, call, &tokens, n, args.warm_up).await?;
    let idle = calls::run(&client, call, &tokens, 1, args.common.duration).await?;
    let parties = Parties::with_gate(gate.pid());
    let before = parties.read();
    let loaded = calls::run(&client, call, &tokens, n, args.common.duration).await?;
    let cpu = before.per_message(&parties.read(), loaded.latencies.len() as u64);
    gate.ensure_running()?;
    service.shutdown().await?;
    if let Some(auth) = auth_service {
        auth.shutdown().await?;
    }
    drop((client, caller));
    let gate = gate.stop().await?;
    service_transport.close().await.ok();
    caller_transport.close().await.ok();
    Ok(Figures {
        gate_cpu_us_per_call: cpu.gate_us,
        ..figures(&warm_up, &idle, &loaded, &gate)
    })
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

/// The figures of one run (its CPU per call aside).
fn figures(warm_up: &Phase, idle: &Phase, loaded: &Phase, gate: &GateReport) -> Figures {
    let at = |phase: &Phase, q| percentile(&phase.latencies, q).map(ms);
    Figures {
        calls_per_s: loaded.calls_per_s(),
        p50_ms: at(idle, 0.5),
        p99_ms: at(idle, 0.99),
        p999_ms: at(idle, 0.999),
        p50_loaded_ms: at(loaded, 0.5),
        peak_rss_mb: gate.peak_rss_mb,
        failures: warm_up.failures + idle.failures + loaded.failures,
        relay_failures: gate.relay.map(|t| t.failures),
        pool_exhausted: warm_up.exhausted || idle.exhausted || loaded.exhausted,
        gate_cpu_us_per_call: None,
    }
}
