//! One AMQP channel: its synchronous methods (declare, bind, consume…), its
//! publishes with their confirms, and settling deliveries.

use std::{collections::HashMap, sync::Arc};

use amq_protocol::{
    protocol::{AMQPClass, BasicProperties, basic, channel, confirm, exchange, queue},
    types::{ChannelId, FieldTable},
};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::{
    confirms::{Confirmation, Confirms},
    connection::Shared,
    consumer::{Consumer, Delivery},
    error::WireError,
    frames::{self, short},
};

/// A channel of a [`Connection`](crate::Connection). Cheap to clone; every
/// clone is the same channel.
#[derive(Clone)]
pub struct Channel {
    state: Arc<ChannelState>,
    connection: Arc<Shared>,
}

/// What the connection's reader and the channel's users share.
pub(crate) struct ChannelState {
    pub(crate) id: ChannelId,
    /// The call awaiting the broker's reply (one at a time: `calls`).
    waiter: Mutex<Option<oneshot::Sender<Result<AMQPClass, WireError>>>>,
    calls: tokio::sync::Mutex<()>,
    pub(crate) consumers: Mutex<HashMap<String, mpsc::UnboundedSender<Delivery>>>,
    pub(crate) confirms: Mutex<Confirms>,
    failure: Mutex<Option<WireError>>,
}

/// Settings of [`Channel::queue_declare`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueOptions {
    /// Only check that the queue exists (404 if not).
    pub passive: bool,
    /// Survives a broker restart.
    pub durable: bool,
    /// Private to this connection, deleted with it.
    pub exclusive: bool,
    /// Deleted when its last consumer goes.
    pub auto_delete: bool,
}

/// What `queue.declare-ok` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueState {
    /// The queue's name (the broker's choice when declared without one).
    pub name: String,
    /// Messages ready for a consumer.
    pub messages: u32,
    /// Active consumers.
    pub consumers: u32,
}

/// The broker's confirm of one publish, to await.
#[derive(Debug)]
pub struct Confirm(Option<oneshot::Receiver<Result<Confirmation, WireError>>>);

// === ChannelState ===

impl ChannelState {
    pub(crate) fn new(id: ChannelId) -> Self {
        Self {
            id,
            waiter: Mutex::new(None),
            calls: tokio::sync::Mutex::new(()),
            consumers: Mutex::new(HashMap::new()),
            confirms: Mutex::new(Confirms::default()),
            failure: Mutex::new(None),
        }
    }

    /// Hands the broker's reply to the waiting call; false when none waits.
    pub(crate) fn answer(&self, reply: AMQPClass) -> bool {
        match self.waiter.lock().take() {
            Some(waiter) => waiter.send(Ok(reply)).is_ok(),
            None => false,
        }
    }

    /// Ends the channel: the waiting call, pending confirms and consumers
    /// learn `error` (the first error sticks).
    pub(crate) fn fail(&self, error: WireError) {
        let error = {
            let mut failure = self.failure.lock();
            failure.get_or_insert(error).clone()
        };
        if let Some(waiter) = self.waiter.lock().take() {
            let _ = waiter.send(Err(error.clone()));
        }
        self.confirms.lock().fail(&error);
        self.consumers.lock().clear();
    }

    fn failure(&self) -> Option<WireError> {
        self.failure.lock().clone()
    }
}

/// Fails the channel when a call is abandoned before its reply came: the
/// reply would otherwise answer the next call.
struct CallGuard<'a> {
    state: &'a ChannelState,
    answered: bool,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.state.fail(WireError::Protocol(
                "a call on this channel was abandoned".into(),
            ));
        }
    }
}

// === Channel ===

impl Channel {
    pub(crate) fn new(state: Arc<ChannelState>, connection: Arc<Shared>) -> Self {
        Self { state, connection }
    }

    /// The channel's number on its connection.
    pub fn id(&self) -> ChannelId {
        self.state.id
    }

    /// Whether the channel (and its connection) is still open.
    pub fn is_open(&self) -> bool {
        self.state.failure().is_none() && self.connection.failure().is_none()
    }

    fn check(&self) -> Result<(), WireError> {
        match self.state.failure().or_else(|| self.connection.failure()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Sends `method` and awaits the broker's reply (one call at a time).
    pub(crate) async fn call(&self, method: AMQPClass) -> Result<AMQPClass, WireError> {
        let bytes = frames::method(self.state.id, method)?;
        let _one = self.state.calls.lock().await;
        let (tx, rx) = oneshot::channel();
        *self.state.waiter.lock() = Some(tx);
        // Checked once the waiter is in place: a channel failing from now on
        // answers it; one that failed before is seen here.
        if let Err(e) = self.check().and_then(|()| self.connection.send(bytes)) {
            self.state.waiter.lock().take();
            return Err(e);
        }
        let mut guard = CallGuard {
            state: &self.state,
            answered: false,
        };
        let reply = rx.await.unwrap_or(Err(WireError::Closed));
        guard.answered = true;
        reply
    }

    /// Opens the channel on the broker (`channel.open`).
    pub(crate) async fn open(&self) -> Result<(), WireError> {
        let open = AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}));
        match self.call(open).await? {
            AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)) => Ok(()),
            other => Err(unexpected("channel.open-ok", &other)),
        }
    }

    /// Closes the channel (`channel.close`); the broker requeues what its
    /// consumers held unsettled.
    pub async fn close(&self) -> Result<(), WireError> {
        let close = AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
            reply_code: 200,
            reply_text: "done".into(),
            class_id: 0,
            method_id: 0,
        }));
        match self.call(close).await {
            Ok(_) | Err(WireError::Closed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Puts the channel in confirm mode: every later publish is confirmed.
    pub async fn confirm_select(&self) -> Result<(), WireError> {
        let select = AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select {
            nowait: false,
        }));
        match self.call(select).await? {
            AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(_)) => {
                self.state.confirms.lock().enable();
                Ok(())
            }
            other => Err(unexpected("confirm.select-ok", &other)),
        }
    }

    /// At most `prefetch` unacked deliveries to each consumer of this channel.
    pub async fn qos(&self, prefetch: u16) -> Result<(), WireError> {
        let qos = AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
            prefetch_count: prefetch,
            global: false,
        }));
        match self.call(qos).await? {
            AMQPClass::Basic(basic::AMQPMethod::QosOk(_)) => Ok(()),
            other => Err(unexpected("basic.qos-ok", &other)),
        }
    }

    /// Declares (or, `passive`, checks) queue `name`.
    pub async fn queue_declare(
        &self,
        name: &str,
        options: QueueOptions,
        arguments: FieldTable,
    ) -> Result<QueueState, WireError> {
        let declare = AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
            queue: short("queue name", name)?,
            passive: options.passive,
            durable: options.durable,
            exclusive: options.exclusive,
            auto_delete: options.auto_delete,
            nowait: false,
            arguments,
        }));
        match self.call(declare).await? {
            AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok)) => Ok(QueueState {
                name: ok.queue.as_str().to_owned(),
                messages: ok.message_count,
                consumers: ok.consumer_count,
            }),
            other => Err(unexpected("queue.declare-ok", &other)),
        }
    }

    /// Declares (or, `passive`, checks) exchange `name` of `kind` (`direct`,
    /// `topic`, `fanout`, `headers`).
    pub async fn exchange_declare(
        &self,
        name: &str,
        kind: &str,
        passive: bool,
        durable: bool,
        arguments: FieldTable,
    ) -> Result<(), WireError> {
        let declare = AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
            exchange: short("exchange name", name)?,
            kind: short("exchange kind", kind)?,
            passive,
            durable,
            auto_delete: false,
            internal: false,
            nowait: false,
            arguments,
        }));
        match self.call(declare).await? {
            AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(_)) => Ok(()),
            other => Err(unexpected("exchange.declare-ok", &other)),
        }
    }

    /// Binds `queue` to `exchange` with `routing_key`.
    pub async fn queue_bind(
        &self,
        queue_name: &str,
        exchange_name: &str,
        routing_key: &str,
        arguments: FieldTable,
    ) -> Result<(), WireError> {
        let bind = AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
            queue: short("queue name", queue_name)?,
            exchange: short("exchange name", exchange_name)?,
            routing_key: short("routing key", routing_key)?,
            nowait: false,
            arguments,
        }));
        match self.call(bind).await? {
            AMQPClass::Queue(queue::AMQPMethod::BindOk(_)) => Ok(()),
            other => Err(unexpected("queue.bind-ok", &other)),
        }
    }

    /// Deletes queue `name` (a missing queue is no error); returns how many
    /// messages it held.
    pub async fn queue_delete(&self, name: &str) -> Result<u32, WireError> {
        let delete = AMQPClass::Queue(queue::AMQPMethod::Delete(queue::Delete {
            queue: short("queue name", name)?,
            if_unused: false,
            if_empty: false,
            nowait: false,
        }));
        match self.call(delete).await? {
            AMQPClass::Queue(queue::AMQPMethod::DeleteOk(ok)) => Ok(ok.message_count),
            other => Err(unexpected("queue.delete-ok", &other)),
        }
    }

    /// Deletes exchange `name` (a missing exchange is no error).
    pub async fn exchange_delete(&self, name: &str) -> Result<(), WireError> {
        let delete = AMQPClass::Exchange(exchange::AMQPMethod::Delete(exchange::Delete {
            exchange: short("exchange name", name)?,
            if_unused: false,
            nowait: false,
        }));
        match self.call(delete).await? {
            AMQPClass::Exchange(exchange::AMQPMethod::DeleteOk(_)) => Ok(()),
            other => Err(unexpected("exchange.delete-ok", &other)),
        }
    }

    /// Consumes `queue` with manual acks under consumer tag `tag`.
    pub async fn consume(
        &self,
        queue_name: &str,
        tag: &str,
        arguments: FieldTable,
    ) -> Result<Consumer, WireError> {
        let (tx, rx) = mpsc::unbounded_channel();
        // Registered first: deliveries may follow consume-ok at once.
        self.state.consumers.lock().insert(tag.to_owned(), tx);
        let consume = AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
            queue: short("queue name", queue_name)?,
            consumer_tag: short("consumer tag", tag)?,
            no_local: false,
            no_ack: false,
            exclusive: false,
            nowait: false,
            arguments,
        }));
        let reply = self.call(consume).await;
        match reply {
            Ok(AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_))) => {
                Ok(Consumer::new(tag.to_owned(), rx))
            }
            Ok(other) => Err(unexpected("basic.consume-ok", &other)),
            Err(e) => {
                self.state.consumers.lock().remove(tag);
                Err(e)
            }
        }
    }

    /// Publishes `body` to `exchange` with `routing_key`. On a confirm-mode
    /// channel, await the returned [`Confirm`] for the broker's verdict.
    ///
    /// The frames are queued for the socket before this returns; publishes
    /// reach the broker in the order of these calls.
    pub fn publish(
        &self,
        exchange_name: &str,
        routing_key: &str,
        mandatory: bool,
        properties: BasicProperties,
        body: &[u8],
    ) -> Result<Confirm, WireError> {
        let encoded = frames::encode_properties(&properties)?;
        let message_id = properties.message_id().as_ref().map(|s| s.as_str());
        self.publish_encoded(
            exchange_name,
            routing_key,
            mandatory,
            message_id,
            &encoded,
            body,
        )
    }

    /// As [`Channel::publish`], with the properties already encoded: the
    /// content header's property flags and list (AMQP 0-9-1 §4.2.6.1), sent
    /// as they are. `message_id` must be the message id they hold: a
    /// returned message is matched to its publish by it.
    pub fn publish_encoded(
        &self,
        exchange_name: &str,
        routing_key: &str,
        mandatory: bool,
        message_id: Option<&str>,
        properties: &[u8],
        body: &[u8],
    ) -> Result<Confirm, WireError> {
        let bytes = frames::publish(
            self.state.id,
            basic::Publish {
                exchange: short("exchange name", exchange_name)?,
                routing_key: short("routing key", routing_key)?,
                mandatory,
                immediate: false,
            },
            properties,
            body,
            self.connection.frame_max(),
        )?;
        let mut confirms = self.state.confirms.lock();
        // Checked under the lock: a channel that fails drains its confirms
        // under it after marking itself failed, so a publish registered here
        // is either refused now or failed with the rest — never left waiting.
        self.check()?;
        if !confirms.enabled() {
            self.connection.send(bytes)?;
            return Ok(Confirm(None));
        }
        let (tx, rx) = oneshot::channel();
        // Registered and queued under one lock: tags follow the wire's order.
        confirms.register(
            exchange_name,
            routing_key,
            message_id.map(str::to_owned),
            tx,
        );
        self.connection.send(bytes)?;
        Ok(Confirm(Some(rx)))
    }

    /// Acknowledges delivery `tag` of this channel.
    pub(crate) fn ack(&self, tag: u64) -> Result<(), WireError> {
        self.check()?;
        let ack = AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
            delivery_tag: tag,
            multiple: false,
        }));
        self.connection.send(frames::method(self.state.id, ack)?)
    }

    /// Rejects delivery `tag` of this channel.
    pub(crate) fn reject(&self, tag: u64, requeue: bool) -> Result<(), WireError> {
        self.check()?;
        let reject = AMQPClass::Basic(basic::AMQPMethod::Reject(basic::Reject {
            delivery_tag: tag,
            requeue,
        }));
        self.connection.send(frames::method(self.state.id, reject)?)
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.state.id)
            .field("open", &self.is_open())
            .finish()
    }
}

// === Confirm ===

impl Confirm {
    /// The broker's verdict. A publish on a channel without confirms is
    /// acked at once (nothing more will be known about it).
    pub async fn wait(self) -> Result<Confirmation, WireError> {
        match self.0 {
            None => Ok(Confirmation {
                acked: true,
                returned: None,
            }),
            Some(rx) => rx.await.unwrap_or(Err(WireError::Closed)),
        }
    }
}

fn unexpected(expected: &str, got: &AMQPClass) -> WireError {
    WireError::Protocol(format!(
        "expected {expected}, the broker answered {:?}.{:?}",
        got.get_amqp_class_id(),
        got.get_amqp_method_id()
    ))
}
