//! The gate a bench measures, as its own process: `tollgate serve` (the
//! router exactly as an operator runs it: its config file, its log, its
//! metrics endpoint) or the baseline relay process, on the same bus.

use std::{ffi::OsString, time::Duration};

use anyhow::{Context as _, bail};
use tollgate_bus::{Transport, bus_topology};

use super::{
    bench_bus::{AuthMode, BenchBus},
    child::ChildProcess,
    relay::Tally,
    router_config::queue_type_name,
};

/// How long a gate may take to start consuming.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Which gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GateKind {
    /// The baseline relay (`tollgate bench relay-process`).
    Relay,
    /// `tollgate serve` with `default_auth` set to this mode.
    Router(AuthMode),
    /// `tollgate serve` in gateway mode, with its HTTP entry on the bus's
    /// `http_addr`.
    HttpRouter,
}

/// A running gate process, killed if dropped before [`stop`](Gate::stop).
pub(crate) struct Gate {
    kind: GateKind,
    child: ChildProcess,
}

/// What a gate reports once stopped.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GateReport {
    /// The process's peak resident memory (MB), read just before it was stopped.
    pub(crate) peak_rss_mb: Option<f64>,
    /// The relay's counts (the relay only).
    pub(crate) relay: Option<Tally>,
}

impl Gate {
    /// Starts `kind` on `bus` and returns once it consumes the ingress and
    /// replies queues (checked through `transport`). Errors, with the end of
    /// its log, when it exits or does not consume within 30 s.
    pub(crate) async fn start(
        kind: GateKind,
        bus: &BenchBus,
        transport: &dyn Transport,
    ) -> anyhow::Result<Self> {
        // Declared alike by every party of a bus (idempotent): the gate
        // declares it too, and the queues exist to be watched meanwhile.
        transport.declare(&bus_topology::core(&bus.names)).await?;
        let child = match kind {
            GateKind::Relay => {
                let mut args: Vec<OsString> = vec![
                    "bench".into(),
                    "relay-process".into(),
                    "--amqp".into(),
                    bus.amqp.clone().into(),
                    "--namespace".into(),
                    bus.namespace().into(),
                    "--queue-type".into(),
                    queue_type_name(bus.names.queue_type()).into(),
                    "--prefetch".into(),
                    bus.prefetch.to_string().into(),
                    "--threads".into(),
                    bus.threads.to_string().into(),
                ];
                if let Some(hold) = bus.hold_calls {
                    args.extend(["--hold-calls".into(), hold.to_string().into()]);
                }
                ChildProcess::spawn("relay", &args, &bus.log("relay"), true)?
            }
            GateKind::Router(_) | GateKind::HttpRouter => {
                let (mode, http) = match kind {
                    GateKind::Router(mode) => (mode, false),
                    _ => (AuthMode::Gateway, true),
                };
                let config = bus.write_router_config(mode, http)?;
                let args = vec!["serve".into(), "--config".into(), config.into_os_string()];
                ChildProcess::spawn("router", &args, &bus.log("router"), false)?
            }
        };
        let mut gate = Self { kind, child };
        gate.await_consuming(bus, transport).await?;
        Ok(gate)
    }

    /// The gate process's id (`None` once it was reaped).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.pid()
    }

    /// Errors (with the end of its log) when the gate process has exited.
    pub(crate) fn ensure_running(&mut self) -> anyhow::Result<()> {
        self.child.ensure_running()
    }

    /// Reads its peak memory, stops it with SIGTERM (it settles what is in
    /// flight) and, for the relay, reads its counts.
    pub(crate) async fn stop(mut self) -> anyhow::Result<GateReport> {
        let peak_rss_mb = self.child.peak_rss_mb();
        self.child.terminate().await?;
        let relay = match self.kind {
            GateKind::Relay => {
                let line = self.child.next_line(Duration::from_secs(5)).await?;
                Some(serde_json::from_str(&line).context("reading the relay's counts")?)
            }
            GateKind::Router(_) | GateKind::HttpRouter => None,
        };
        Ok(GateReport { peak_rss_mb, relay })
    }

    async fn await_consuming(
        &mut self,
        bus: &BenchBus,
        transport: &dyn Transport,
    ) -> anyhow::Result<()> {
        let queues = [bus.names.ingress_queue(), bus.names.replies_queue()];
        let started = tokio::time::Instant::now();
        loop {
            self.child.ensure_running()?;
            let mut consuming = true;
            for queue in &queues {
                consuming &= matches!(transport.inspect(queue).await, Ok(i) if i.consumers > 0);
            }
            if self.kind == GateKind::HttpRouter {
                consuming &= tokio::net::TcpStream::connect(&bus.http_addr).await.is_ok();
            }
            if consuming {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "the {:?} gate did not consume within {START_TIMEOUT:?}",
                    self.kind
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
