//! `rabbitmqctl` aimed at one named node (`scripts/chaos`'s own node), for
//! faults that must not reach the shared broker: unlike [`super::rabbitmqctl`],
//! which acts on the local default node, every call here goes through a
//! program that names its node (`rabbitmqctl -n NODE` with that node's
//! cookie).

use std::{path::PathBuf, time::Duration};

use super::wait_until;

/// A `rabbitmqctl` for one node.
#[derive(Debug, Clone)]
pub struct NodeCtl {
    program: PathBuf,
    node: String,
}

impl NodeCtl {
    /// The node `scripts/chaos` started: `TOLLGATE_CHAOS_CTL` (its
    /// rabbitmqctl wrapper) and `TOLLGATE_CHAOS_NODE` (its name).
    ///
    /// # Panics
    /// When either is unset, or the node is the shared broker's.
    pub fn from_env() -> Self {
        let program = std::env::var("TOLLGATE_CHAOS_CTL")
            .expect("TOLLGATE_CHAOS_CTL (run scripts/chaos)")
            .into();
        let node = std::env::var("TOLLGATE_CHAOS_NODE").expect("TOLLGATE_CHAOS_NODE");
        assert!(
            !node.starts_with("rabbit@"),
            "{node} looks like the shared broker; scripts/chaos starts a node of its own"
        );
        Self { program, node }
    }

    /// The node's name, e.g. `tgchaos@localhost`.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Runs `rabbitmqctl -n NODE -q ARGS` and returns its standard output.
    ///
    /// # Panics
    /// When it cannot run or fails.
    pub async fn run(&self, args: &[&str]) -> String {
        let out = tokio::process::Command::new(&self.program)
            .arg("-q")
            .args(args)
            .output()
            .await
            .expect("run the node's rabbitmqctl");
        assert!(
            out.status.success(),
            "rabbitmqctl -n {} {} failed: {}",
            self.node,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `stop_app`, then `start_app` and `await_startup`: every connection
    /// closes, durable queues and persistent messages come back.
    pub async fn restart_app(&self) {
        self.run(&["stop_app"]).await;
        self.run(&["start_app"]).await;
        self.run(&["await_startup"]).await;
    }

    /// Raises a memory alarm (watermark near zero: every publishing
    /// connection is blocked) for `hold`, then restores the watermark and
    /// waits until the alarm is gone.
    pub async fn memory_alarm_for(&self, hold: Duration) {
        let previous = self.watermark().await;
        self.run(&["set_vm_memory_high_watermark", "0.000001"])
            .await;
        wait_until("the memory alarm", Duration::from_secs(30), async || {
            self.alarms().await.contains("memory")
        })
        .await;
        tokio::time::sleep(hold).await;
        let restore: Vec<&str> = std::iter::once("set_vm_memory_high_watermark")
            .chain(previous.iter().map(String::as_str))
            .collect();
        self.run(&restore).await;
        wait_until(
            "the memory alarm to clear",
            Duration::from_secs(30),
            async || !self.alarms().await.contains("memory"),
        )
        .await;
    }

    /// The watermark as `set_vm_memory_high_watermark` takes it back.
    async fn watermark(&self) -> Vec<String> {
        super::broker_ctl::watermark_args(
            &self
                .run(&["eval", "vm_memory_monitor:get_vm_memory_high_watermark()."])
                .await,
        )
    }

    async fn alarms(&self) -> String {
        self.run(&["eval", "rabbit_alarm:get_alarms()."]).await
    }
}
