//! Cutting the byte stream into frames, and frames into bytes, with
//! amq-protocol's codec.
//!
//! Frames are delimited here (type, channel, size, payload, end octet) before
//! amq-protocol parses one, so a frame whose content header cannot be parsed
//! (a short string that is not UTF-8, say: RabbitMQ passes such properties
//! through) is one bad message on one channel, not a stream that can no
//! longer be read.

use amq_protocol::{
    frame::{AMQPFrame, WriteContext, gen_frame, parse_frame},
    protocol::{AMQPClass, BasicProperties, basic},
    types::{ChannelId, ShortString},
};
use bytes::{Buf, BytesMut};

use crate::error::WireError;

/// The octet that ends every frame.
const FRAME_END: u8 = 0xCE;
/// Type octet, channel and size before a frame's payload.
const FRAME_HEAD: usize = 7;
/// What a frame adds around its payload (head and end octet).
pub(crate) const FRAME_OVERHEAD: usize = FRAME_HEAD + 1;
/// The frame type of a content header.
const TYPE_HEADER: u8 = 2;

/// One frame read from the broker.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "moved once per frame, straight to its dispatch; boxing would allocate per frame"
)]
pub(crate) enum Incoming {
    /// A frame amq-protocol parsed.
    Frame(AMQPFrame),
    /// A content header on `channel` that could not be parsed: the message it
    /// introduces is unreadable, the stream is not.
    BadHeader {
        /// The channel it came on.
        channel: ChannelId,
        /// Its body size (read from the fixed part of the header).
        body_size: u64,
        /// What the parser said.
        reason: String,
    },
}

/// Takes the next whole frame off `buf`; `None` until one is complete.
///
/// Errors on a frame longer than `frame_max`, a missing end octet, or an
/// unparsable frame other than a content header.
pub(crate) fn next(buf: &mut BytesMut, frame_max: usize) -> Result<Option<Incoming>, WireError> {
    if buf.len() < FRAME_HEAD {
        return Ok(None);
    }
    let kind = buf[0];
    let channel = u16::from_be_bytes([buf[1], buf[2]]);
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
    if size + FRAME_OVERHEAD > frame_max {
        return Err(WireError::Protocol(format!(
            "a frame of {size} bytes on channel {channel}, more than the agreed {frame_max}"
        )));
    }
    let whole = FRAME_HEAD + size + 1;
    if buf.len() < whole {
        buf.reserve(whole - buf.len());
        return Ok(None);
    }
    if buf[whole - 1] != FRAME_END {
        return Err(WireError::Protocol(format!(
            "a frame on channel {channel} does not end with {FRAME_END:#x}"
        )));
    }
    let parsed = match parse_frame(&buf[..whole]) {
        Ok((_, frame)) => Ok(Incoming::Frame(frame)),
        Err(e) if kind == TYPE_HEADER && size >= 12 => {
            let at = FRAME_HEAD + 4;
            let body_size = u64::from_be_bytes(
                buf[at..at + 8]
                    .try_into()
                    .map_err(|_| WireError::Protocol("short content header".into()))?,
            );
            Ok(Incoming::BadHeader {
                channel,
                body_size,
                reason: format!("{e}"),
            })
        }
        Err(e) => Err(WireError::Protocol(format!(
            "an unreadable frame (type {kind}) on channel {channel}: {e}"
        ))),
    };
    buf.advance(whole);
    parsed.map(Some)
}

/// Appends `frame`'s bytes to `out`.
pub(crate) fn encode(frame: &AMQPFrame, out: Vec<u8>) -> Result<Vec<u8>, WireError> {
    gen_frame(frame)(WriteContext::from(out))
        .map(|ctx| ctx.write)
        .map_err(|e| WireError::Protocol(format!("cannot encode a frame: {e:?}")))
}

/// A method frame's bytes.
pub(crate) fn method(channel: ChannelId, class: AMQPClass) -> Result<Vec<u8>, WireError> {
    encode(&AMQPFrame::Method(channel, class), Vec::new())
}

/// The frames of one publish (method, content header, body cut to fit
/// `frame_max`) as one buffer, so that they reach the socket together.
pub(crate) fn publish(
    channel: ChannelId,
    publish: basic::Publish,
    properties: BasicProperties,
    body: &[u8],
    frame_max: usize,
) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(body.len() + 256);
    out = encode(
        &AMQPFrame::Method(
            channel,
            AMQPClass::Basic(basic::AMQPMethod::Publish(publish)),
        ),
        out,
    )?;
    out = encode(
        &AMQPFrame::Header(
            channel,
            amq_protocol::frame::AMQPContentHeader {
                class_id: 60,
                body_size: body.len() as u64,
                properties,
            },
        ),
        out,
    )?;
    for chunk in body.chunks(frame_max.saturating_sub(FRAME_OVERHEAD).max(1)) {
        out = encode(&AMQPFrame::Body(channel, chunk.to_vec()), out)?;
    }
    Ok(out)
}

/// `s` as an AMQP short string, or [`WireError::TooLong`] naming `what`.
pub fn short(what: &'static str, s: &str) -> Result<ShortString, WireError> {
    ShortString::try_new(s).map_err(|_| WireError::TooLong { what, len: s.len() })
}

#[cfg(test)]
mod tests {
    use amq_protocol::protocol::channel;

    use super::*;

    #[test]
    fn a_frame_split_anywhere_is_read_once_whole() {
        let bytes = method(
            3,
            AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {})),
        )
        .unwrap();
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert!(next(&mut buf, 4096).unwrap().is_none(), "cut at {cut}");
            buf.extend_from_slice(&bytes[cut..]);
            let frame = next(&mut buf, 4096).unwrap().unwrap();
            assert!(matches!(frame, Incoming::Frame(AMQPFrame::Method(3, _))));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn an_unreadable_content_header_is_one_bad_message() {
        let mut bytes = publish(
            1,
            basic::Publish {
                exchange: "".into(),
                routing_key: "q".into(),
                mandatory: false,
                immediate: false,
            },
            BasicProperties::default().with_message_id("ab".into()),
            b"hi",
            4096,
        )
        .unwrap();
        // The message id's two bytes become invalid UTF-8.
        let at = bytes.windows(2).position(|w| w == b"ab").unwrap();
        bytes[at] = 0xff;
        bytes[at + 1] = 0xfe;
        let mut buf = BytesMut::from(&bytes[..]);
        assert!(matches!(
            next(&mut buf, 4096).unwrap(),
            Some(Incoming::Frame(AMQPFrame::Method(1, _)))
        ));
        assert!(matches!(
            next(&mut buf, 4096).unwrap(),
            Some(Incoming::BadHeader {
                channel: 1,
                body_size: 2,
                ..
            })
        ));
        assert!(matches!(
            next(&mut buf, 4096).unwrap(),
            Some(Incoming::Frame(AMQPFrame::Body(1, _)))
        ));
    }

    #[test]
    fn a_frame_over_the_agreed_size_is_refused() {
        let bytes = method(
            3,
            AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {})),
        )
        .unwrap();
        let mut buf = BytesMut::from(&bytes[..]);
        assert!(next(&mut buf, 8).is_err());
    }
}
