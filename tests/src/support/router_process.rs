//! `tollgate serve` as a child process, for tests that kill, terminate or
//! scrape a real router, or put a fault between it and the broker.

use std::{
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use tollgate_bus::{Transport, TransportError};

use super::{TestBus, amqp_url, tollgate_binary, wait_until};

/// A router process on `bus`'s config, serving `/metrics` on a free local
/// port and logging warnings (or `TOLLGATE_TEST_ROUTER_LOG`) to a file in
/// the bus's folder; killed if the test ends early.
pub struct RouterProcess {
    child: Child,
    instance: String,
    metrics_addr: String,
    log: PathBuf,
    config: PathBuf,
    amqp_url: String,
    env: Vec<(String, String)>,
    args: Vec<String>,
}

impl RouterProcess {
    /// Starts `tollgate serve` as instance `instance` on the test broker.
    pub fn spawn(bus: &TestBus, instance: &str) -> Self {
        Self::spawn_via(bus, instance, &amqp_url())
    }

    /// Starts `tollgate serve` as instance `instance`, connecting to `amqp_url`
    /// (e.g. a [`super::ChaosProxy`] in front of the broker).
    pub fn spawn_via(bus: &TestBus, instance: &str, amqp_url: &str) -> Self {
        Self::spawn_full(bus, instance, amqp_url, &[], &[])
    }

    /// Starts `tollgate serve` as instance `instance` on the test broker with
    /// extra environment variables `env` (e.g. `RUST_MIN_STACK`).
    pub fn spawn_with_env(bus: &TestBus, instance: &str, env: &[(&str, &str)]) -> Self {
        Self::spawn_full(bus, instance, &amqp_url(), env, &[])
    }

    /// Starts `tollgate serve` as instance `instance` on the test broker with
    /// extra environment variables `env` (`RUST_LOG` among them replaces the
    /// test default; an empty one leaves the router's own default) and extra
    /// arguments `args` after `serve` (e.g. `--log-format json`).
    pub fn spawn_with(bus: &TestBus, instance: &str, env: &[(&str, &str)], args: &[&str]) -> Self {
        Self::spawn_full(bus, instance, &amqp_url(), env, args)
    }

    /// Starts `tollgate serve` as instance `instance`, connecting to
    /// `amqp_url`, with extra environment variables `env` and arguments `args`.
    pub fn spawn_full(
        bus: &TestBus,
        instance: &str,
        amqp_url: &str,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Self {
        let log = bus.dir.join(format!("router-{instance}.log"));
        let (config, metrics_addr) = (bus.config_path(), free_local_addr());
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let child = start(
            &config,
            instance,
            &metrics_addr,
            amqp_url,
            &log,
            &env,
            &args,
        );
        Self {
            child,
            instance: instance.to_owned(),
            metrics_addr,
            log,
            config,
            amqp_url: amqp_url.to_owned(),
            env,
            args,
        }
    }

    /// Starts the process again on another port when another test took its
    /// metrics port between choosing it and the router binding it; `true`
    /// when it did.
    fn restart_if_port_taken(&mut self) -> bool {
        let exited = matches!(self.child.try_wait(), Ok(Some(_)));
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        if !exited || !log.contains("Address already in use") {
            return false;
        }
        self.metrics_addr = free_local_addr();
        self.child = start(
            &self.config,
            &self.instance,
            &self.metrics_addr,
            &self.amqp_url,
            &self.log,
            &self.env,
            &self.args,
        );
        true
    }

    /// The file the router writes its warnings and errors to (kept when a
    /// test fails; removed with the bus's folder by [`TestBus::stop`]).
    pub fn log_path(&self) -> &std::path::Path {
        &self.log
    }

    /// Waits (up to 60 s) until the router listens on its control queue and
    /// reports itself ready (`/health/ready`).
    ///
    /// # Panics
    /// When it does not start in time.
    pub async fn wait_started(&mut self, bus: &TestBus, transport: &dyn Transport) {
        let queue = bus.names.router_control_queue(&self.instance);
        let what = format!(
            "router {} to start (log: {})",
            self.instance,
            self.log.display()
        );
        wait_until(&what, Duration::from_secs(60), async || {
            if self.restart_if_port_taken() {
                return false;
            }
            // The queue is exclusive to the router's connection: "locked" means
            // it exists. Ready means its start finished (the control queue
            // bound, every consumer active): an announcement published before
            // could miss a router that is only half started.
            matches!(
                transport.inspect(&queue).await,
                Ok(_) | Err(TransportError::PreconditionFailed(_))
            ) && matches!(
                http_get(&self.metrics_addr, "/health/ready"),
                Some((200, _))
            )
        })
        .await;
    }

    /// Waits (up to 30 s) until the router's registry holds at least
    /// `services` services, as its `/metrics` reports.
    ///
    /// # Panics
    /// When it does not in time.
    pub async fn wait_routing(&self, services: usize) {
        let what = format!("router {} to route to {services} service(s)", self.instance);
        wait_until(&what, Duration::from_secs(30), async || {
            try_scrape(&self.metrics_addr)
                .and_then(|m| gauge(&m, "tollgate_registry_services"))
                .is_some_and(|n| n >= services as f64)
        })
        .await;
    }

    /// How many services the router's registry holds, as its `/metrics`
    /// reports (`None` while the endpoint does not answer).
    pub fn registered_services(&self) -> Option<f64> {
        try_scrape(&self.metrics_addr).and_then(|m| gauge(&m, "tollgate_registry_services"))
    }

    /// How many messages the router delivered to services so far, as its
    /// `/metrics` reports (0 until the endpoint answers).
    pub fn delivered(&self) -> f64 {
        try_scrape(&self.metrics_addr).map_or(0.0, |page| {
            page.lines()
                .filter(|l| {
                    l.starts_with("tollgate_messages_total{") && l.contains("outcome=\"delivered\"")
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        })
    }

    /// The router's `/metrics` page.
    ///
    /// # Panics
    /// When the endpoint does not answer.
    pub fn metrics(&self) -> String {
        try_scrape(&self.metrics_addr)
            .unwrap_or_else(|| panic!("router {} serves no /metrics", self.instance))
    }

    /// `GET path` on the router's operations listener (`/metrics`,
    /// `/health/live`, `/health/ready`): the status and the body; `None`
    /// while nothing answers.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(&self.metrics_addr, path)
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
        self.terminate_within(Duration::from_secs(10))
    }

    /// SIGTERM, then the exit status.
    ///
    /// # Panics
    /// When the router does not stop within `limit`.
    pub fn terminate_within(&mut self, limit: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("router status") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "router {} did not stop within {limit:?} of SIGTERM (log: {})",
            self.instance,
            self.log.display()
        );
    }

    /// SIGHUP: the router reloads its config file.
    ///
    /// # Panics
    /// When the signal cannot be sent.
    pub fn hangup(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -HUP {pid} failed");
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

/// `TOLLGATE_TEST_ROUTER_LOG` (a `RUST_LOG` filter for the routers tests
/// start, e.g. `info,tollgate_bus=debug`), by default `warn`.
/// Spawns `tollgate serve` on `config` as `instance`, logging to `log`.
fn start(
    config: &std::path::Path,
    instance: &str,
    metrics_addr: &str,
    amqp_url: &str,
    log: &std::path::Path,
    env: &[(String, String)],
    args: &[String],
) -> Child {
    let log_file = std::fs::File::create(log).expect("router log file");
    Command::new(tollgate_binary())
        .args(["serve", "--config"])
        .arg(config)
        .args(args)
        .env("TOLLGATE_INSTANCE", instance)
        .env("TOLLGATE_METRICS_ADDR", metrics_addr)
        .env("TOLLGATE_AMQP_URL", amqp_url)
        .env("RUST_LOG", router_log_filter())
        // After the defaults, so a test's own `RUST_LOG` wins.
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("start tollgate serve")
}

fn router_log_filter() -> String {
    std::env::var("TOLLGATE_TEST_ROUTER_LOG").unwrap_or_else(|_| "warn".to_owned())
}

/// A free 127.0.0.1 port, as `host:port`.
pub fn free_local_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").to_string()
}

/// `GET /metrics` over a plain TCP connection; `None` until the endpoint answers 200.
fn try_scrape(addr: &str) -> Option<String> {
    match http_get(addr, "/metrics")? {
        (200, page) => Some(page),
        _ => None,
    }
}

/// `GET path` over a plain TCP connection: the status and the body; `None`
/// when nothing answers.
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or_else(String::new, |(_, body)| body.to_owned());
    Some((status, body))
}

/// The value of the unlabelled series `name` on a Prometheus page.
fn gauge(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}
