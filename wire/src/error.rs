//! What can go wrong on the wire, with the broker's own reply codes kept.

use std::sync::Arc;

/// An error of the AMQP client. Cloneable: one broken connection fails every
/// call waiting on it with the same error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WireError {
    /// The socket failed (connect, read or write).
    #[error("socket: {0}")]
    Io(Arc<std::io::Error>),
    /// The broker closed the channel (`channel.close`): `code` is AMQP's
    /// reply code (404 not found, 406 precondition failed, 403 access refused…).
    #[error("the broker closed the channel: {code} {text}")]
    ChannelClosed {
        /// The broker's reply code.
        code: u16,
        /// The broker's reply text.
        text: String,
    },
    /// The broker closed the connection (`connection.close`), or refused the
    /// login (403 with `authentication_failure_close`).
    #[error("the broker closed the connection: {code} {text}")]
    ConnectionClosed {
        /// The broker's reply code.
        code: u16,
        /// The broker's reply text.
        text: String,
    },
    /// The connection or channel was closed by this side.
    #[error("closed")]
    Closed,
    /// No frame arrived for two heartbeat intervals.
    #[error("the broker missed its heartbeats")]
    MissedHeartbeats,
    /// The broker sent something this client cannot read, or did not expect.
    #[error("protocol: {0}")]
    Protocol(String),
    /// TLS could not be set up (no trusted roots, a bad server name).
    #[error("TLS: {0}")]
    Tls(String),
    /// The broker offers none of the login mechanisms asked for.
    #[error("the broker does not offer the {0} login mechanism")]
    Mechanism(String),
    /// A name or value longer than AMQP can carry (short strings: 255 bytes).
    #[error("{what} is {len} bytes; AMQP short strings hold at most 255")]
    TooLong {
        /// What was too long.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// A message's content header (its properties) does not fit one frame.
    #[error("the content header is {len} bytes; a frame holds at most {frame_max}")]
    HeaderTooLarge {
        /// The header's payload in bytes.
        len: usize,
        /// The connection's largest frame, in bytes.
        frame_max: usize,
    },
}

impl WireError {
    /// The broker's reply code, when the broker closed the channel or the
    /// connection.
    pub fn reply_code(&self) -> Option<u16> {
        match self {
            Self::ChannelClosed { code, .. } | Self::ConnectionClosed { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the connection is gone (retrying on a new one may succeed),
    /// as opposed to a refusal of this one call.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            Self::Io(_)
                | Self::ConnectionClosed { .. }
                | Self::MissedHeartbeats
                | Self::Protocol(_)
        )
    }
}

impl From<std::io::Error> for WireError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(Arc::new(e))
    }
}
