//! `tollgate bench rpc`: request → reply through a gate process (`tollgate
//! serve`, or the baseline relay) and an SDK service, called by the SDK
//! caller: latency at one call in flight, calls/s at `--in-flight`. Every
//! scenario stays up for the whole run; each round calls through every
//! scenario for a slice right beside a slice of the relay.

use std::{collections::HashMap, sync::Arc};

use serde_json::json;

use super::{
    RpcArgs,
    keys::{self, BenchKeys, CALLER_HS256, SERVICE_ACCOUNT},
    payload, rounds,
    router_config::queue_type_name,
    stands,
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

use calls::Call;
use report::Summary;
use stand::Stand;

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
    let mut stands = stands::open_all(
        scenarios.iter().copied(),
        async |scenario| Stand::open(args, &setup, scenario).await,
        Stand::close,
    )
    .await?;
    let measured = rounds::run_paired(scenarios.len(), rounds, async |i| {
        stands[i].slice(args, &setup.call).await
    })
    .await;
    let closed = stands::close_all(stands, Stand::close).await;
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
