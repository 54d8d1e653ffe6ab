//! The conversion of an envelope into amq-protocol's properties that the
//! router used before it wrote them straight to bytes: kept as the oracle
//! [`encode`](super::super::encode) is tested against.

use tollgate_wire::{
    BasicProperties,
    types::{AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable, LongString, ShortString},
};

use crate::{
    envelope::Envelope,
    error::TransportError,
    header_map::{HeaderError, HeaderValue, Headers},
};

/// The AMQP properties of `envelope`, checked for what AMQP can carry, as
/// the connection of broker user `own_user` publishes it (its `user_id` only
/// when it names that user).
pub(in crate::transport::amqp) fn properties(
    envelope: &Envelope,
    own_user: Option<&str>,
) -> Result<BasicProperties, TransportError> {
    envelope.check_wire()?;
    let mut props = BasicProperties::default()
        .with_delivery_mode(envelope.delivery_mode.amqp())
        .with_message_id(short(&envelope.id)?)
        .with_headers(field_table(&envelope.headers)?);
    if let Some(v) = &envelope.correlation_id {
        props = props.with_correlation_id(short(v)?);
    }
    if let Some(v) = &envelope.reply_to {
        props = props.with_reply_to(short(v)?);
    }
    if let Some(v) = &envelope.content_type {
        props = props.with_content_type(short(v)?);
    }
    if let Some(v) = envelope.timestamp {
        props = props.with_timestamp(v);
    }
    if let Some(ttl) = envelope.expiration {
        props = props.with_expiration(short(&ttl.as_millis().to_string())?);
    }
    if let Some(user) = envelope.user_id.as_deref().filter(|u| Some(*u) == own_user) {
        props = props.with_user_id(short(user)?);
    }
    Ok(props)
}

fn short(s: &str) -> Result<ShortString, TransportError> {
    ShortString::try_new(s).map_err(|_| HeaderError::PropertyTooLong { len: s.len() }.into())
}

/// Our header table as AMQP's (names are checked by [`Headers::check_wire`] first).
pub(super) fn field_table(headers: &Headers) -> Result<FieldTable, TransportError> {
    let mut table = FieldTable::default();
    for (name, value) in headers.iter() {
        table.insert(short(name)?, amqp_value(value)?);
    }
    Ok(table)
}

fn amqp_value(value: &HeaderValue) -> Result<AMQPValue, TransportError> {
    Ok(match value {
        HeaderValue::Bool(v) => AMQPValue::Boolean(*v),
        HeaderValue::I8(v) => AMQPValue::ShortShortInt(*v),
        HeaderValue::U8(v) => AMQPValue::ShortShortUInt(*v),
        HeaderValue::I16(v) => AMQPValue::ShortInt(*v),
        HeaderValue::U16(v) => AMQPValue::ShortUInt(*v),
        HeaderValue::I32(v) => AMQPValue::LongInt(*v),
        HeaderValue::U32(v) => AMQPValue::LongUInt(*v),
        HeaderValue::I64(v) => AMQPValue::LongLongInt(*v),
        HeaderValue::F32(v) => AMQPValue::Float(*v),
        HeaderValue::F64(v) => AMQPValue::Double(*v),
        HeaderValue::Decimal { scale, value } => AMQPValue::DecimalValue(DecimalValue {
            scale: *scale,
            value: *value,
        }),
        HeaderValue::String(s) => AMQPValue::LongString(LongString::from(s.as_bytes())),
        HeaderValue::Bytes(b) => AMQPValue::ByteArray(ByteArray::from(b.as_ref())),
        HeaderValue::Timestamp(t) => AMQPValue::Timestamp(*t),
        HeaderValue::Array(items) => AMQPValue::FieldArray(FieldArray::from(
            items
                .iter()
                .map(amqp_value)
                .collect::<Result<Vec<_>, _>>()?,
        )),
        HeaderValue::Table(t) => AMQPValue::FieldTable(field_table(t)?),
        HeaderValue::Void => AMQPValue::Void,
    })
}
