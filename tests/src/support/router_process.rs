//! `tollgate serve` as a child process, for tests that kill, terminate or
//! scrape a real router.

use std::{
    process::{Child, Command, ExitStatus, Stdio},
    time::Duration,
};

use tollgate_bus::{Transport, TransportError};

use super::{TestBus, amqp_url, tollgate_binary};

/// A router process on `bus`'s config, killed if the test ends early.
pub struct RouterProcess {
    child: Child,
    instance: String,
}

impl RouterProcess {
    /// Starts `tollgate serve` as instance `instance`, with `metrics_addr`
    /// (empty: no metrics endpoint).
    pub fn spawn(bus: &TestBus, instance: &str, metrics_addr: &str) -> Self {
        let child = Command::new(tollgate_binary())
            .args(["serve", "--config"])
            .arg(bus.config_path())
            .env("TOLLGATE_INSTANCE", instance)
            .env("TOLLGATE_METRICS_ADDR", metrics_addr)
            .env("TOLLGATE_AMQP_URL", amqp_url())
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tollgate serve");
        Self {
            child,
            instance: instance.to_owned(),
        }
    }

    /// Waits (up to 60 s) until the router listens on its control queue.
    ///
    /// # Panics
    /// When it does not start in time.
    pub async fn wait_started(&self, bus: &TestBus, transport: &dyn Transport) {
        let queue = bus.names.router_control_queue(&self.instance);
        for _ in 0..600 {
            // The queue is exclusive to the router's connection: "locked" means it exists.
            if matches!(
                transport.inspect(&queue).await,
                Ok(_) | Err(TransportError::PreconditionFailed(_))
            ) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("router {} did not start within 60 s", self.instance);
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("router status").is_none()
    }

    /// SIGTERM, then the exit status (the router finishes in-flight messages first).
    ///
    /// # Panics
    /// When the router does not stop within 10 s.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().expect("router status") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the router did not stop within 10 s of SIGTERM");
    }

    /// SIGKILL: no chance to settle anything.
    pub fn kill(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
