//! The broker itself keeps callers away from services: RabbitMQ's user
//! `tollgate-caller` (deploy/rabbitmq/definitions.json) may publish only to the
//! ingress exchange and declare and consume only its own `tollgate.caller.*`
//! reply queues, so nothing it sends reaches a service without the router.
//!
//! The user must exist on the broker: `scripts/test` applies the definitions
//! with `scripts/broker-permissions`. Where it cannot (no rabbitmqctl, a remote
//! broker), these tests fail and say so, unless TOLLGATE_SKIP_BROKER_PERMISSIONS=1.
//!
//! It also checks that the service users can do everything the service SDK
//! does at start, and that one service's user cannot reach another's queue.
//!
//! The permissions name the default namespace `tollgate`, so these tests use
//! it too. They declare the bus's exchanges (as `guest`, exactly as the router
//! does, and leave them: a router may use them), never its queues, and every
//! queue they create has a random name and is deleted.

// Test code: a failed expectation should panic loudly.
#![allow(clippy::unwrap_used)]

use std::{path::PathBuf, sync::Arc};

use lapin::uri::AMQPUri;
use tollgate_auth::AssertionVerifier;
use tollgate_bus::{
    Address, AmqpConfig, AmqpTransport, BusNames, Envelope, ExchangeSpec, QueueSpec, ReplyKey,
    SubscribeOptions, Topology, Transport, TransportError, bus_topology, headers,
};
use tollgate_services::{CallError, Caller, Request, RequestOptions, Service};
use tollgate_tests::support::{admit_every_registration, await_broker};

const CALLER_USER: &str = "tollgate-caller";
const SKIP_VAR: &str = "TOLLGATE_SKIP_BROKER_PERMISSIONS";

// === Connecting as the caller user ===

/// The password of `user` in deploy/rabbitmq/definitions.json.
fn password_of(user: &str) -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/rabbitmq/definitions.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let definitions: serde_json::Value = serde_json::from_str(&text).unwrap();
    definitions["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == user)
        .and_then(|u| u["password"].as_str())
        .unwrap_or_else(|| panic!("{} has no user {user} with a password", path.display()))
        .to_owned()
}

/// TOLLGATE_AMQP_URL's broker and vhost, logged in as `user`.
fn url_as(user: &str, password: &str) -> String {
    let base: AMQPUri = tollgate_tests::support::amqp_url().parse().unwrap();
    let scheme = match base.scheme {
        lapin::uri::AMQPScheme::AMQP => "amqp",
        lapin::uri::AMQPScheme::AMQPS => "amqps",
    };
    let host = &base.authority.host;
    let port = base.authority.port;
    format!(
        "{scheme}://{}:{}@{host}:{port}/{}",
        encode(user),
        encode(password),
        encode(&base.vhost)
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A connection as `tollgate-caller`; `None` (the test is skipped) when the user
/// cannot log in and TOLLGATE_SKIP_BROKER_PERMISSIONS=1.
async fn caller_transport() -> Option<AmqpTransport> {
    login(CALLER_USER).await
}

/// A connection as `user` of the definitions file; `None` (the test is skipped)
/// when it cannot log in and TOLLGATE_SKIP_BROKER_PERMISSIONS=1.
///
/// # Panics
/// When the user cannot log in otherwise, saying how to create it.
async fn login(user: &str) -> Option<AmqpTransport> {
    // Make sure the broker is up, so that a failure below is about the user.
    drop(await_broker("broker-permissions-probe").await);
    let url = url_as(user, &password_of(user));
    match AmqpTransport::connect(AmqpConfig::new(url).with_connection_name("broker-permissions"))
        .await
    {
        Ok(t) => Some(t),
        Err(e) if std::env::var(SKIP_VAR).as_deref() == Ok("1") => {
            eprintln!("skipped: cannot log in to RabbitMQ as {user} ({e}), and {SKIP_VAR}=1");
            None
        }
        Err(e) => panic!(
            "cannot log in to RabbitMQ as {user}: {e}.\n\
             The broker lacks the users of deploy/rabbitmq/definitions.json: run \
             scripts/broker-permissions (as root, on the broker's machine; scripts/test \
             does it when rabbitmqctl is installed), import the definitions file into \
             the broker, or set {SKIP_VAR}=1 to skip these tests."
        ),
    }
}

// === Fixtures ===

fn names() -> BusNames {
    BusNames::default()
}

/// Declares the bus's exchanges (only them) as guest, exactly as the router does.
async fn declare_bus_exchanges(guest: &AmqpTransport) {
    let core = bus_topology::core(&names());
    let exchanges = core
        .exchanges
        .iter()
        .cloned()
        .fold(Topology::new(), Topology::exchange);
    match guest.declare(&exchanges).await {
        Ok(()) => {}
        // A broker that ran an older Tollgate holds `tollgate.deliver` as a
        // direct exchange; it is topic now (for topic permissions): replace it.
        Err(TransportError::PreconditionFailed(_)) => {
            let deliver = Topology::new().exchange(ExchangeSpec::topic(names().deliver_exchange()));
            guest.delete(&deliver).await.unwrap();
            guest.declare(&exchanges).await.unwrap();
        }
        Err(e) => panic!("cannot declare the bus's exchanges: {e}"),
    }
}

/// A service-like queue `tollgate.svc.permtest-<random>`, declared by guest.
async fn service_queue(guest: &AmqpTransport) -> (String, Topology) {
    let name = names().service_queue(&format!("permtest-{}", uuid::Uuid::new_v4().simple()));
    let topology = Topology::new().queue(QueueSpec::classic(&name));
    guest.declare(&topology).await.unwrap();
    (name, topology)
}

fn probe() -> Envelope {
    Envelope::new(&b"{\"probe\":\"tollgate broker_permissions test\"}"[..])
        .with_content_type("application/json")
}

#[track_caller]
fn assert_refused(result: Result<(), TransportError>, what: &str) {
    match result {
        Err(TransportError::AccessRefused(reason)) => {
            assert!(
                reason.contains("ACCESS_REFUSED") || reason.contains("access"),
                "{reason}"
            );
        }
        other => panic!("{what}: expected AccessRefused, got {other:?}"),
    }
}

// === Tests ===

#[tokio::test]
async fn caller_cannot_publish_onto_a_service_queue_through_the_default_exchange() {
    let Some(caller) = caller_transport().await else {
        return;
    };
    let guest = await_broker("broker-permissions-guest").await;
    let (queue, topology) = service_queue(&guest).await;

    let bypass = caller.publish(&Address::queue(&queue), &probe()).await;
    assert_refused(bypass, "publish to amq.default → service queue");

    // The queue takes messages from someone allowed to send them, and holds
    // only that one: the refused publish never arrived.
    guest
        .publish(&Address::queue(&queue), &probe())
        .await
        .unwrap();
    assert_eq!(guest.inspect(&queue).await.unwrap().messages, 1);
    guest.delete(&topology).await.unwrap();
}

#[tokio::test]
async fn caller_cannot_publish_to_the_exchanges_behind_the_router() {
    let Some(_) = caller_transport().await else {
        return;
    };
    let guest = await_broker("broker-permissions-guest").await;
    declare_bus_exchanges(&guest).await;
    let n = names();
    for (exchange, key) in [
        (n.deliver_exchange(), "orders".to_owned()),
        (n.control_exchange(), String::new()),
        (n.dead_letter_exchange(), String::new()),
    ] {
        // A fresh connection each: a refusal closes the publishing channel.
        let caller = caller_transport().await.unwrap();
        let result = caller
            .publish(&Address::new(exchange, &key), &probe())
            .await;
        assert_refused(result, &format!("publish to {exchange}"));
    }
}

#[tokio::test]
async fn caller_cannot_declare_or_consume_a_service_queue() {
    let Some(caller) = caller_transport().await else {
        return;
    };
    let guest = await_broker("broker-permissions-guest").await;
    declare_bus_exchanges(&guest).await;

    let svc = format!("permtest-{}", uuid::Uuid::new_v4().simple());
    let declared = caller.declare(&bus_topology::service(&names(), &svc)).await;
    assert_refused(declared, "declare a service queue");

    let (queue, topology) = service_queue(&guest).await;
    let consumed = caller
        .subscribe(&queue, SubscribeOptions::prefetch(1))
        .await;
    assert_refused(consumed.map(drop), "consume a service queue");
    guest.delete(&topology).await.unwrap();
}

#[tokio::test]
async fn caller_cannot_redeclare_the_bus_nor_bind_its_queue_to_the_ingress() {
    let Some(caller) = caller_transport().await else {
        return;
    };
    let guest = await_broker("broker-permissions-guest").await;
    declare_bus_exchanges(&guest).await;
    let n = names();

    let redeclared = caller.declare(&bus_topology::core(&n)).await;
    assert_refused(redeclared, "declare the bus's core topology");

    // Its own reply queue is fine, but binding it to the ingress exchange (to
    // read everyone's requests and tokens) is not.
    let id = uuid::Uuid::new_v4().simple().to_string();
    let own = bus_topology::caller(&n, &id);
    caller.declare(&own).await.unwrap();
    let queue = n.caller_queue(&id);
    let snoop = Topology::new().bind(n.ingress_exchange(), &queue, "#");
    assert_refused(caller.declare(&snoop).await, "bind to the ingress exchange");
}

#[tokio::test]
async fn caller_declares_its_reply_queue_and_publishes_to_the_ingress_exchange() {
    let Some(transport) = caller_transport().await else {
        return;
    };
    let guest = await_broker("broker-permissions-guest").await;
    declare_bus_exchanges(&guest).await;

    // The SDK's caller: declares and consumes `tollgate.caller.<uuid>`.
    let caller = Caller::connect(Arc::new(transport), names()).await.unwrap();
    assert!(caller.reply_queue().starts_with("tollgate.caller."));

    // The broker lets the publish through: it is confirmed into the ingress
    // queue when a router's topology exists on this broker, or returned as
    // unroutable when only the exchange does. Either way not refused (a
    // refusal closes the channel and fails the publish).
    let sent = caller
        .publish(
            "orders.create",
            &serde_json::json!({"probe": true}),
            &RequestOptions::default(),
        )
        .await;
    match sent {
        Ok(()) | Err(CallError::Transport(TransportError::Unroutable { .. })) => {}
        Err(e) => panic!("publish to the ingress exchange as {CALLER_USER} failed: {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_user_runs_its_service_and_replies_but_no_other_service_user_reaches_it() {
    let Some(service_conn) = login("tollgate-service").await else {
        return;
    };
    let guest = await_broker("broker-permissions-guest").await;
    declare_bus_exchanges(&guest).await;
    let n = names();

    // Everything the SDK does at start: declare the service queue (with its
    // dead-letter exchange) and its binding, its control queue, consume both,
    // announce itself on the control exchange.
    let name = format!("permtest-{}", uuid::Uuid::new_v4().simple());
    let (private, public) = tollgate_auth::generate_assertion_key().unwrap();
    drop(private);
    // No router here: a stand-in (as guest) admits the registration.
    let registrar: Arc<dyn Transport> = Arc::new(await_broker("broker-permissions-registry").await);
    let registry = admit_every_registration(registrar, &n).await;
    let running = Service::builder(&name)
        .credential("not-checked-here")
        .bus_key(AssertionVerifier::from_public_pem(public.as_bytes()).unwrap())
        .handler("ping", |_: Request<serde_json::Value>| async { Ok("pong") })
        .build()
        .unwrap()
        .run(Arc::new(service_conn), n.clone())
        .await
        .unwrap_or_else(|e| panic!("the SDK cannot start a service as tollgate-service: {e}"));

    // A message put straight onto its queue is refused by the service, which
    // replies through the default exchange: the reply arrives.
    let key = ReplyKey::generate();
    guest
        .declare(&bus_topology::caller(&n, key.id()))
        .await
        .unwrap();
    let mut replies = guest
        .subscribe(&key.queue(&n), SubscribeOptions::prefetch(1))
        .await
        .unwrap();
    let mut bypass = probe().with_correlation_id("bypass-1");
    key.attach(&n, &mut bypass);
    guest
        .publish(&Address::queue(n.service_queue(&name)), &bypass)
        .await
        .unwrap();
    let reply = tokio::time::timeout(std::time::Duration::from_secs(30), replies.next())
        .await
        .expect("the service's refusal came back")
        .unwrap();
    assert_eq!(reply.envelope.correlation_id.as_deref(), Some("bypass-1"));
    assert!(reply.envelope.headers.get_str(headers::ERROR).is_some());

    // Another service's user can neither consume nor redeclare that queue.
    let Some(orders) = login("tollgate-svc-orders").await else {
        return;
    };
    let consumed = orders
        .subscribe(&n.service_queue(&name), SubscribeOptions::prefetch(1))
        .await;
    assert_refused(consumed.map(drop), "consume another service's queue");
    let Some(orders) = login("tollgate-svc-orders").await else {
        return;
    };
    let declared = orders.declare(&bus_topology::service(&n, &name)).await;
    assert_refused(declared, "declare another service's queue");

    running.shutdown().await.unwrap();
    registry.abort();
    guest
        .delete(&bus_topology::service(&n, &name))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_service_user_binds_the_delivery_exchange_only_to_its_own_name() {
    let Some(orders) = login("tollgate-svc-orders").await else {
        return;
    };
    let guest = await_broker("broker-permissions-guest").await;
    declare_bus_exchanges(&guest).await;
    let n = names();
    // A queue orders' user may use, declared by guest so only the binding is under test.
    let queue = n.service_queue("orders");
    let own = Topology {
        queues: bus_topology::service(&n, "orders").queues,
        ..Topology::new()
    };
    guest.declare(&own).await.unwrap();
    let snoop = Topology::new().bind(n.deliver_exchange(), &queue, "billing-legacy");
    assert_refused(
        orders.declare(&snoop).await,
        "bind to another service's deliveries",
    );
    let Some(orders) = login("tollgate-svc-orders").await else {
        return;
    };
    let allowed = Topology::new().bind(n.deliver_exchange(), &queue, "orders");
    orders
        .declare(&allowed)
        .await
        .unwrap_or_else(|e| panic!("binding its own name is allowed: {e}"));
    guest.delete(&own).await.unwrap();
}

/// What re-admission trusts (README, "Backlogs older than an assertion"): a
/// request whose `user_id` names the routers' broker user was published by
/// a router. A service's user, which may write any queue through the default
/// exchange, cannot put a copy naming another user into one — RabbitMQ
/// closes its channel (406) and the queue gets nothing — while a copy naming
/// itself arrives saying who sent it.
#[tokio::test]
async fn a_copy_that_names_the_routers_user_is_refused_by_the_broker() {
    let Some(service_conn) = login("tollgate-service").await else {
        return;
    };
    let guest = await_broker("broker-permissions-guest").await;
    let (queue, topology) = service_queue(&guest).await;

    // Raw lapin: Tollgate's transports never send another user's id.
    let url = url_as("tollgate-service", &password_of("tollgate-service"));
    let raw = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = raw.create_channel().await.unwrap();
    channel
        .confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await
        .unwrap();
    let forged = lapin::BasicProperties::default()
        .with_delivery_mode(2)
        .with_user_id("tollgate-router".into());
    let published = async {
        channel
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                lapin::options::BasicPublishOptions::default(),
                b"captured delivery",
                forged,
            )
            .await?
            .await
    };
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), published)
        .await
        .expect("the broker answered the forged publish");
    let error = format!("{:?}", outcome.expect_err("the forged copy was refused"));
    assert!(
        error.contains("PRECONDITION_FAILED") || error.contains("PreconditionFailed"),
        "{error}"
    );
    raw.close(200, "done".into()).await.ok();

    let mut own = probe();
    own.user_id = Some("tollgate-service".to_owned());
    service_conn
        .publish(&Address::queue(&queue), &own)
        .await
        .unwrap();
    let mut sub = guest
        .subscribe(&queue, SubscribeOptions::prefetch(1))
        .await
        .unwrap();
    let arrived = tokio::time::timeout(std::time::Duration::from_secs(10), sub.next())
        .await
        .expect("the own copy arrived")
        .unwrap();
    assert_eq!(
        arrived.envelope.id, own.id,
        "only the own copy is in the queue"
    );
    assert_eq!(
        arrived.envelope.user_id.as_deref(),
        Some("tollgate-service")
    );
    arrived.ack().await.unwrap();
    drop(sub);
    assert_eq!(guest.inspect(&queue).await.unwrap().messages, 0);
    guest.delete(&topology).await.unwrap();
}
