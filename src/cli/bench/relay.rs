//! The baseline of the router benches: a plain relay on the bus's own
//! exchanges and queues that does what any router must and nothing more (a
//! null gate). It consumes `<ns>.ingress` and republishes each request to
//! `<ns>.deliver` (routing key: the service, the route's first segment),
//! mandatory, acking the ingress only once the broker confirmed; it consumes
//! `<ns>.replies` and publishes each reply to its caller's queue the same way.
//! A request's `reply_to` is replaced by the replies queue, the caller's
//! travelling in the reply-context header that services copy onto replies.
//! Like the router (README, "Delivery contract"), it holds up to half its
//! prefetch of calls: such a request goes to the service queue transient,
//! replied to the relay's own exclusive queue, and its ingress delivery is
//! acked only once the reply reached the caller (a redelivered request, or
//! one beyond the bound, goes the durable way).
//! It admits every service that registers (answering on the instance's
//! control queue as a router does), since a null gate judges nothing.
//! It speaks AMQP through `tollgate-wire`, the client the router's transport
//! uses, so the two differ only in what the router does to a message.

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::{
    sync::oneshot,
    task::{JoinHandle, JoinSet},
};
use tokio_util::sync::CancellationToken;
use tollgate_bus::{
    BrokerNodes, BusNames, Hop,
    config::RouterSection,
    headers,
    registry::{Announcement, RegistrationAnswer, announce::ANNOUNCEMENT_CONTENT_TYPE},
};
use tollgate_wire::{
    AMQPValue, BasicProperties, Channel, Connection, Consumer, Delivery, FieldTable, LongString,
    QueueOptions,
};

/// A running relay; [`stop`](Relay::stop) it to get its counts.
pub(crate) struct Relay {
    connection: Connection,
    stop: CancellationToken,
    loops: Vec<JoinHandle<()>>,
    counts: Arc<Counts>,
}

/// What a relay did, as the relay process reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tally {
    /// Requests delivered to a service queue (confirmed).
    pub(crate) requests: u64,
    /// Replies delivered to a caller's queue (confirmed).
    pub(crate) replies: u64,
    /// Messages the relay could not deliver: returned as unroutable, nacked,
    /// not confirmed, or a reply without a caller to go to.
    pub(crate) failures: u64,
}

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    replies: AtomicU64,
    failures: AtomicU64,
}

/// What every relayed message needs.
struct Link {
    publisher: Channel,
    deliver_exchange: String,
    replies_queue: String,
    counts: Arc<Counts>,
    held: Held,
    /// Cancelled when the relay stops: its held replies consumer stops with
    /// it, so a held call still waiting is given back at once.
    stop: CancellationToken,
}

/// The calls the relay holds, as the router does: by a key the reply
/// context carries, up to `max`, each for at most `window`.
struct Held {
    waiting: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    next: AtomicU64,
    max: usize,
    window: Duration,
    /// The relay's own replies queue, where held calls are answered.
    queue: String,
}

/// Separates a held call's key from its caller's queue in the reply context.
const HELD_KEY_END: char = ' ';

// === Relay ===

impl Relay {
    /// Connects to `url` and relays the bus `names`, with `prefetch`
    /// unsettled deliveries per queue and `hold_calls` held calls (the
    /// router's settings). The exchanges and queues must exist
    /// (`bus_topology::core`).
    pub(crate) async fn start(
        url: &str,
        names: &BusNames,
        prefetch: u16,
        hold_calls: Option<u16>,
    ) -> anyhow::Result<Self> {
        let connection = connect(url, "bench-relay").await?;
        let publisher = connection.channel().await?;
        publisher.confirm_select().await?;
        let counts = Arc::new(Counts::default());
        let router = RouterSection {
            prefetch,
            hold_calls,
            ..RouterSection::default()
        };
        let held = Held {
            waiting: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            max: router.hold_calls().into(),
            window: Duration::from_secs(router.reply_timeout_secs),
            queue: names.router_replies_queue(RELAY_INSTANCE),
        };
        declare_exclusive(&publisher, &held.queue).await?;
        let stop = CancellationToken::new();
        let link = Arc::new(Link {
            publisher,
            deliver_exchange: names.deliver_exchange().to_owned(),
            replies_queue: names.replies_queue().to_owned(),
            counts: Arc::clone(&counts),
            held,
            stop: stop.clone(),
        });
        let ingress = consumer(&connection, names.ingress_queue(), prefetch).await?;
        let replies = consumer(&connection, names.replies_queue(), prefetch).await?;
        let held_replies = consumer(&connection, &link.held.queue, prefetch).await?;
        let admissions = Admissions::start(&connection, names).await?;
        let loops = vec![
            tokio::spawn(consume(admissions.consumer, stop.clone(), {
                let admit = Arc::new(admissions.admit);
                move |d| Arc::clone(&admit).answer(d)
            })),
            tokio::spawn(consume(ingress, stop.clone(), {
                let link = Arc::clone(&link);
                move |d| relay_request(Arc::clone(&link), d)
            })),
            tokio::spawn(consume(replies, stop.clone(), {
                let link = Arc::clone(&link);
                move |d| relay_reply(Arc::clone(&link), d)
            })),
            tokio::spawn(consume(held_replies, stop.clone(), move |d| {
                relay_reply(Arc::clone(&link), d)
            })),
        ];
        Ok(Self {
            connection,
            stop,
            loops,
            counts,
        })
    }

    /// Stops taking deliveries, lets the relayed ones settle, closes the
    /// connection (the broker requeues what was prefetched but not relayed)
    /// and returns the counts.
    pub(crate) async fn stop(self) -> Tally {
        self.stop.cancel();
        for task in self.loops {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "A relay loop failed.");
            }
        }
        if let Err(e) = self.connection.close().await {
            tracing::debug!(error = %e, "Closing the relay's connection failed.");
        }
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Tally {
            requests: count(&self.counts.requests),
            replies: count(&self.counts.replies),
            failures: count(&self.counts.failures),
        }
    }
}

/// Connects to the first node of `url` as connection `name`.
pub(super) async fn connect(url: &str, name: &str) -> anyhow::Result<Connection> {
    let nodes = BrokerNodes::parse(url)?;
    Connection::open(nodes.uri(0), name)
        .await
        .with_context(|| format!("connecting {name} to {}", nodes.shown(0)))
}

/// A consumer of `queue` on its own channel with `prefetch`.
pub(super) async fn consumer(
    connection: &Connection,
    queue: &str,
    prefetch: u16,
) -> anyhow::Result<Consumer> {
    let channel = connection.channel().await?;
    channel.qos(prefetch).await?;
    let consumer = channel
        .consume(queue, "bench-relay", FieldTable::default())
        .await
        .with_context(|| format!("consuming {queue}"))?;
    Ok(consumer)
}

/// Hands each delivery to its own task until `stop`, then waits for those tasks.
async fn consume<F, Fut>(mut consumer: Consumer, stop: CancellationToken, handle: F)
where
    F: Fn(Delivery) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut in_flight = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            next = consumer.next() => match next {
                Some(delivery) => {
                    in_flight.spawn(handle(delivery));
                }
                None => break,
            },
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
        }
    }
    while in_flight.join_next().await.is_some() {}
}

// === One message ===

/// Request hop: to the service's queue, the reply coming back through the
/// relay; a call is held when there is room and it was not delivered before.
async fn relay_request(link: Arc<Link>, delivery: Delivery) {
    let route = delivery.routing_key.as_str();
    let service = route.split('.').next().unwrap_or_default();
    let mut table = delivery.properties.headers().clone().unwrap_or_default();
    table.insert(headers::ROUTE.into(), long_string(route));
    let mut properties = delivery
        .properties
        .clone()
        .with_delivery_mode(Hop::Request.delivery_mode().amqp());
    let mut hold = None;
    if let Some(caller) = delivery.properties.reply_to() {
        hold = (!delivery.redelivered)
            .then(|| link.held.try_hold())
            .flatten();
        let (context, reply_to) = match &hold {
            Some((key, _)) => {
                properties = properties
                    .with_delivery_mode(Hop::HeldRequest.delivery_mode().amqp())
                    .with_expiration(link.held.window.as_millis().to_string().into());
                (format!("{key}{HELD_KEY_END}{caller}"), &link.held.queue)
            }
            None => (caller.as_str().to_owned(), &link.replies_queue),
        };
        table.insert(headers::REPLY_CONTEXT.into(), long_string(&context));
        properties = properties.with_reply_to(reply_to.as_str().into());
    }
    let properties = properties.with_headers(table);
    let delivered = link
        .publish(&link.deliver_exchange, service, &delivery.body, properties)
        .await;
    match (hold, delivered) {
        (Some((key, replied)), Ok(())) => {
            link.counts.requests.fetch_add(1, Ordering::Relaxed);
            let replied = tokio::select! {
                replied = tokio::time::timeout(link.held.window, replied) => {
                    matches!(replied, Ok(Ok(())))
                }
                () = link.stop.cancelled() => false,
            };
            link.held.waiting.lock().remove(&key);
            let settled = if replied {
                delivery.acker.ack()
            } else {
                delivery.acker.reject(true)
            };
            if let Err(e) = settled {
                tracing::debug!(error = %e, "Settling a held call failed.");
            }
        }
        (hold, delivered) => {
            if let Some((key, _)) = hold {
                link.held.waiting.lock().remove(&key);
            }
            link.settle(delivery, delivered, &link.counts.requests)
                .await;
        }
    }
}

/// Reply hop: to the caller's queue named in the reply context.
async fn relay_reply(link: Arc<Link>, delivery: Delivery) {
    let caller = delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|t| t.inner().get(headers::REPLY_CONTEXT))
        .and_then(|v| match v {
            AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
            _ => None,
        });
    let (held_key, caller) = match caller.map(|c| c.split_once(HELD_KEY_END)) {
        Some(Some((key, caller))) => (key.parse::<u64>().ok(), Some(caller)),
        Some(None) => (None, caller),
        None => (None, None),
    };
    let delivered = match caller {
        Some(caller) => {
            let mode = Hop::Reply.delivery_mode().amqp();
            let properties = delivery.properties.clone().with_delivery_mode(mode);
            link.publish("", caller, &delivery.body, properties).await
        }
        None => Err("a reply without a reply context".to_owned()),
    };
    if let (Some(key), Ok(())) = (held_key, &delivered) {
        link.held.replied(key);
    }
    link.settle(delivery, delivered, &link.counts.replies).await;
}

impl Held {
    /// A key and the receiver of its reply, when fewer than `max` calls are held.
    fn try_hold(&self) -> Option<(u64, oneshot::Receiver<()>)> {
        let mut waiting = self.waiting.lock();
        if waiting.len() >= self.max {
            return None;
        }
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        waiting.insert(key, tx);
        Some((key, rx))
    }

    /// The reply of held call `key` reached its caller.
    fn replied(&self, key: u64) {
        if let Some(tx) = self.waiting.lock().remove(&key) {
            let _ = tx.send(());
        }
    }
}

/// Declares the exclusive queue `queue` (gone with the relay's connection).
async fn declare_exclusive(channel: &Channel, queue: &str) -> anyhow::Result<()> {
    let exclusive = QueueOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueOptions::default()
    };
    channel
        .queue_declare(queue, exclusive, FieldTable::default())
        .await
        .with_context(|| format!("declaring {queue}"))?;
    Ok(())
}

// === Admissions ===

/// The relay's control queue, bound to the control exchange, and what it
/// needs to admit a registering service.
struct Admissions {
    consumer: Consumer,
    admit: Admit,
}

/// Answers registrations: every one is accepted.
struct Admit {
    /// Its own channel, without confirms: an answer to an instance whose
    /// control queue is gone is simply dropped, and never returned on the
    /// channel the relayed messages use.
    channel: Channel,
    names: BusNames,
}

/// The relay's instance name in answers and in its control queue's name.
const RELAY_INSTANCE: &str = "bench-relay";

impl Admissions {
    async fn start(connection: &Connection, names: &BusNames) -> anyhow::Result<Self> {
        let channel = connection.channel().await?;
        let queue = names.router_control_queue(RELAY_INSTANCE);
        declare_exclusive(&channel, &queue).await?;
        channel
            .queue_bind(&queue, names.control_exchange(), "", FieldTable::default())
            .await
            .with_context(|| format!("binding {queue} to the control exchange"))?;
        let consumer = channel
            .consume(&queue, "bench-relay-admissions", FieldTable::default())
            .await?;
        Ok(Self {
            consumer,
            admit: Admit {
                channel,
                names: names.clone(),
            },
        })
    }
}

impl Admit {
    /// Accepts a `register`; every other announcement needs no answer.
    async fn answer(self: Arc<Self>, delivery: Delivery) {
        // An announcement is news, not work: taken off the queue at once.
        if let Err(e) = delivery.acker.ack() {
            tracing::debug!(error = %e, "Acking an announcement failed.");
        }
        let Ok(Announcement::Register(registration)) = Announcement::from_bytes(&delivery.body)
        else {
            return;
        };
        if !RegistrationAnswer::is_answerable_instance(&registration.instance) {
            return;
        }
        let queue = self.names.service_control_queue(&registration.instance);
        let answer = RegistrationAnswer::Accepted {
            service: registration.service,
            instance: registration.instance,
            router: RELAY_INSTANCE.to_owned(),
        };
        let sent = match answer.to_envelope() {
            Ok(envelope) => {
                let properties =
                    BasicProperties::default().with_content_type(ANNOUNCEMENT_CONTENT_TYPE.into());
                self.channel
                    .publish("", &queue, false, properties, &envelope.payload)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, queue = %queue, "The relay could not admit a service.");
        }
    }
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

impl Link {
    /// Publishes mandatory with a confirm; `Err` says why it was not delivered.
    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        data: &[u8],
        properties: BasicProperties,
    ) -> Result<(), String> {
        let confirm = self
            .publisher
            .publish(exchange, routing_key, true, properties, data)
            .map_err(|e| e.to_string())?;
        let confirmation = confirm.wait().await.map_err(|e| e.to_string())?;
        match (confirmation.acked, confirmation.returned) {
            (true, None) => Ok(()),
            (_, Some(_)) => Err(format!("returned unroutable by {exchange:?}")),
            (false, None) => Err("nacked by the broker".to_owned()),
        }
    }

    /// Acks a relayed delivery; counts and rejects (dead-letters) one that was not.
    async fn settle(&self, delivery: Delivery, delivered: Result<(), String>, done: &AtomicU64) {
        let settled = match delivered {
            Ok(()) => {
                done.fetch_add(1, Ordering::Relaxed);
                delivery.acker.ack()
            }
            Err(why) => {
                self.counts.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    routing_key = %delivery.routing_key, reason = %why,
                    "Relay could not deliver a message."
                );
                delivery.acker.reject(false)
            }
        };
        if let Err(e) = settled {
            tracing::debug!(error = %e, "Settling a relayed delivery failed.");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::panic::AssertUnwindSafe;

    use futures_util::FutureExt as _;
    use tollgate_bus::{Address, Envelope, bus_topology};
    use tollgate_tests::support::{Namespace, amqp_url, wait_until};

    use super::*;
    use crate::cli::bench::drive;

    /// Waits until `queue` holds `messages` ready ones.
    async fn wait_for_ready(transport: &dyn tollgate_bus::Transport, queue: &str, messages: u32) {
        wait_until(
            &format!("{queue} to hold {messages} ready message(s)"),
            Duration::from_secs(10),
            async || transport.inspect(queue).await.map(|i| i.messages).ok() == Some(messages),
        )
        .await;
    }

    /// A held call whose reply never comes is given back (its ingress
    /// delivery requeued) as soon as the relay stops, not after the 300 s
    /// reply window: the bench would have killed the relay and lost its tally.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_held_call_without_a_reply_is_given_back_when_the_relay_stops() {
        let url = amqp_url();
        let names = BusNames::new(Namespace::random().prefix());
        let admin = drive::connect(&url, "relay-test").await.unwrap();
        let mut topology = bus_topology::core(&names);
        topology.merge(&bus_topology::service(&names, "echo"));
        admin.declare(&topology).await.unwrap();

        let checked = AssertUnwindSafe(async {
            let relay = Relay::start(&url, &names, 8, Some(4)).await.unwrap();
            let request = Envelope::new(b"{}".to_vec()).with_reply_to("a-caller-queue");
            let ingress = Address::new(names.ingress_exchange(), "echo.call");
            admin.publish(&ingress, &request).await.unwrap();
            // Held: its transient copy waits in the service queue, unanswered.
            wait_for_ready(admin.as_ref(), &names.service_queue("echo"), 1).await;

            let stopped = tokio::time::timeout(Duration::from_secs(10), relay.stop()).await;
            let tally = stopped.expect("the relay waited out its held call instead of stopping");
            assert_eq!(tally.requests, 1);
            wait_for_ready(admin.as_ref(), names.ingress_queue(), 1).await;
        })
        .catch_unwind()
        .await;

        // Deleted whether or not the checks passed.
        topology.bindings.clear();
        admin.delete(&topology).await.unwrap();
        admin.close().await.unwrap();
        if let Err(failed) = checked {
            std::panic::resume_unwind(failed);
        }
    }
}
