//! `tollgate bench rpc`: request → reply through a gate process (`tollgate
//! serve`, or the baseline relay) and an SDK service, called by the SDK
//! caller: latency at one call in flight, calls/s at `--in-flight`. Every
//! scenario stays up for the whole run; each round calls through every
//! scenario for a slice right beside a slice of the relay.

use std::{collections::HashMap, sync::Arc, time::Duration};

use serde_json::json;

use super::{
    RpcArgs,
    gate::GateReport,
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
mod stand;
mod tokens;

use calls::{Call, Phase};
use report::{Figures, Summary};
use stand::Stand;

/// How long a fresh bus may take to carry its first call.
const FIRST_REPLY_TIMEOUT: Duration = Duration::from_secs(15);

/// What every scenario shares: keys, tokens, the call.
struct Setup {
    keys: Arc<BenchKeys>,
    /// The HS256 caller's one token (cached scenarios, and the first call of each stand).
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
    let rounds = args.common.rounds.max(1);
    let pool_size = tokens::pool_size(args.common.duration, args.warm_up, rounds);
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
    // Every scenario's gate and services start once and stay up; each round
    // calls through every scenario for a slice right beside a slice of the
    // relay, while the others wait idle (`rounds::run_paired`).
    let mut stands = Vec::with_capacity(scenarios.len());
    for scenario in &scenarios {
        match Stand::open(args, &setup, *scenario).await {
            Ok(stand) => stands.push(stand),
            Err(e) => {
                close_all(stands).await;
                return Err(e);
            }
        }
    }
    let measured = rounds::run_paired(scenarios.len(), rounds, async |i| {
        stands[i].slice(args, &setup.call).await
    })
    .await;
    let closed = close_all(stands).await;
    let measured = measured?;
    let mut summaries = vec![Summary::baseline(scenarios[0].name(), measured.baseline)];
    for (scenario, pairs) in scenarios[1..].iter().zip(measured.pairs) {
        summaries.push(Summary::paired(scenario.name(), pairs));
    }
    for (summary, closed) in summaries.iter_mut().zip(closed) {
        let gate = closed?;
        summary.peak_rss_mb = gate.peak_rss_mb;
        summary.relay_failures = gate.relay.map(|tally| tally.failures);
    }
    let settings = json!({
        "in_flight": args.in_flight,
        "payload_bytes": args.common.size,
        "queue_type": queue_type_name(args.common.queue_type),
        "prefetch": args.common.prefetch,
        "router_threads": args.common.router_threads,
        "rounds": rounds,
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
            rounds
        );
        chart::write(path, &lines, &title)?;
        tracing::info!(chart = %path.display(), "Chart written.");
    }
    Ok(())
}

/// Closes every stand, in order, whatever the others' outcome.
async fn close_all(stands: Vec<Stand>) -> Vec<anyhow::Result<GateReport>> {
    let mut closed = Vec::with_capacity(stands.len());
    for stand in stands {
        closed.push(stand.close().await);
    }
    closed
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
