//! The connection's reader: cuts the socket's bytes into frames and hands
//! each to whom it concerns — a call's reply to its caller, a delivery to its
//! consumer, a confirm or a return to its publish.

use std::{
    collections::HashMap,
    sync::{Arc, Weak},
    time::Duration,
};

use amq_protocol::{
    frame::AMQPFrame,
    protocol::{AMQPClass, BasicProperties, basic, channel, connection},
    types::ChannelId,
};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::{
    channel::{Channel, ChannelState},
    confirms::Returned,
    connection::Shared,
    consumer::{Acker, Delivery},
    error::WireError,
    frames::{self, Incoming},
};

/// Free space kept in the read buffer before each read.
const READ_ROOM: usize = 64 * 1024;

/// A message whose method came and whose header and body are still coming.
struct Content {
    /// The channel it comes on.
    state: Arc<ChannelState>,
    method: ContentMethod,
    properties: BasicProperties,
    malformed: Option<String>,
    size: Option<u64>,
    body: Body,
}

/// A body as its frames came: most bodies fit one frame, which is kept as
/// it was read; only a body of several frames is copied together.
enum Body {
    Empty,
    One(Bytes),
    Many(BytesMut),
}

enum ContentMethod {
    Deliver(basic::Deliver),
    Return(basic::Return),
}

/// Reads until the socket fails, the broker closes the connection, a
/// heartbeat is missed (`silence`: no frame for that long), or every handle
/// of the connection is gone; then ends the connection with the reason.
pub(crate) async fn run<R: AsyncRead + Unpin>(
    shared: Weak<Shared>,
    mut socket: R,
    mut buf: BytesMut,
    silence: Option<Duration>,
) {
    let Some((mut dead, frame_max)) = shared.upgrade().map(|s| (s.dead(), s.frame_max())) else {
        return;
    };
    let mut contents: HashMap<ChannelId, Content> = HashMap::new();
    let end = loop {
        match frames::next(&mut buf, frame_max) {
            Ok(Some(frame)) => {
                let Some(s) = shared.upgrade() else { return };
                if let Err(end) = dispatch(&s, &mut contents, frame) {
                    break end;
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => break e,
        }
        // Room for a good read: bodies sliced off the buffer take its
        // capacity with them, and a full buffer would be read 64 bytes at a time.
        if buf.capacity() - buf.len() < READ_ROOM / 4 {
            buf.reserve(READ_ROOM);
        }
        let read = socket.read_buf(&mut buf);
        let outcome = tokio::select! {
            biased;
            outcome = async {
                match silence {
                    Some(limit) => tokio::time::timeout(limit, read).await.ok(),
                    None => Some(read.await),
                }
            } => outcome,
            _ = dead.wait_for(|dead| *dead) => return,
        };
        match outcome {
            None => break WireError::MissedHeartbeats,
            Some(Ok(0)) => {
                break WireError::from(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => break WireError::from(e),
        }
    };
    if let Some(shared) = shared.upgrade() {
        shared.die(end);
    }
}

/// Handles one frame; `Err` ends the connection with that reason.
fn dispatch(
    shared: &Arc<Shared>,
    contents: &mut HashMap<ChannelId, Content>,
    frame: Incoming,
) -> Result<(), WireError> {
    match frame {
        Incoming::Frame(AMQPFrame::Method(0, AMQPClass::Connection(method))) => {
            on_connection(shared, method)
        }
        Incoming::Frame(AMQPFrame::Heartbeat) => Ok(()),
        Incoming::Frame(AMQPFrame::Method(id, method)) => {
            let Some(state) = shared.channel(id) else {
                tracing::debug!(channel = id, "A method for a channel no longer open.");
                return Ok(());
            };
            on_channel_method(shared, &state, contents, method)
        }
        Incoming::Frame(AMQPFrame::Header(id, header)) => {
            let content = contents.get_mut(&id).ok_or_else(|| {
                WireError::Protocol(format!("a content header without a method on channel {id}"))
            })?;
            content.properties = header.properties;
            content.size = Some(header.body_size);
            complete_if_whole(shared, contents, id);
            Ok(())
        }
        Incoming::BadHeader {
            channel: id,
            body_size,
            reason,
        } => {
            let content = contents.get_mut(&id).ok_or_else(|| {
                WireError::Protocol(format!("a content header without a method on channel {id}"))
            })?;
            content.malformed = Some(reason);
            content.size = Some(body_size);
            complete_if_whole(shared, contents, id);
            Ok(())
        }
        Incoming::Body(id, data) => {
            let content = contents.get_mut(&id).ok_or_else(|| {
                WireError::Protocol(format!("a content body without a method on channel {id}"))
            })?;
            content.body.push(data);
            complete_if_whole(shared, contents, id);
            Ok(())
        }
        Incoming::Frame(other) => Err(WireError::Protocol(format!(
            "an unexpected frame: {other:?}"
        ))),
    }
}

fn on_connection(shared: &Arc<Shared>, method: connection::AMQPMethod) -> Result<(), WireError> {
    match method {
        connection::AMQPMethod::Close(close) => {
            let ok = AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {}));
            // Best effort: the broker closes the socket either way.
            let _ = frames::method(0, ok).map(|bytes| shared.send(bytes));
            Err(WireError::ConnectionClosed {
                code: close.reply_code,
                text: close.reply_text.as_str().to_owned(),
            })
        }
        connection::AMQPMethod::CloseOk(_) => Err(WireError::Closed),
        connection::AMQPMethod::Blocked(blocked) => {
            tracing::debug!(reason = %blocked.reason.as_str(), "The broker blocked the connection.");
            shared.set_blocked(true);
            Ok(())
        }
        connection::AMQPMethod::Unblocked(_) => {
            shared.set_blocked(false);
            Ok(())
        }
        other => Err(WireError::Protocol(format!(
            "an unexpected connection method {}",
            AMQPClass::Connection(other).get_amqp_method_id()
        ))),
    }
}

fn on_channel_method(
    shared: &Arc<Shared>,
    state: &Arc<ChannelState>,
    contents: &mut HashMap<ChannelId, Content>,
    method: AMQPClass,
) -> Result<(), WireError> {
    let id = state.id;
    match method {
        AMQPClass::Basic(basic::AMQPMethod::Deliver(deliver)) => {
            contents.insert(id, Content::new(state, ContentMethod::Deliver(deliver)));
        }
        AMQPClass::Basic(basic::AMQPMethod::Return(returned)) => {
            contents.insert(id, Content::new(state, ContentMethod::Return(returned)));
        }
        AMQPClass::Basic(basic::AMQPMethod::Ack(ack)) => {
            state
                .confirms
                .lock()
                .settle(ack.delivery_tag, ack.multiple, true);
        }
        AMQPClass::Basic(basic::AMQPMethod::Nack(nack)) => {
            state
                .confirms
                .lock()
                .settle(nack.delivery_tag, nack.multiple, false);
        }
        AMQPClass::Basic(basic::AMQPMethod::Cancel(cancel)) => {
            // The broker cancelled a consumer (its queue was deleted): its
            // deliveries end.
            state.consumers.lock().remove(cancel.consumer_tag.as_str());
            if !cancel.nowait {
                let ok = AMQPClass::Basic(basic::AMQPMethod::CancelOk(basic::CancelOk {
                    consumer_tag: cancel.consumer_tag,
                }));
                shared.send(frames::method(id, ok)?)?;
            }
        }
        AMQPClass::Channel(channel::AMQPMethod::Close(close)) => {
            contents.remove(&id);
            let ok = AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {}));
            shared.send(frames::method(id, ok)?)?;
            shared.forget(id);
            state.fail(WireError::ChannelClosed {
                code: close.reply_code,
                text: close.reply_text.as_str().to_owned(),
            });
        }
        AMQPClass::Channel(channel::AMQPMethod::CloseOk(_)) => {
            contents.remove(&id);
            shared.forget(id);
            state.answer(AMQPClass::Channel(channel::AMQPMethod::CloseOk(
                channel::CloseOk {},
            )));
            state.fail(WireError::Closed);
        }
        AMQPClass::Channel(channel::AMQPMethod::Flow(flow)) => {
            let ok = AMQPClass::Channel(channel::AMQPMethod::FlowOk(channel::FlowOk {
                active: flow.active,
            }));
            shared.send(frames::method(id, ok)?)?;
        }
        reply => {
            if !state.answer(reply) {
                tracing::debug!(channel = id, "A reply nobody waited for.");
            }
        }
    }
    Ok(())
}

/// Hands over the content of channel `id` once its body is whole.
fn complete_if_whole(
    shared: &Arc<Shared>,
    contents: &mut HashMap<ChannelId, Content>,
    id: ChannelId,
) {
    let whole = contents
        .get(&id)
        .is_some_and(|c| c.size.is_some_and(|size| c.body.len() as u64 >= size));
    if !whole {
        return;
    }
    let Some(content) = contents.remove(&id) else {
        return;
    };
    let state = content.state;
    match content.method {
        ContentMethod::Deliver(deliver) => {
            let consumer = state
                .consumers
                .lock()
                .get(deliver.consumer_tag.as_str())
                .cloned();
            let Some(consumer) = consumer else {
                // Cancelled on this side: the delivery stays unacked until the
                // channel closes, and the broker requeues it then.
                tracing::debug!(channel = id, "A delivery for a cancelled consumer.");
                return;
            };
            let channel = Channel::new(Arc::clone(&state), Arc::clone(shared));
            let _ = consumer.send(Delivery {
                exchange: deliver.exchange.as_str().to_owned(),
                routing_key: deliver.routing_key.as_str().to_owned(),
                redelivered: deliver.redelivered,
                properties: content.properties,
                body: content.body.into_bytes(),
                malformed: content.malformed,
                acker: Acker::new(channel, deliver.delivery_tag),
            });
        }
        ContentMethod::Return(returned) => {
            let returned = Returned {
                reply_code: returned.reply_code,
                reply_text: returned.reply_text.as_str().to_owned(),
                exchange: returned.exchange.as_str().to_owned(),
                routing_key: returned.routing_key.as_str().to_owned(),
                properties: content.properties,
                body: content.body.into_bytes().to_vec(),
            };
            if let Some(returned) = state.confirms.lock().returned(returned) {
                tracing::warn!(
                    exchange = %returned.exchange,
                    routing_key = %returned.routing_key,
                    "The broker returned a message no publish waits for."
                );
            }
        }
    }
}

impl Content {
    fn new(state: &Arc<ChannelState>, method: ContentMethod) -> Self {
        Self {
            state: Arc::clone(state),
            method,
            properties: BasicProperties::default(),
            malformed: None,
            size: None,
            body: Body::Empty,
        }
    }
}

impl Body {
    fn push(&mut self, piece: Bytes) {
        *self = match std::mem::replace(self, Self::Empty) {
            Self::Empty => Self::One(piece),
            Self::One(first) => {
                let mut joined = BytesMut::with_capacity(first.len() + piece.len());
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&piece);
                Self::Many(joined)
            }
            Self::Many(mut joined) => {
                joined.extend_from_slice(&piece);
                Self::Many(joined)
            }
        };
    }

    fn len(&self) -> usize {
        match self {
            Self::Empty => 0,
            Self::One(b) => b.len(),
            Self::Many(b) => b.len(),
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Self::Empty => Bytes::new(),
            Self::One(b) => b,
            Self::Many(b) => b.freeze(),
        }
    }
}
