//! Conversions between Tollgate's types and the AMQP client's: a delivery
//! into an envelope, client errors into transport errors. (An envelope goes
//! out through [`encode`](super::encode), straight to bytes.)

use bytes::Bytes;
use tollgate_wire::{
    Acker, BasicProperties, WireError,
    types::{AMQPValue, FieldTable, ShortString},
};

use crate::{
    envelope::{DeliveryMode, Envelope},
    error::TransportError,
    header_map::{HeaderError, HeaderValue, Headers, MAX_DEPTH},
    headers,
    transport::DeliveryInfo,
};

/// Splits a delivery into our envelope, its delivery facts and its acker.
pub(super) fn split(delivery: tollgate_wire::Delivery) -> (Envelope, DeliveryInfo, Acker) {
    let tollgate_wire::Delivery {
        exchange,
        routing_key,
        redelivered,
        properties,
        body,
        malformed,
        acker,
    } = delivery;
    let envelope = envelope(&properties, body);
    let delivery_count = envelope
        .headers
        .get(headers::X_DELIVERY_COUNT)
        .and_then(HeaderValue::as_i64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0);
    let info = DeliveryInfo {
        exchange,
        routing_key,
        redelivered,
        delivery_count,
        unreadable: malformed,
    };
    (envelope, info, acker)
}

/// The envelope of a message with these properties and this body (which
/// moves in without a copy).
fn envelope(props: &BasicProperties, body: Bytes) -> Envelope {
    let string = |v: &Option<ShortString>| v.as_ref().map(|s| s.as_str().to_owned());
    Envelope {
        id: string(props.message_id()).unwrap_or_default(),
        correlation_id: string(props.correlation_id()),
        reply_to: string(props.reply_to()),
        content_type: string(props.content_type()),
        timestamp: *props.timestamp(),
        headers: props.headers().as_ref().map(headers_of).unwrap_or_default(),
        payload: body,
        delivery_mode: match props.delivery_mode() {
            Some(mode) if *mode == DeliveryMode::Persistent.amqp() => DeliveryMode::Persistent,
            _ => DeliveryMode::Transient,
        },
        expiration: props
            .expiration()
            .as_ref()
            .and_then(|ms| ms.as_str().parse().ok())
            .map(std::time::Duration::from_millis),
        user_id: string(props.user_id()),
    }
}

/// Deepest level converted: a little past what [`Headers::check_wire`]
/// accepts, so a hostile table stays recognisably too deep (and is refused
/// downstream) without its full depth ever being walked by recursion here.
const CONVERT_DEPTH: usize = MAX_DEPTH + 2;

/// Lapin's header table as ours. Every AMQP value has a counterpart; nesting
/// below [`CONVERT_DEPTH`] is cut (replaced by `Void`).
pub(super) fn headers_of(table: &FieldTable) -> Headers {
    table_at(table, 1)
}

fn table_at(table: &FieldTable, depth: usize) -> Headers {
    table
        .inner()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), header_value(v, depth)))
        .collect()
}

fn header_value(value: &AMQPValue, depth: usize) -> HeaderValue {
    if depth > CONVERT_DEPTH {
        return HeaderValue::Void;
    }
    match value {
        AMQPValue::Boolean(v) => HeaderValue::Bool(*v),
        AMQPValue::ShortShortInt(v) => HeaderValue::I8(*v),
        AMQPValue::ShortShortUInt(v) => HeaderValue::U8(*v),
        AMQPValue::ShortInt(v) => HeaderValue::I16(*v),
        AMQPValue::ShortUInt(v) => HeaderValue::U16(*v),
        AMQPValue::LongInt(v) => HeaderValue::I32(*v),
        AMQPValue::LongUInt(v) => HeaderValue::U32(*v),
        AMQPValue::LongLongInt(v) => HeaderValue::I64(*v),
        AMQPValue::Float(v) => HeaderValue::F32(*v),
        AMQPValue::Double(v) => HeaderValue::F64(*v),
        AMQPValue::DecimalValue(d) => HeaderValue::Decimal {
            scale: d.scale,
            value: d.value,
        },
        AMQPValue::ShortString(s) => HeaderValue::String(s.as_str().to_owned()),
        AMQPValue::LongString(s) => match std::str::from_utf8(s.as_bytes()) {
            Ok(text) => HeaderValue::String(text.to_owned()),
            Err(_) => HeaderValue::Bytes(Bytes::copy_from_slice(s.as_bytes())),
        },
        AMQPValue::FieldArray(a) => HeaderValue::Array(
            a.as_slice()
                .iter()
                .map(|v| header_value(v, depth + 1))
                .collect(),
        ),
        AMQPValue::Timestamp(t) => HeaderValue::Timestamp(*t),
        AMQPValue::FieldTable(t) => HeaderValue::Table(table_at(t, depth + 1)),
        AMQPValue::ByteArray(b) => HeaderValue::Bytes(Bytes::copy_from_slice(b.as_slice())),
        AMQPValue::Void => HeaderValue::Void,
    }
}

/// Maps a client error during `operation` to a typed transport error.
///
/// `resource` names what the operation was about, for `NotFound`.
pub(super) fn error(
    e: WireError,
    operation: &'static str,
    resource: (&'static str, &str),
) -> TransportError {
    match &e {
        WireError::ChannelClosed { code, text } => match code {
            404 => TransportError::NotFound {
                kind: resource.0,
                name: resource.1.to_owned(),
            },
            // PRECONDITION_FAILED, RESOURCE_LOCKED (an exclusive queue in use).
            405 | 406 => TransportError::PreconditionFailed(text.clone()),
            403 => TransportError::AccessRefused(text.clone()),
            _ => TransportError::Broker(e),
        },
        WireError::Io(_)
        | WireError::ConnectionClosed { .. }
        | WireError::Closed
        | WireError::MissedHeartbeats
        | WireError::Protocol(_) => TransportError::ConnectionLost {
            operation,
            source: Some(e),
        },
        WireError::TooLong { len, .. } => HeaderError::PropertyTooLong { len: *len }.into(),
        WireError::HeaderTooLarge { len, .. } => HeaderError::TooLarge { size: *len }.into(),
        WireError::Mechanism(_) | WireError::Tls(_) => TransportError::Broker(e),
    }
}

#[cfg(test)]
pub(in crate::transport::amqp) mod reference;

#[cfg(test)]
mod tests {
    use super::{
        reference::{field_table, properties},
        *,
    };
    use tollgate_wire::types::FieldArray;

    fn roundtrip(h: &Headers) -> Headers {
        headers_of(&field_table(h).unwrap())
    }

    #[test]
    fn every_header_type_survives_conversion() {
        let h = crate::transport::amqp::encode::tests::every_type();
        assert_eq!(roundtrip(&h), h);
    }

    #[test]
    fn properties_become_an_envelope() {
        let props = properties(
            &Envelope::new("ignored").with_id("m-1").with_reply_to("r"),
            Some("guest"),
        )
        .unwrap()
        .with_headers(field_table(&Headers::new().with(headers::X_DELIVERY_COUNT, 2i64)).unwrap());
        let env = envelope(&props, Bytes::from_static(b"hi"));
        assert_eq!(env.id, "m-1");
        assert_eq!(env.reply_to.as_deref(), Some("r"));
        assert_eq!(&env.payload[..], b"hi");
        assert_eq!(
            env.headers.get(headers::X_DELIVERY_COUNT),
            Some(&HeaderValue::I64(2))
        );
    }

    #[test]
    fn refusals_map_to_typed_errors() {
        let closed = |code| WireError::ChannelClosed {
            code,
            text: "why".into(),
        };
        let map = |e| error(e, "op", ("queue", "q"));
        assert_eq!(map(closed(404)).code(), "not_found");
        assert_eq!(map(closed(405)).code(), "precondition_failed");
        assert_eq!(map(closed(406)).code(), "precondition_failed");
        assert_eq!(map(closed(403)).code(), "access_refused");
        assert_eq!(map(closed(530)).code(), "broker");
        assert_eq!(map(WireError::MissedHeartbeats).code(), "connection_lost");
    }

    #[test]
    fn only_the_publisher_s_own_user_id_is_sent() {
        let mut envelope = Envelope::new("x");
        envelope.user_id = Some("tollgate-router".into());
        let own = properties(&envelope, Some("tollgate-router")).unwrap();
        assert_eq!(
            own.user_id().as_ref().map(|u| u.as_str()),
            Some("tollgate-router")
        );
        let relayed = properties(&envelope, Some("tollgate-svc-orders")).unwrap();
        assert_eq!(relayed.user_id(), &None);
        let by_certificate = properties(&envelope, None).unwrap();
        assert_eq!(by_certificate.user_id(), &None);
    }

    #[test]
    fn hostile_nesting_is_cut_and_stays_too_deep_to_pass() {
        let mut deep = AMQPValue::Void;
        for _ in 0..10_000 {
            deep = AMQPValue::FieldArray(FieldArray::from(vec![deep]));
        }
        let mut table = FieldTable::default();
        table.insert("deep".into(), deep);
        let headers = headers_of(&table);
        assert!(matches!(
            headers.check_wire(),
            Err(HeaderError::TooDeep { .. })
        ));
        // The cut copy is shallow: walking it again recurses at most CONVERT_DEPTH levels.
        assert!(headers.encoded_len() < 1024);
        // Dropping a 10,000-deep value recurses; leak it rather than depend on
        // this thread's stack (the router runs its runtime on deep-stack threads).
        std::mem::forget(table);
    }

    #[test]
    fn an_overlong_property_is_a_typed_error() {
        let env = Envelope::new("x").with_correlation_id("c".repeat(256));
        assert_eq!(
            properties(&env, Some("guest")).unwrap_err().code(),
            "invalid_headers"
        );
    }
}

#[cfg(test)]
mod props;
