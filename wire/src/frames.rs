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
use bytes::{Buf, Bytes, BytesMut};

use crate::error::WireError;

/// The octet that ends every frame.
const FRAME_END: u8 = 0xCE;
/// Type octet, channel and size before a frame's payload.
const FRAME_HEAD: usize = 7;
/// What a frame adds around its payload (head and end octet).
pub(crate) const FRAME_OVERHEAD: usize = FRAME_HEAD + 1;
/// The frame type of a content header.
const TYPE_HEADER: u8 = 2;
/// The frame type of a content body.
const TYPE_BODY: u8 = 3;
/// Deepest nesting of tables and arrays in a content header's `headers` that
/// is parsed. amq-protocol's parser recurses once per level, and one frame
/// can nest 25,000 levels: deeper headers make the message unreadable
/// (a [`Delivery`](crate::Delivery) marked malformed) instead of overflowing
/// the reader's stack.
pub const MAX_HEADER_DEPTH: usize = 128;

/// One frame read from the broker.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "moved once per frame, straight to its dispatch; boxing would allocate per frame"
)]
pub(crate) enum Incoming {
    /// A frame amq-protocol parsed.
    Frame(AMQPFrame),
    /// A piece of a message's body, sliced off the read buffer without a copy.
    Body(ChannelId, Bytes),
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
    if kind == TYPE_BODY {
        let mut frame = buf.split_to(whole).freeze();
        frame.truncate(whole - 1);
        return Ok(Some(Incoming::Body(channel, frame.slice(FRAME_HEAD..))));
    }
    let payload = &buf[FRAME_HEAD..whole - 1];
    let parsed = if kind == TYPE_HEADER && header_depth(payload) > MAX_HEADER_DEPTH {
        Err(format!(
            "its headers nest deeper than {MAX_HEADER_DEPTH} levels"
        ))
    } else {
        parse_frame(&buf[..whole])
            .map(|(_, frame)| Incoming::Frame(frame))
            .map_err(|e| e.to_string())
    };
    let parsed = match parsed {
        Ok(frame) => Ok(frame),
        Err(reason) if kind == TYPE_HEADER && size >= 12 => Ok(Incoming::BadHeader {
            channel,
            body_size: u64::from_be_bytes([
                payload[4],
                payload[5],
                payload[6],
                payload[7],
                payload[8],
                payload[9],
                payload[10],
                payload[11],
            ]),
            reason,
        }),
        Err(reason) => Err(WireError::Protocol(format!(
            "an unreadable frame (type {kind}) on channel {channel}: {reason}"
        ))),
    };
    buf.advance(whole);
    parsed.map(Some)
}

/// How deep the `headers` table of a content header's payload nests (1: a
/// flat table; 0: none), walked without recursion and with every length
/// checked. The walk stops once past [`MAX_HEADER_DEPTH`]; a table it cannot
/// walk counts 0 and is left to the parser to refuse.
fn header_depth(payload: &[u8]) -> usize {
    /// The flags of the properties before `headers`, and of `headers`.
    const CONTENT_TYPE: u16 = 1 << 15;
    const CONTENT_ENCODING: u16 = 1 << 14;
    const HEADERS: u16 = 1 << 13;
    let mut cursor = Cursor {
        bytes: payload,
        at: 12,
    };
    let Some(flags) = cursor.u16() else { return 0 };
    // More flag words follow while the last one's lowest bit is set.
    let mut last = flags;
    while last & 1 == 1 {
        let Some(next) = cursor.u16() else { return 0 };
        last = next;
    }
    for flag in [CONTENT_TYPE, CONTENT_ENCODING] {
        if flags & flag != 0 && cursor.short_string().is_none() {
            return 0;
        }
    }
    if flags & HEADERS == 0 {
        return 0;
    }
    let Some(end) = cursor.sized_end() else {
        return 0;
    };
    // (whether the level is a table, where it ends)
    let mut levels = vec![(true, end)];
    let mut deepest = 1;
    while let Some(&(table, end)) = levels.last() {
        if cursor.at >= end {
            levels.pop();
            continue;
        }
        if table && cursor.short_string().is_none() {
            return 0;
        }
        let Some(kind) = cursor.take(1).map(|b| b[0]) else {
            return 0;
        };
        let skipped = match kind {
            b't' | b'b' | b'B' => cursor.take(1).is_some(),
            b's' | b'u' => cursor.take(2).is_some(),
            b'I' | b'i' | b'f' => cursor.take(4).is_some(),
            b'l' | b'L' | b'd' | b'T' => cursor.take(8).is_some(),
            b'D' => cursor.take(5).is_some(),
            b'V' => true,
            b'S' | b'x' => cursor.sized_end().map(|end| cursor.at = end).is_some(),
            b'A' | b'F' => match cursor.sized_end() {
                Some(inner) if inner <= end => {
                    levels.push((kind == b'F', inner));
                    deepest = deepest.max(levels.len());
                    if deepest > MAX_HEADER_DEPTH {
                        return deepest;
                    }
                    true
                }
                _ => false,
            },
            _ => false,
        };
        if !skipped {
            return 0;
        }
    }
    deepest
}

/// Reads through a payload, every length checked.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let taken = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(taken)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn short_string(&mut self) -> Option<()> {
        let len = self.take(1)?[0];
        self.take(len.into()).map(drop)
    }

    /// Reads a 32-bit length; where what it measures ends.
    fn sized_end(&mut self) -> Option<usize> {
        let b = self.take(4)?;
        let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let end = self.at.checked_add(len)?;
        (end <= self.bytes.len()).then_some(end)
    }
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

/// The class id of `basic`, whose content headers carry messages.
const CLASS_BASIC: u16 = 60;

/// `properties` as a content header's property flags and list (AMQP 0-9-1
/// §4.2.6.1), the form [`Channel::publish_encoded`](crate::Channel::publish_encoded) takes.
pub fn encode_properties(properties: &BasicProperties) -> Result<Vec<u8>, WireError> {
    basic::gen_properties(properties)(WriteContext::from(Vec::new()))
        .map(|ctx| ctx.write)
        .map_err(|e| WireError::Protocol(format!("cannot encode properties: {e:?}")))
}

/// A property list (as [`encode_properties`] writes it) read back.
pub fn decode_properties(bytes: &[u8]) -> Result<BasicProperties, WireError> {
    basic::parse_properties(bytes)
        .map(|(_, properties)| properties)
        .map_err(|e| WireError::Protocol(format!("cannot parse properties: {e:?}")))
}

/// The frames of one publish (method, content header, body cut to fit
/// `frame_max`) as one buffer, so that they reach the socket together.
/// `properties` is the encoded property list ([`encode_properties`]); the
/// content header must fit one frame.
pub(crate) fn publish(
    channel: ChannelId,
    publish: basic::Publish,
    properties: &[u8],
    body: &[u8],
    frame_max: usize,
) -> Result<Vec<u8>, WireError> {
    let chunk = frame_max.saturating_sub(FRAME_OVERHEAD).max(1);
    let header_size = 2 + 2 + 8 + properties.len();
    if header_size + FRAME_OVERHEAD > frame_max {
        return Err(WireError::HeaderTooLarge {
            len: header_size,
            frame_max,
        });
    }
    let mut out = Vec::with_capacity(
        // The method: its frame, two short strings and a few octets.
        FRAME_OVERHEAD
            + 2 * 256
            + 8
            + FRAME_OVERHEAD
            + header_size
            + body.len()
            + FRAME_OVERHEAD * body.len().div_ceil(chunk),
    );
    out = encode(
        &AMQPFrame::Method(
            channel,
            AMQPClass::Basic(basic::AMQPMethod::Publish(publish)),
        ),
        out,
    )?;
    let body_size = body.len() as u64;
    push_frame(
        &mut out,
        TYPE_HEADER,
        channel,
        &[
            &CLASS_BASIC.to_be_bytes(),
            &0u16.to_be_bytes(), // weight, unused
            &body_size.to_be_bytes(),
            properties,
        ],
    );
    for piece in body.chunks(chunk) {
        push_frame(&mut out, TYPE_BODY, channel, &[piece]);
    }
    Ok(out)
}

/// Appends one frame of type `kind` on `channel` whose payload is `parts`
/// in turn (their total fits a frame: the caller checked it against
/// `frame_max`, which is a `u32`).
fn push_frame(out: &mut Vec<u8>, kind: u8, channel: ChannelId, parts: &[&[u8]]) {
    let size: usize = parts.iter().map(|p| p.len()).sum();
    out.push(kind);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&u32::try_from(size).unwrap_or(u32::MAX).to_be_bytes());
    for part in parts {
        out.extend_from_slice(part);
    }
    out.push(FRAME_END);
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
            &encode_properties(&BasicProperties::default().with_message_id("ab".into())).unwrap(),
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
            Some(Incoming::Body(1, body)) if &body[..] == b"hi"
        ));
    }

    fn nested(depth: usize) -> amq_protocol::types::FieldTable {
        use amq_protocol::types::{AMQPValue, FieldArray, FieldTable};
        let mut value = AMQPValue::LongString("leaf".into());
        for level in 1..depth {
            value = if level % 2 == 0 {
                let mut t = FieldTable::default();
                t.insert("t".into(), value);
                AMQPValue::FieldTable(t)
            } else {
                AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::Boolean(true), value]))
            };
        }
        let mut top = FieldTable::default();
        top.insert("n".into(), AMQPValue::LongLongInt(1));
        top.insert("deep".into(), value);
        top
    }

    fn header_frame(headers: amq_protocol::types::FieldTable) -> Vec<u8> {
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_headers(headers)
            .with_message_id("m".into());
        publish(
            1,
            basic::Publish {
                exchange: "".into(),
                routing_key: "q".into(),
                mandatory: false,
                immediate: false,
            },
            &encode_properties(&properties).unwrap(),
            b"",
            1 << 20,
        )
        .unwrap()
    }

    #[test]
    fn header_depth_is_counted_without_recursion() {
        for depth in [1, 2, 7, MAX_HEADER_DEPTH] {
            let mut buf = BytesMut::from(&header_frame(nested(depth))[..]);
            next(&mut buf, 1 << 20).unwrap();
            let header = next(&mut buf, 1 << 20).unwrap().unwrap();
            assert!(
                matches!(header, Incoming::Frame(AMQPFrame::Header(1, _))),
                "depth {depth}: {header:?}"
            );
        }
    }

    #[test]
    fn headers_nested_too_deep_make_one_unreadable_message() {
        let mut buf = BytesMut::from(&header_frame(nested(MAX_HEADER_DEPTH + 1))[..]);
        next(&mut buf, 1 << 20).unwrap();
        match next(&mut buf, 1 << 20).unwrap().unwrap() {
            Incoming::BadHeader { reason, .. } => assert!(reason.contains("deeper"), "{reason}"),
            other => panic!("got {other:?}"),
        }
    }

    fn to_queue(queue: &str) -> basic::Publish {
        basic::Publish {
            exchange: "".into(),
            routing_key: queue.into(),
            mandatory: true,
            immediate: false,
        }
    }

    #[test]
    fn a_publish_is_written_as_amq_protocol_writes_it_and_reads_back() {
        let mut headers = amq_protocol::types::FieldTable::default();
        headers.insert(
            "k".into(),
            amq_protocol::types::AMQPValue::LongString("v".into()),
        );
        let properties = BasicProperties::default()
            .with_message_id("m-1".into())
            .with_delivery_mode(2)
            .with_headers(headers);
        let body: Vec<u8> = (0..=255).cycle().take(1000).collect();
        let frame_max = 300;
        let bytes = publish(
            7,
            to_queue("q"),
            &encode_properties(&properties).unwrap(),
            &body,
            frame_max,
        )
        .unwrap();
        // The same frames as amq-protocol's own encoder writes them.
        let mut expected = method(
            7,
            AMQPClass::Basic(basic::AMQPMethod::Publish(to_queue("q"))),
        )
        .unwrap();
        let header = amq_protocol::frame::AMQPContentHeader {
            class_id: CLASS_BASIC,
            body_size: body.len() as u64,
            properties: properties.clone(),
        };
        expected = encode(&AMQPFrame::Header(7, header), expected).unwrap();
        for piece in body.chunks(frame_max - FRAME_OVERHEAD) {
            expected = encode(&AMQPFrame::Body(7, piece.to_vec()), expected).unwrap();
        }
        assert_eq!(bytes, expected);
        // Read back: the method, the header, and the body cut to fit frames.
        let mut buf = BytesMut::from(&bytes[..]);
        assert!(matches!(
            next(&mut buf, frame_max).unwrap(),
            Some(Incoming::Frame(AMQPFrame::Method(7, _)))
        ));
        match next(&mut buf, frame_max).unwrap() {
            Some(Incoming::Frame(AMQPFrame::Header(7, header))) => {
                assert_eq!(header.body_size, 1000);
                assert_eq!(header.properties, properties);
            }
            other => panic!("got {other:?}"),
        }
        let mut read = Vec::new();
        while let Some(Incoming::Body(7, piece)) = next(&mut buf, frame_max).unwrap() {
            read.extend_from_slice(&piece);
        }
        assert_eq!(read, body);
        assert_eq!(
            decode_properties(&encode_properties(&properties).unwrap()).unwrap(),
            properties
        );
    }

    #[test]
    fn a_content_header_past_the_frame_size_is_refused_before_it_is_sent() {
        let properties = BasicProperties::default().with_message_id("m".repeat(200).into());
        let encoded = encode_properties(&properties).unwrap();
        assert!(matches!(
            publish(1, to_queue("q"), &encoded, b"x", 128),
            Err(WireError::HeaderTooLarge { frame_max: 128, .. })
        ));
        assert!(publish(1, to_queue("q"), &encoded, b"x", 4096).is_ok());
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
