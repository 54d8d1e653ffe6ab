//! The faults of the campaign and how each is injected into a running scene.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use tollgate_bus::Transport;
use tollgate_tests::support::{NodeCtl, RouterProcess, TestBus, amqp_url, example_binary};

/// How long the service stays dead after a SIGKILL.
const SERVICE_DOWN: Duration = Duration::from_secs(3);
/// How long the memory alarm and the full service queue last.
const HOLD: Duration = Duration::from_secs(10);

/// One fault of the campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    RouterKill,
    RouterTerm,
    ServiceKill,
    CloseConnections,
    BrokerRestart,
    MemoryAlarm,
    DeadQueueDeleted,
    IngressDeleted,
    ServiceQueueFull,
}

impl Fault {
    pub(crate) const ALL: [Self; 9] = [
        Self::RouterKill,
        Self::RouterTerm,
        Self::ServiceKill,
        Self::CloseConnections,
        Self::BrokerRestart,
        Self::MemoryAlarm,
        Self::DeadQueueDeleted,
        Self::IngressDeleted,
        Self::ServiceQueueFull,
    ];

    /// The name in the table and in `TOLLGATE_CHAOS_FAULTS`.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::RouterKill => "router-sigkill",
            Self::RouterTerm => "router-sigterm",
            Self::ServiceKill => "service-sigkill",
            Self::CloseConnections => "close-all-connections",
            Self::BrokerRestart => "broker-restart",
            Self::MemoryAlarm => "memory-alarm",
            Self::DeadQueueDeleted => "dead-letter-queue-deleted",
            Self::IngressDeleted => "ingress-queue-deleted",
            Self::ServiceQueueFull => "service-queue-full",
        }
    }
}

/// A bus under test: its routers, the orders service process, the node.
pub(crate) struct Scene<'a> {
    pub(crate) bus: &'a TestBus,
    pub(crate) admin: &'a dyn Transport,
    pub(crate) node: &'a NodeCtl,
    pub(crate) routers: Vec<RouterProcess>,
    pub(crate) service: ServiceProcess,
    /// Routers started so far (names the next one).
    pub(crate) started: usize,
}

impl Scene<'_> {
    /// Starts a router and waits until it routes to the service.
    pub(crate) async fn start_router(&mut self) -> RouterProcess {
        self.started += 1;
        let instance = format!("{}-r{}", self.bus.names.namespace(), self.started);
        let mut router = RouterProcess::spawn(self.bus, &instance);
        router.wait_started(self.bus, self.admin).await;
        router.wait_routing(1).await;
        router
    }

    /// Injects `fault`; returns once it is over (the broken part replaced
    /// or restored).
    pub(crate) async fn inject(&mut self, fault: Fault) {
        let names = &self.bus.names;
        match fault {
            Fault::RouterKill => {
                self.routers[0].kill();
                self.routers[0] = self.start_router().await;
            }
            Fault::RouterTerm => {
                let status = self.routers[0].terminate_within(Duration::from_secs(30));
                assert!(
                    status.success(),
                    "the router exits cleanly on SIGTERM: {status}"
                );
                self.routers[0] = self.start_router().await;
            }
            Fault::ServiceKill => {
                self.service.kill();
                tokio::time::sleep(SERVICE_DOWN).await;
                self.service = ServiceProcess::start(self.bus, "after-kill");
            }
            Fault::CloseConnections => {
                self.node
                    .run(&["close_all_connections", "tollgate chaos campaign"])
                    .await;
            }
            Fault::BrokerRestart => self.node.restart_app().await,
            Fault::MemoryAlarm => self.node.memory_alarm_for(HOLD).await,
            Fault::DeadQueueDeleted => {
                self.node.run(&["delete_queue", names.dead_queue()]).await;
            }
            Fault::IngressDeleted => {
                self.node
                    .run(&["delete_queue", names.ingress_queue()])
                    .await;
            }
            Fault::ServiceQueueFull => {
                let queue = names.service_queue("orders");
                let pattern = format!("^{}$", queue.replace('.', "\\."));
                let policy = format!("{}-full", names.namespace());
                self.node
                    .run(&[
                        "set_policy",
                        "--apply-to",
                        "queues",
                        &policy,
                        &pattern,
                        r#"{"max-length":0,"overflow":"reject-publish"}"#,
                    ])
                    .await;
                tokio::time::sleep(HOLD).await;
                self.node.run(&["clear_policy", &policy]).await;
            }
        }
    }
}

/// The example `orders` service as a process on the campaign's node,
/// logging to the bus's folder; killed on drop.
pub(crate) struct ServiceProcess {
    child: Child,
    pub(crate) log: PathBuf,
}

impl ServiceProcess {
    /// Starts `orders` (its own registration token, the bus's public key).
    pub(crate) fn start(bus: &TestBus, tag: &str) -> Self {
        let key_file = bus.dir.join("bus.pub.pem");
        std::fs::write(&key_file, &bus.assertion_public_pem).expect("write the bus key");
        let log = bus.dir.join(format!("orders-{tag}.log"));
        let child = Command::new(example_binary("orders"))
            .args(["--amqp", &amqp_url(), "--namespace", bus.names.namespace()])
            .args(["--token", &bus.registration_token("orders-svc")])
            .arg("--bus-key")
            .arg(&key_file)
            .env(
                "RUST_LOG",
                std::env::var("TOLLGATE_TEST_SERVICE_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("service log"))
            .spawn()
            .expect("start the orders example");
        Self { child, log }
    }

    /// SIGKILL.
    pub(crate) fn kill(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
