//! Faults injected into the local broker with `rabbitmqctl`: a restart of its
//! application and a memory alarm. Both disturb every test on the broker, so
//! only the tests `scripts/broker-faults` and `scripts/chaos` run alone use
//! them; each undoes itself on drop, also when the test fails first.

use std::time::Duration;

use super::wait_until;

/// Runs `rabbitmqctl -q ARGS` and returns its standard output.
///
/// # Panics
/// When rabbitmqctl cannot run or fails.
pub async fn rabbitmqctl(args: &[&str]) -> String {
    let out = tokio::process::Command::new("rabbitmqctl")
        .arg("-q")
        .args(args)
        .output()
        .await
        .expect("run rabbitmqctl (these tests need the broker on this machine)");
    assert!(
        out.status.success(),
        "rabbitmqctl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The local broker's application, stopped (`rabbitmqctl stop_app`: every
/// connection closes, the node stays up); started again by
/// [`StoppedBroker::start`], or on drop.
pub struct StoppedBroker {
    started: bool,
}

impl StoppedBroker {
    /// Stops the broker's application.
    pub async fn stop() -> Self {
        rabbitmqctl(&["stop_app"]).await;
        Self { started: false }
    }

    /// `rabbitmqctl start_app`, then waits until the broker accepts clients.
    pub async fn start(mut self) {
        rabbitmqctl(&["start_app"]).await;
        rabbitmqctl(&["await_startup"]).await;
        self.started = true;
    }
}

impl Drop for StoppedBroker {
    fn drop(&mut self) {
        if !self.started {
            // Best effort: the scripts start it again as well.
            std::process::Command::new("rabbitmqctl")
                .args(["-q", "start_app"])
                .status()
                .ok();
        }
    }
}

/// A memory alarm on the local broker (its watermark near zero): every
/// publishing connection is blocked (`connection.blocked`) until
/// [`MemoryAlarm::clear`] restores the previous watermark, or drop does.
pub struct MemoryAlarm {
    previous: Vec<String>,
    cleared: bool,
}

impl MemoryAlarm {
    /// Lowers the watermark and waits until the broker reports the alarm.
    pub async fn raise() -> Self {
        let alarm = Self {
            previous: watermark().await,
            cleared: false,
        };
        rabbitmqctl(&["set_vm_memory_high_watermark", "0.000001"]).await;
        wait_until("the memory alarm", Duration::from_secs(30), async || {
            alarms().await.contains("memory")
        })
        .await;
        alarm
    }

    /// Restores the watermark and waits until the alarm is gone.
    pub async fn clear(mut self) {
        let args: Vec<&str> = std::iter::once("set_vm_memory_high_watermark")
            .chain(self.previous.iter().map(String::as_str))
            .collect();
        rabbitmqctl(&args).await;
        self.cleared = true;
        wait_until(
            "the memory alarm to clear",
            Duration::from_secs(30),
            async || !alarms().await.contains("memory"),
        )
        .await;
    }
}

impl Drop for MemoryAlarm {
    fn drop(&mut self) {
        if !self.cleared {
            std::process::Command::new("rabbitmqctl")
                .arg("-q")
                .arg("set_vm_memory_high_watermark")
                .args(&self.previous)
                .status()
                .ok();
        }
    }
}

/// The broker's watermark as `set_vm_memory_high_watermark` takes it back.
async fn watermark() -> Vec<String> {
    watermark_args(
        &rabbitmqctl(&["eval", "vm_memory_monitor:get_vm_memory_high_watermark()."]).await,
    )
}

/// `get_vm_memory_high_watermark()`'s output as the arguments
/// `set_vm_memory_high_watermark` takes back: `[fraction]` or
/// `["absolute", bytes]`.
///
/// # Panics
/// On any other output.
pub(super) fn watermark_args(out: &str) -> Vec<String> {
    let out = out.trim();
    match out
        .strip_prefix("{absolute,")
        .and_then(|s| s.strip_suffix('}'))
    {
        Some(bytes) => vec!["absolute".into(), bytes.trim().to_owned()],
        None => {
            assert!(out.parse::<f64>().is_ok(), "unexpected watermark `{out}`");
            vec![out.to_owned()]
        }
    }
}

async fn alarms() -> String {
    rabbitmqctl(&["eval", "rabbit_alarm:get_alarms()."]).await
}
