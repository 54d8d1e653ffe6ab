//! An envelope's AMQP properties written straight into the bytes of a
//! content header's property list (AMQP 0-9-1 §4.2.6.1; field tables in
//! RabbitMQ's dialect, as amq-protocol writes them), into one buffer: no
//! property struct, no field table of copied names and values per publish.

use crate::{
    envelope::Envelope,
    error::TransportError,
    header_map::{HeaderError, HeaderValue, Headers},
};

/// Property flags of the basic class, in the order of the property list.
mod flag {
    pub(super) const CONTENT_TYPE: u16 = 1 << 15;
    pub(super) const HEADERS: u16 = 1 << 13;
    pub(super) const DELIVERY_MODE: u16 = 1 << 12;
    pub(super) const CORRELATION_ID: u16 = 1 << 10;
    pub(super) const REPLY_TO: u16 = 1 << 9;
    pub(super) const EXPIRATION: u16 = 1 << 8;
    pub(super) const MESSAGE_ID: u16 = 1 << 7;
    pub(super) const TIMESTAMP: u16 = 1 << 6;
    pub(super) const USER_ID: u16 = 1 << 4;
}

/// The property list of `envelope` as the connection of broker user
/// `own_user` publishes it (its `user_id` only when it names that user),
/// checked for what AMQP can carry. Always holds the delivery mode, the
/// message id and the headers (empty ones too).
pub(super) fn properties(
    envelope: &Envelope,
    own_user: Option<&str>,
) -> Result<Vec<u8>, TransportError> {
    envelope.check_wire()?;
    let user_id = envelope.user_id.as_deref().filter(|u| Some(*u) == own_user);
    let expiration = envelope.expiration.map(|ttl| ttl.as_millis().to_string());
    let mut flags = flag::HEADERS | flag::DELIVERY_MODE | flag::MESSAGE_ID;
    for (present, bit) in [
        (envelope.content_type.is_some(), flag::CONTENT_TYPE),
        (envelope.correlation_id.is_some(), flag::CORRELATION_ID),
        (envelope.reply_to.is_some(), flag::REPLY_TO),
        (expiration.is_some(), flag::EXPIRATION),
        (envelope.timestamp.is_some(), flag::TIMESTAMP),
        (user_id.is_some(), flag::USER_ID),
    ] {
        if present {
            flags |= bit;
        }
    }
    let mut out = Vec::with_capacity(256 + envelope.headers.encoded_len());
    out.extend_from_slice(&flags.to_be_bytes());
    if let Some(v) = &envelope.content_type {
        short(&mut out, v)?;
    }
    table(&mut out, &envelope.headers)?;
    out.push(envelope.delivery_mode.amqp());
    if let Some(v) = &envelope.correlation_id {
        short(&mut out, v)?;
    }
    if let Some(v) = &envelope.reply_to {
        short(&mut out, v)?;
    }
    if let Some(v) = &expiration {
        short(&mut out, v)?;
    }
    short(&mut out, &envelope.id)?;
    if let Some(v) = envelope.timestamp {
        out.extend_from_slice(&v.to_be_bytes());
    }
    if let Some(v) = user_id {
        short(&mut out, v)?;
    }
    Ok(out)
}

/// A short string: its length in one octet, then its bytes.
fn short(out: &mut Vec<u8>, s: &str) -> Result<(), TransportError> {
    let len = u8::try_from(s.len()).map_err(|_| HeaderError::PropertyTooLong { len: s.len() })?;
    out.push(len);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// A field table: its size in four octets, then each name and typed value.
fn table(out: &mut Vec<u8>, headers: &Headers) -> Result<(), TransportError> {
    with_size(out, |out| {
        for (name, value) in headers.iter() {
            // A name past 255 bytes was refused by `check_wire` already.
            short(out, name)?;
            typed(out, value)?;
        }
        Ok(())
    })
}

/// Writes what `body` writes after a four-octet size, then fills the size in.
fn with_size(
    out: &mut Vec<u8>,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), TransportError>,
) -> Result<(), TransportError> {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    body(out)?;
    let size = out.len() - at - 4;
    let size = u32::try_from(size).map_err(|_| HeaderError::TooLarge { size })?;
    out[at..at + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// A value's type octet, then the value.
fn typed(out: &mut Vec<u8>, value: &HeaderValue) -> Result<(), TransportError> {
    match value {
        HeaderValue::Bool(v) => out.extend_from_slice(&[b't', u8::from(*v)]),
        HeaderValue::I8(v) => out.extend_from_slice(&[b'b', v.to_be_bytes()[0]]),
        HeaderValue::U8(v) => out.extend_from_slice(&[b'B', *v]),
        HeaderValue::I16(v) => tagged(out, b's', &v.to_be_bytes()),
        HeaderValue::U16(v) => tagged(out, b'u', &v.to_be_bytes()),
        HeaderValue::I32(v) => tagged(out, b'I', &v.to_be_bytes()),
        HeaderValue::U32(v) => tagged(out, b'i', &v.to_be_bytes()),
        HeaderValue::I64(v) => tagged(out, b'l', &v.to_be_bytes()),
        HeaderValue::F32(v) => tagged(out, b'f', &v.to_be_bytes()),
        HeaderValue::F64(v) => tagged(out, b'd', &v.to_be_bytes()),
        HeaderValue::Decimal { scale, value } => {
            out.extend_from_slice(&[b'D', *scale]);
            out.extend_from_slice(&value.to_be_bytes());
        }
        HeaderValue::String(s) => long(out, b'S', s.as_bytes())?,
        HeaderValue::Bytes(b) => long(out, b'x', b)?,
        HeaderValue::Timestamp(t) => tagged(out, b'T', &t.to_be_bytes()),
        HeaderValue::Array(items) => {
            out.push(b'A');
            with_size(out, |out| {
                items.iter().try_for_each(|item| typed(out, item))
            })?;
        }
        HeaderValue::Table(t) => {
            out.push(b'F');
            table(out, t)?;
        }
        HeaderValue::Void => out.push(b'V'),
    }
    Ok(())
}

fn tagged(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    out.extend_from_slice(bytes);
}

/// A long string or byte array: its type, its length in four octets, its bytes.
fn long(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) -> Result<(), TransportError> {
    let len =
        u32::try_from(bytes.len()).map_err(|_| HeaderError::TooLarge { size: bytes.len() })?;
    out.push(tag);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use tollgate_wire::types::{AMQPValue, FieldTable};

    use super::*;
    use crate::envelope::DeliveryMode;

    /// The property list amq-protocol writes for the same envelope (the
    /// conversion the router used before): the oracle.
    fn oracle(envelope: &Envelope, own_user: Option<&str>) -> Vec<u8> {
        let props = super::super::convert::reference::properties(envelope, own_user).unwrap();
        tollgate_wire::encode_properties(&props).unwrap()
    }

    /// A table with every type of header value, nested ones too.
    pub(in crate::transport::amqp) fn every_type() -> Headers {
        let nested = Headers::new().with(
            "inner",
            vec![
                HeaderValue::from(1u16),
                HeaderValue::Void,
                HeaderValue::Array(vec![]),
            ],
        );
        Headers::new()
            .with("b", true)
            .with("f", false)
            .with("i8", -3i8)
            .with("u8", 3u8)
            .with("i16", -300i16)
            .with("u16", 300u16)
            .with("i32", -70_000i32)
            .with("u32", 70_000u32)
            .with("i64", i64::MIN)
            .with("f32", 1.5f32)
            .with("f64", -2.25f64)
            .with(
                "dec",
                HeaderValue::Decimal {
                    scale: 3,
                    value: 12345,
                },
            )
            .with("s", "text ✓")
            .with("empty", "")
            .with("bin", Bytes::from_static(&[0xff, 0x00, 0xfe]))
            .with("ts", HeaderValue::Timestamp(1_700_000_000))
            .with("table", nested)
            .with("void", HeaderValue::Void)
    }

    #[test]
    fn writes_what_amq_protocol_writes_for_every_property_and_type() {
        let mut full = Envelope::new("body")
            .with_id("m-1")
            .with_correlation_id("c-1")
            .with_reply_to("amq.rabbitmq.reply-to")
            .with_content_type("application/json");
        full.headers = every_type();
        full.timestamp = Some(1_700_000_123);
        full.expiration = Some(Duration::from_millis(30_000));
        full.delivery_mode = DeliveryMode::Persistent;
        full.user_id = Some("tollgate-router".into());
        let bare = Envelope::new("");
        for (envelope, user) in [
            (&full, Some("tollgate-router")),
            (&full, Some("someone-else")),
            (&full, None),
            (&bare, Some("guest")),
        ] {
            assert_eq!(properties(envelope, user).unwrap(), oracle(envelope, user));
        }
    }

    #[test]
    fn what_it_writes_reads_back_as_the_same_envelope() {
        let mut envelope = Envelope::new("x").with_id("m-2");
        envelope.headers = every_type();
        let encoded = properties(&envelope, None).unwrap();
        let read = tollgate_wire::decode_properties(&encoded).unwrap();
        assert_eq!(read.message_id().as_ref().map(|s| s.as_str()), Some("m-2"));
        let table: &FieldTable = read.headers().as_ref().unwrap();
        assert_eq!(
            table.inner().get("i64"),
            Some(&AMQPValue::LongLongInt(i64::MIN))
        );
        assert_eq!(super::super::convert::headers_of(table), envelope.headers);
    }

    #[test]
    fn refuses_what_amqp_cannot_carry() {
        let long_id = Envelope::new("x").with_id("m".repeat(256));
        assert_eq!(
            properties(&long_id, None).unwrap_err().code(),
            "invalid_headers"
        );
        let long_name = Envelope::new("x").with_headers(Headers::new().with("n".repeat(256), 1u8));
        assert_eq!(
            properties(&long_name, None).unwrap_err().code(),
            "invalid_headers"
        );
        assert!(properties(&Envelope::new("x"), None).is_ok());
    }
}
