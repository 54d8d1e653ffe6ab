//! One AMQP connection: the handshake, its channels, and the three tasks that
//! run it (reader, writer, heartbeats), all on the caller's tokio runtime.
//!
//! A publish or an ack is encoded by the task that makes it and queued for
//! the writer, which writes whatever is queued in one go; the reader hands a
//! delivery straight to its consumer's queue. No thread of its own, so a
//! message crosses no thread boundary that tokio does not choose.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use amq_protocol::{
    auth::Credentials,
    frame::{AMQPFrame, ProtocolVersion},
    protocol::{AMQPClass, connection},
    types::{AMQPValue, ChannelId, FieldTable, LongString},
    uri::{AMQPScheme, AMQPUri, SASLMechanism},
};
use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
    sync::{mpsc, watch},
};

use crate::{
    channel::{Channel, ChannelState},
    error::WireError,
    frames::{self, Incoming, short},
    io, tls,
};

/// The largest frame this client asks for (RabbitMQ's default).
const FRAME_MAX: u32 = 131_072;
/// How long the handshake may take in all.
const HANDSHAKE_WAIT: Duration = Duration::from_secs(10);
/// The heartbeat asked for when the URL names none (RabbitMQ's default).
const HEARTBEAT_SECS: u16 = 60;

/// A connection to RabbitMQ. Cheap to clone; every clone is the same connection.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

/// What the connection's tasks and its channels share.
pub(crate) struct Shared {
    out: mpsc::UnboundedSender<Vec<u8>>,
    channels: Mutex<Channels>,
    frame_max: usize,
    failure: Mutex<Option<WireError>>,
    dead: watch::Sender<bool>,
    blocked: AtomicBool,
    name: String,
}

struct Channels {
    open: HashMap<ChannelId, Arc<ChannelState>>,
    last: ChannelId,
    max: ChannelId,
}

/// What the handshake agreed on.
struct Tuned {
    frame_max: u32,
    channel_max: u16,
    heartbeat: u16,
}

// === Connection ===

impl Connection {
    /// Connects to the broker at `uri` and logs in (PLAIN, or EXTERNAL when
    /// the URL asks for it), under the connection name `name` (shown in
    /// RabbitMQ's management UI).
    ///
    /// Errors with [`WireError::ConnectionClosed`] (403) for a refused login.
    /// An `amqps` URL connects over TLS (rustls, the system's trusted roots).
    pub async fn open(uri: &AMQPUri, name: &str) -> Result<Self, WireError> {
        let host = uri.authority.host.as_str();
        let stream = TcpStream::connect((host, uri.authority.port)).await?;
        stream.set_nodelay(true)?;
        if uri.scheme == AMQPScheme::AMQPS {
            let mut stream = tls::connect(stream, host).await?;
            let (tuned, buf) = negotiate(&mut stream, uri, name).await?;
            let (read, write) = tokio::io::split(stream);
            Ok(Self::start(name, tuned, read, write, buf))
        } else {
            let mut stream = stream;
            let (tuned, buf) = negotiate(&mut stream, uri, name).await?;
            let (read, write) = stream.into_split();
            Ok(Self::start(name, tuned, read, write, buf))
        }
    }

    /// Runs a connection whose handshake is done on the two halves of its stream.
    fn start<R, W>(name: &str, tuned: Tuned, read: R, write: W, buf: BytesMut) -> Self
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (out, queued) = mpsc::unbounded_channel();
        let (dead, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            out,
            channels: Mutex::new(Channels {
                open: HashMap::new(),
                last: 0,
                max: tuned.channel_max,
            }),
            frame_max: tuned.frame_max as usize,
            failure: Mutex::new(None),
            dead,
            blocked: AtomicBool::new(false),
            name: name.to_owned(),
        });
        let heartbeat = (tuned.heartbeat > 0).then(|| Duration::from_secs(tuned.heartbeat.into()));
        io::start(&shared, read, write, buf, queued, heartbeat);
        Self { shared }
    }

    /// Opens a new channel.
    pub async fn channel(&self) -> Result<Channel, WireError> {
        let state = self.shared.allocate()?;
        let channel = Channel::new(Arc::clone(&state), Arc::clone(&self.shared));
        if let Err(e) = channel.open().await {
            self.shared.forget(state.id);
            return Err(e);
        }
        Ok(channel)
    }

    /// Whether the connection is open.
    pub fn is_open(&self) -> bool {
        self.shared.failure().is_none()
    }

    /// Whether the broker blocks this connection's publishes
    /// (`connection.blocked`: a memory or disk alarm).
    pub fn is_blocked(&self) -> bool {
        self.shared.blocked.load(Ordering::Acquire)
    }

    /// Why the connection ended, once it has (waits until then).
    pub async fn closed(&self) -> WireError {
        let mut dead = self.shared.dead.subscribe();
        // Only fails when the sender is gone, which `self` keeps alive.
        let _ = dead.wait_for(|dead| *dead).await;
        self.shared.failure().unwrap_or(WireError::Closed)
    }

    /// Closes the connection (`connection.close`) and waits for the broker's
    /// answer; every channel ends with [`WireError::Closed`].
    pub async fn close(&self) -> Result<(), WireError> {
        if self.shared.failure().is_some() {
            return Ok(());
        }
        let close = AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
            reply_code: 200,
            reply_text: "closed by owner".into(),
            class_id: 0,
            method_id: 0,
        }));
        self.shared.send(frames::method(0, close)?)?;
        match self.closed().await {
            WireError::Closed => Ok(()),
            other => Err(other),
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.shared.name)
            .field("open", &self.is_open())
            .finish()
    }
}

// === Shared ===

impl Shared {
    /// Queues bytes for the socket.
    pub(crate) fn send(&self, bytes: Vec<u8>) -> Result<(), WireError> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        self.out.send(bytes).map_err(|_| WireError::Closed)
    }

    pub(crate) fn failure(&self) -> Option<WireError> {
        self.failure.lock().clone()
    }

    pub(crate) fn frame_max(&self) -> usize {
        self.frame_max
    }

    pub(crate) fn set_blocked(&self, blocked: bool) {
        self.blocked.store(blocked, Ordering::Release);
    }

    pub(crate) fn dead(&self) -> watch::Receiver<bool> {
        self.dead.subscribe()
    }

    /// The open channel `id`, if any.
    pub(crate) fn channel(&self, id: ChannelId) -> Option<Arc<ChannelState>> {
        self.channels.lock().open.get(&id).cloned()
    }

    /// A channel the broker (or this side) finished closing.
    pub(crate) fn forget(&self, id: ChannelId) {
        self.channels.lock().open.remove(&id);
    }

    /// Ends the connection: every channel learns `error` (the first sticks).
    pub(crate) fn die(&self, error: WireError) {
        let error = self.failure.lock().get_or_insert(error).clone();
        let channels: Vec<_> = self.channels.lock().open.drain().map(|(_, c)| c).collect();
        for channel in channels {
            channel.fail(error.clone());
        }
        self.dead.send_replace(true);
    }

    /// A fresh channel number, after the last one handed out.
    fn allocate(&self) -> Result<Arc<ChannelState>, WireError> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        let mut channels = self.channels.lock();
        let max = channels.max;
        let free = (1..=max)
            .map(|step| {
                ((u32::from(channels.last) + u32::from(step) - 1) % u32::from(max) + 1) as u16
            })
            .find(|id| !channels.open.contains_key(id))
            .ok_or_else(|| WireError::Protocol(format!("all {max} channels are open")))?;
        let state = Arc::new(ChannelState::new(free));
        channels.open.insert(free, Arc::clone(&state));
        channels.last = free;
        Ok(state)
    }
}

// === handshake ===

/// The handshake, bounded by [`HANDSHAKE_WAIT`]; what it agreed on, and what
/// was read past it.
async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    uri: &AMQPUri,
    name: &str,
) -> Result<(Tuned, BytesMut), WireError> {
    let mut buf = BytesMut::with_capacity(8192);
    let tuned = tokio::time::timeout(HANDSHAKE_WAIT, handshake(stream, &mut buf, uri, name))
        .await
        .map_err(|_| WireError::Protocol("the broker did not finish the handshake".into()))??;
    Ok((tuned, buf))
}

async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    uri: &AMQPUri,
    name: &str,
) -> Result<Tuned, WireError> {
    let header = frames::encode(
        &AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1()),
        Vec::new(),
    )?;
    stream.write_all(&header).await?;
    let start = match read_method(stream, buf).await? {
        connection::AMQPMethod::Start(start) => start,
        other => return Err(unexpected_in_handshake("connection.start", &other)),
    };
    let mechanism = uri.query.auth_mechanism.unwrap_or_default();
    let offered = String::from_utf8_lossy(start.mechanisms.as_bytes()).into_owned();
    if !offered.split(' ').any(|m| m == mechanism.name()) {
        return Err(WireError::Mechanism(mechanism.name().to_owned()));
    }
    let credentials = Credentials::from(uri.authority.userinfo.clone());
    let response = match mechanism {
        SASLMechanism::External => LongString::from(""),
        other => credentials.sasl_auth_string(other),
    };
    let start_ok = connection::StartOk {
        client_properties: client_properties(name),
        mechanism: short("mechanism", mechanism.name())?,
        response,
        locale: "en_US".into(),
    };
    write_method(stream, connection::AMQPMethod::StartOk(start_ok)).await?;
    let tune = match read_method(stream, buf).await? {
        connection::AMQPMethod::Tune(tune) => tune,
        other => return Err(unexpected_in_handshake("connection.tune", &other)),
    };
    let tuned = Tuned {
        frame_max: agree(uri.query.frame_max.unwrap_or(FRAME_MAX), tune.frame_max),
        channel_max: agree(uri.query.channel_max.unwrap_or(u16::MAX), tune.channel_max).max(1),
        heartbeat: uri
            .query
            .heartbeat
            .unwrap_or(HEARTBEAT_SECS)
            .min(if tune.heartbeat == 0 {
                u16::MAX
            } else {
                tune.heartbeat
            }),
    };
    write_method(
        stream,
        connection::AMQPMethod::TuneOk(connection::TuneOk {
            channel_max: tuned.channel_max,
            frame_max: tuned.frame_max,
            heartbeat: tuned.heartbeat,
        }),
    )
    .await?;
    write_method(
        stream,
        connection::AMQPMethod::Open(connection::Open {
            virtual_host: short("virtual host", &uri.vhost)?,
        }),
    )
    .await?;
    match read_method(stream, buf).await? {
        connection::AMQPMethod::OpenOk(_) => Ok(tuned),
        other => Err(unexpected_in_handshake("connection.open-ok", &other)),
    }
}

/// The smaller of two limits where 0 means "no limit".
fn agree<T: Ord + Copy + Default>(ours: T, theirs: T) -> T {
    match (ours == T::default(), theirs == T::default()) {
        (true, _) => theirs,
        (_, true) => ours,
        _ => ours.min(theirs),
    }
}

fn client_properties(name: &str) -> FieldTable {
    let mut capabilities = FieldTable::default();
    for capability in [
        "publisher_confirms",
        "consumer_cancel_notify",
        "basic.nack",
        "connection.blocked",
        "authentication_failure_close",
        "per_consumer_qos",
    ] {
        capabilities.insert(capability.into(), AMQPValue::Boolean(true));
    }
    let mut properties = FieldTable::default();
    properties.insert(
        "product".into(),
        AMQPValue::LongString("tollgate-wire".into()),
    );
    properties.insert(
        "version".into(),
        AMQPValue::LongString(env!("CARGO_PKG_VERSION").into()),
    );
    properties.insert("connection_name".into(), AMQPValue::LongString(name.into()));
    properties.insert("capabilities".into(), AMQPValue::FieldTable(capabilities));
    properties
}

/// Reads the next connection-class method (the broker's `connection.close`
/// becomes [`WireError::ConnectionClosed`]).
async fn read_method<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
) -> Result<connection::AMQPMethod, WireError> {
    loop {
        match frames::next(buf, FRAME_MAX as usize)? {
            Some(Incoming::Frame(AMQPFrame::Method(0, AMQPClass::Connection(method)))) => {
                if let connection::AMQPMethod::Close(close) = method {
                    return Err(WireError::ConnectionClosed {
                        code: close.reply_code,
                        text: close.reply_text.as_str().to_owned(),
                    });
                }
                return Ok(method);
            }
            Some(Incoming::Frame(AMQPFrame::ProtocolHeader(version))) => {
                return Err(WireError::Protocol(format!(
                    "the broker speaks AMQP {}.{}, not 0-9-1",
                    version.major, version.minor
                )));
            }
            Some(Incoming::Frame(AMQPFrame::Heartbeat)) => continue,
            Some(other) => {
                return Err(WireError::Protocol(format!(
                    "unexpected frame during the handshake: {other:?}"
                )));
            }
            None => {
                if stream.read_buf(buf).await? == 0 {
                    return Err(WireError::Io(Arc::new(std::io::Error::from(
                        std::io::ErrorKind::UnexpectedEof,
                    ))));
                }
            }
        }
    }
}

async fn write_method<S: AsyncWrite + Unpin>(
    stream: &mut S,
    method: connection::AMQPMethod,
) -> Result<(), WireError> {
    let bytes = frames::method(0, AMQPClass::Connection(method))?;
    stream.write_all(&bytes).await?;
    Ok(())
}

fn unexpected_in_handshake(expected: &str, got: &connection::AMQPMethod) -> WireError {
    WireError::Protocol(format!(
        "expected {expected} during the handshake, got method {}",
        AMQPClass::Connection(got.clone()).get_amqp_method_id()
    ))
}
