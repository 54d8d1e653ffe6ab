//! A whole bus for integration tests: keys, consumers, policy and mappings
//! written as a real config, a router started on the fixture's broker, and
//! helpers to mint tokens, register raw services and call through the bus.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tollgate_auth::{Algorithm, AssertionSigner, AssertionVerifier, testkit::TestKey};
use tollgate_bus::{
    Address, BusNames, Envelope, QueueKind, QueueSpec, ReplyKey, SubscribeOptions, Subscription,
    Topology, Transport, bus_topology,
    config::Config,
    headers,
    registry::{Announcement, Registration, RegistryTable},
    router::{Router, RunningRouter},
};

use tollgate_services::{RunningService, ServiceBuilder, examples};

use super::Fixture;

/// Consumers of the test bus: callers and the services' own accounts.
pub const CALLERS: [&str; 4] = ["web", "reader", "intruder", "alice"];
/// Service accounts, each granted the service of the same name minus `-svc`
/// (`billing-svc` also `billing-legacy`).
pub const SERVICE_ACCOUNTS: [&str; 6] = [
    "orders-svc",
    "billing-svc",
    "inventory-svc",
    "calc-svc",
    "ledger-svc",
    "auth-svc",
];

/// The audience of registration tokens on a test bus (the default).
pub const REGISTRATION_AUDIENCE: &str = tollgate_bus::config::DEFAULT_REGISTRATION_AUDIENCE;

/// A running router plus everything a test needs around it.
pub struct TestBus {
    /// Names of this bus (namespace = the fixture's).
    pub names: BusNames,
    /// The bus's public assertion key (PEM), for services.
    pub assertion_public_pem: String,
    /// The folder holding the config and keys.
    pub dir: PathBuf,
    keys: Vec<(String, TestKey)>,
    shutdown: CancellationToken,
    running: Option<RunningRouter>,
}

/// The policy and mappings every test bus runs with.
const POLICY_AND_MAPPINGS: &str = r#"
[policy]
[[policy.rules]]
name = "web-orders-billing-inventory"
routes = ["orders.*", "billing.*", "inventory.*", "ghost.*"]
consumers = ["web"]
[[policy.rules]]
name = "reader-orders-get"
routes = ["orders.get"]
consumers = ["reader"]
[[policy.rules]]
name = "alice-sdk-services"
routes = ["orders.*", "calc.*", "ledger.*", "billing-legacy.*"]
consumers = ["alice"]
[[policy.rules]]
name = "web-billing-legacy"
routes = ["billing-legacy.*"]
consumers = ["web"]
[[policy.rules]]
name = "apps-log-users-in"
routes = ["auth.login", "auth.logout", "auth.disable_user"]
consumers = ["web", "alice"]
[[policy.rules]]
name = "staff-use-the-ledger"
routes = ["ledger.*"]
groups = ["staff"]
[[policy.rules]]
name = "alice-changes-trust"
routes = ["tollgate.trust.*"]
consumers = ["alice"]

[registry]
grants = [
  { consumer = "orders-svc", services = ["orders"] },
  { consumer = "billing-svc", services = ["billing", "billing-legacy"] },
  { consumer = "inventory-svc", services = ["inventory"] },
  { consumer = "calc-svc", services = ["calc"] },
  { consumer = "ledger-svc", services = ["ledger"] },
  { consumer = "auth-svc", services = ["auth"] },
]

[[translation.mappings]]
service = "billing"
from = "2"
to = "1"
request = [
  { op = "rename", from = "/customer/id", to = "/customer/number" },
  { op = "move", from = "/amount/cents", to = "/amount_cents" },
  { op = "default", path = "/currency", value = "EUR" },
]
"#;

impl TestBus {
    /// Writes keys and config under a temp folder and starts a router on `fx`.
    pub async fn start(fx: &Fixture) -> Self {
        Self::start_with(fx, "").await
    }

    /// Like [`TestBus::start`], with extra TOML put at the top of the config.
    pub async fn start_with(fx: &Fixture, extra_toml: &str) -> Self {
        Self::start_adjusted(fx, extra_toml, |_| {}).await
    }

    /// Like [`TestBus::start_with`], the loaded config changed by `adjust`
    /// before the router is built (for settings inside the tables the test
    /// bus writes itself, such as `[auth]`).
    pub async fn start_adjusted(
        fx: &Fixture,
        extra_toml: &str,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let mut bus = Self::prepare(fx, extra_toml).await;
        bus.run_router(fx, adjust).await;
        bus
    }

    /// Starts the router of a bus [`TestBus::prepare`]d without one, on `fx`'s
    /// first connection, its config changed by `adjust`.
    pub async fn run_router(&mut self, fx: &Fixture, adjust: impl FnOnce(&mut Config)) {
        let mut config = Config::load(&self.config_path()).unwrap();
        adjust(&mut config);
        let running = Router::from_config(&config)
            .unwrap_or_else(|e| panic!("test config invalid: {e:?}"))
            .start(Arc::clone(fx.transport()), self.shutdown.clone())
            .await
            .unwrap();
        self.running = Some(running);
    }

    /// Like [`TestBus::prepare`], for a bus whose shared queues are of type
    /// `kind` (classic, the default, leaves the config silent about it).
    pub async fn prepare_on(fx: &Fixture, kind: QueueKind) -> Self {
        let queue_type = match kind {
            QueueKind::Classic => "",
            QueueKind::Quorum => "queue_type = \"quorum\"",
        };
        let bus = Self::prepare(fx, queue_type).await;
        assert_eq!(bus.names.queue_type(), kind);
        bus
    }

    /// Writes keys and config and declares the topology, without starting a
    /// router (tests that run `tollgate serve` processes).
    pub async fn prepare(fx: &Fixture, extra_toml: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tollgate-test-{}", fx.ns.prefix()));
        std::fs::create_dir_all(&dir).unwrap();
        let (private, public) = tollgate_auth::generate_assertion_key().unwrap();
        std::fs::write(dir.join("bus.pem"), private).unwrap();
        let mut keys = Vec::new();
        let mut consumers = String::new();
        for name in CALLERS.iter().chain(SERVICE_ACCOUNTS.iter()) {
            let key = TestKey::generate(Algorithm::HS256, format!("{name}-k1"));
            let secret = STANDARD.encode(key.secret.clone().unwrap());
            consumers.push_str(&format!(
                "[[auth.consumers]]\nname = \"{name}\"\nscopes = [\"orders.write\"]\n\
                 [[auth.consumers.credentials]]\nkid = \"{}\"\nalgorithm = \"HS256\"\nsecret_base64 = \"{secret}\"\n",
                key.kid
            ));
            keys.push(((*name).to_owned(), key));
        }
        let toml = format!(
            "namespace = \"{ns}\"\n{extra_toml}\n[auth]\nassertion_key_file = \"bus.pem\"\n{consumers}{POLICY_AND_MAPPINGS}",
            ns = fx.ns.prefix(),
        );
        std::fs::write(dir.join("tollgate.toml"), &toml).unwrap();
        // The config's names: `extra_toml` may set the queue type.
        let names = Config::load(&dir.join("tollgate.toml"))
            .unwrap_or_else(|e| panic!("test config invalid: {e}"))
            .bus_names();
        // Recorded for cleanup (the router declares the same, idempotently).
        fx.declare(&bus_topology::core(&names)).await.unwrap();
        for service in ["orders", "billing", "inventory", "auth", "ledger", "calc"] {
            fx.declare(&bus_topology::service(&names, service))
                .await
                .unwrap();
        }
        Self {
            names,
            assertion_public_pem: public,
            dir,
            keys,
            shutdown: CancellationToken::new(),
            running: None,
        }
    }

    /// The bus's public assertion key, as a service verifies it.
    pub fn bus_key(&self) -> AssertionVerifier {
        AssertionVerifier::from_public_pem(self.assertion_public_pem.as_bytes()).unwrap()
    }

    /// The bus's own assertion signer (the router's private key), to craft
    /// messages that bypass the router with a genuine assertion.
    pub fn assertion_signer(&self) -> AssertionSigner {
        let private = std::fs::read(self.dir.join("bus.pem")).unwrap();
        AssertionSigner::from_pem(&private).unwrap()
    }

    /// The config file of this bus.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("tollgate.toml")
    }

    /// The registry table of the router.
    pub fn registry(&self) -> Arc<RegistryTable> {
        Arc::clone(&self.running.as_ref().unwrap().registry)
    }

    /// An in-process entry into this bus's router (its own pipeline, not
    /// the shared ingress), to send through this router in particular.
    pub async fn open_entry(&self) -> tollgate_bus::router::DirectEntry {
        self.running
            .as_ref()
            .unwrap()
            .open_entry(tollgate_bus::events::Entry::Http)
            .await
            .unwrap()
    }

    /// The handle that reloads the running router's config.
    pub fn handle(&self) -> tollgate_bus::router::RouterHandle {
        self.running.as_ref().unwrap().handle()
    }

    /// The router's central auth client (a bus with central-mode routes).
    pub fn central(&self) -> Option<Arc<tollgate_bus::central::CentralAuth>> {
        self.running.as_ref().and_then(|r| r.central.clone())
    }

    /// A valid token for `consumer`, living `ttl_secs`, with extra `claims`.
    pub fn token_with(&self, consumer: &str, ttl_secs: i64, claims: Value) -> String {
        let key = &self.keys.iter().find(|(n, _)| n == consumer).unwrap().1;
        let now = now() as i64;
        let mut body = json!({"key": consumer, "sub": format!("{consumer}-user"), "iat": now, "exp": now + ttl_secs,
                               "jti": uuid::Uuid::new_v4().to_string()});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), claims.as_object()) {
            body.extend(extra.clone());
        }
        key.sign(&body)
    }

    /// A valid five-minute caller token for `consumer`.
    pub fn token(&self, consumer: &str) -> String {
        self.token_with(consumer, 300, json!({}))
    }

    /// A valid five-minute registration token for the service account `account`
    /// (`aud` is the registration audience).
    pub fn registration_token(&self, account: &str) -> String {
        self.token_with(account, 300, json!({"aud": REGISTRATION_AUDIENCE}))
    }

    /// The key of `consumer`, to craft bad tokens.
    pub fn key(&self, consumer: &str) -> &TestKey {
        &self.keys.iter().find(|(n, _)| n == consumer).unwrap().1
    }

    /// Registers `service` (as its service account) and waits until the router routes to it.
    pub async fn register(
        &self,
        transport: &dyn Transport,
        service: &str,
        content_type: &str,
        version: &str,
    ) {
        self.announce(transport, service, content_type, version)
            .await;
        self.wait_registered(service).await;
    }

    /// Waits until the in-process router routes to `service`.
    pub async fn wait_registered(&self, service: &str) {
        let registered = || self.registry().resolve(service).is_some();
        self.wait_for(registered, &format!("`{service}` to register"))
            .await;
    }

    /// Runs the example `orders` service on `transport` with this bus's
    /// service account and key (`adjust` may change its settings), and waits
    /// until the router routes to it.
    pub async fn run_orders(
        &self,
        transport: Arc<dyn Transport>,
        adjust: impl FnOnce(ServiceBuilder) -> ServiceBuilder,
    ) -> RunningService {
        let builder =
            examples::orders::service(self.registration_token("orders-svc"), self.bus_key());
        let running = adjust(builder)
            .build()
            .unwrap()
            .run(transport, self.names.clone())
            .await
            .unwrap();
        self.wait_registered(examples::orders::NAME).await;
        running
    }

    /// Publishes a registration of `service` (as its service account), without waiting.
    pub async fn announce(
        &self,
        transport: &dyn Transport,
        service: &str,
        content_type: &str,
        version: &str,
    ) {
        let envelope = self.registration(service, content_type, version);
        transport
            .publish(&Address::new(self.names.control_exchange(), ""), &envelope)
            .await
            .unwrap();
    }

    /// Announces `service` (JSON, schema 1) every 2 s until the task is
    /// aborted, as a service's heartbeat does, so its 30 s lease outlives a
    /// long test; an announcement the broker refuses (it is down) is retried
    /// at the next beat.
    pub fn keep_announcing(&self, transport: Arc<dyn Transport>, service: &str) -> JoinHandle<()> {
        let envelope = self.registration(service, "application/json", "1");
        let control = Address::new(self.names.control_exchange(), "");
        tokio::spawn(async move {
            loop {
                if let Err(e) = transport.publish(&control, &envelope).await {
                    tracing::warn!(error = %e, "Announcement failed; retrying at the next beat.");
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    }

    /// A registration of `service` by its service account, leased for 30 s.
    fn registration(&self, service: &str, content_type: &str, version: &str) -> Envelope {
        let registration = Registration {
            service: service.into(),
            instance: format!("{service}-test"),
            content_type: content_type.into(),
            schema_version: version.into(),
            ttl_secs: 30,
            assertion: Default::default(),
        };
        let token = self.registration_token(&format!("{service}-svc"));
        Announcement::Register(registration)
            .to_envelope(Some(&token))
            .unwrap()
    }

    /// Polls `condition` for up to 15 s.
    pub async fn wait_for(&self, condition: impl Fn() -> bool, what: &str) {
        for _ in 0..300 {
            if condition() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// A caller's reply queue on `transport` (named by a fresh reply key), subscribed.
    pub async fn caller_queue(&self, transport: &dyn Transport) -> (ReplyKey, Subscription) {
        let key = ReplyKey::generate();
        transport
            .declare(&bus_topology::caller(&self.names, key.id()))
            .await
            .unwrap();
        let sub = transport
            .subscribe(&key.queue(&self.names), SubscribeOptions::default())
            .await
            .unwrap();
        (key, sub)
    }

    /// A caller's reply queue that outlives its consumer (unlike the SDK's
    /// exclusive one, which the broker deletes with its consumer's
    /// connection), so a test can count what it holds once nobody consumes
    /// it; removed with `fx`'s namespace.
    pub async fn countable_caller_queue(&self, fx: &Fixture) -> (ReplyKey, Subscription) {
        let key = ReplyKey::generate();
        let queue = key.queue(&self.names);
        fx.declare(&Topology::new().queue(QueueSpec::classic(queue.as_str())))
            .await
            .unwrap();
        let sub = fx
            .transport()
            .subscribe(&queue, SubscribeOptions::default())
            .await
            .unwrap();
        (key, sub)
    }

    /// A request with `token` (if any) and JSON `body`, replying to the queue
    /// `reply` opens (with its proof).
    pub fn request(&self, body: &Value, token: Option<&str>, reply: Option<&ReplyKey>) -> Envelope {
        let mut envelope = Envelope::new(serde_json::to_vec(body).unwrap())
            .with_content_type("application/json")
            .with_correlation_id(uuid::Uuid::new_v4().to_string());
        if let Some(token) = token {
            envelope
                .headers
                .insert(headers::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(key) = reply {
            key.attach(&self.names, &mut envelope);
        }
        envelope
    }

    /// Publishes to the ingress exchange with routing key `route`.
    pub async fn send(&self, transport: &dyn Transport, route: &str, envelope: &Envelope) {
        transport
            .publish(
                &Address::new(self.names.ingress_exchange(), route),
                envelope,
            )
            .await
            .unwrap();
    }

    /// How many messages wait in the bus's dead-letter queue (count it once
    /// no router runs, or a later refusal may still add one).
    ///
    /// # Panics
    /// When the queue cannot be inspected.
    pub async fn dead_letters(&self, transport: &dyn Transport) -> u32 {
        transport
            .inspect(self.names.dead_queue())
            .await
            .expect("inspect the dead-letter queue")
            .messages
    }

    /// What the dead-letter queue holds, one line per copy (code, stage,
    /// reason, id), for a failure message; the copies stay in the queue.
    ///
    /// # Panics
    /// When the queue cannot be read.
    pub async fn describe_dead_letters(&self, transport: &dyn Transport) -> Vec<String> {
        let mut dead = transport
            .subscribe(self.names.dead_queue(), SubscribeOptions::prefetch(20))
            .await
            .expect("consume the dead-letter queue");
        let (mut lines, mut held) = (Vec::new(), Vec::new());
        while let Ok(Some(d)) = tokio::time::timeout(Duration::from_secs(2), dead.next()).await {
            let h = &d.envelope.headers;
            lines.push(format!(
                "{} at {}: {} (message {})",
                h.get_str(headers::CODE).unwrap_or("?"),
                h.get_str(headers::STAGE).unwrap_or("?"),
                h.get_str(headers::REASON).unwrap_or("?"),
                d.envelope.id
            ));
            // Held unsettled: they go back to the queue with the consumer.
            held.push(d);
            if lines.len() >= 20 {
                break;
            }
        }
        lines
    }

    /// Stops the router (graceful) and removes the temp folder.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take()
            && let Err(e) = running.wait().await
        {
            eprintln!("the test router stopped on an error: {e}");
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
