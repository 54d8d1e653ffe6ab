//! Property tests of the header conversion: arbitrary tables, both ways.

use bytes::Bytes;
use proptest::prelude::*;
use tollgate_wire::types::{
    AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable, LongString, ShortString,
};

use super::*;
use crate::transport::amqp::encode;

/// `envelope`'s properties as the router writes them, read back by amq-protocol.
fn sent(envelope: &Envelope) -> Result<BasicProperties, TransportError> {
    let bytes = encode::properties(envelope, Some("guest"))?;
    Ok(tollgate_wire::decode_properties(&bytes).expect("what the encoder writes parses"))
}

/// Header names: mostly short, sometimes past the 255 bytes AMQP carries.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-zA-Z0-9_-]{0,12}",
        1 => "[a-z]{250,300}",
    ]
}

/// Every scalar our table holds (floats finite, so equality means equality).
fn scalar() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        any::<bool>().prop_map(HeaderValue::Bool),
        any::<i8>().prop_map(HeaderValue::I8),
        any::<u8>().prop_map(HeaderValue::U8),
        any::<i16>().prop_map(HeaderValue::I16),
        any::<u16>().prop_map(HeaderValue::U16),
        any::<i32>().prop_map(HeaderValue::I32),
        any::<u32>().prop_map(HeaderValue::U32),
        any::<i64>().prop_map(HeaderValue::I64),
        (-1e30f32..1e30).prop_map(HeaderValue::F32),
        (-1e300f64..1e300).prop_map(HeaderValue::F64),
        (any::<u8>(), any::<u32>())
            .prop_map(|(scale, value)| HeaderValue::Decimal { scale, value }),
        ".{0,16}".prop_map(HeaderValue::String),
        proptest::collection::vec(any::<u8>(), 0..16)
            .prop_map(|b| HeaderValue::Bytes(Bytes::from(b))),
        any::<u64>().prop_map(HeaderValue::Timestamp),
        Just(HeaderValue::Void),
    ]
}

/// Values nested up to 40 levels: past what AMQP carries (32) as well.
fn value() -> impl Strategy<Value = HeaderValue> {
    scalar().prop_recursive(40, 200, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(HeaderValue::Array),
            proptest::collection::vec((name(), inner), 0..4)
                .prop_map(|entries| HeaderValue::Table(entries.into_iter().collect())),
        ]
    })
}

fn table() -> impl Strategy<Value = Headers> {
    proptest::collection::vec((name(), value()), 0..6).prop_map(|e| e.into_iter().collect())
}

/// AMQP values, ShortStrings and non-UTF-8 long strings included, nested
/// deeper than the conversion walks.
fn amqp_value() -> impl Strategy<Value = AMQPValue> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(AMQPValue::Boolean),
        any::<i8>().prop_map(AMQPValue::ShortShortInt),
        any::<u16>().prop_map(AMQPValue::ShortUInt),
        any::<i64>().prop_map(AMQPValue::LongLongInt),
        (-1e300f64..1e300).prop_map(AMQPValue::Double),
        (any::<u8>(), any::<u32>())
            .prop_map(|(scale, value)| AMQPValue::DecimalValue(DecimalValue { scale, value })),
        "[a-z]{0,8}".prop_map(|s| AMQPValue::ShortString(ShortString::from(s))),
        proptest::collection::vec(any::<u8>(), 0..12)
            .prop_map(|b| AMQPValue::LongString(LongString::from(b))),
        proptest::collection::vec(any::<u8>(), 0..12)
            .prop_map(|b| AMQPValue::ByteArray(ByteArray::from(b))),
        any::<u64>().prop_map(AMQPValue::Timestamp),
        Just(AMQPValue::Void),
    ];
    leaf.prop_recursive(48, 200, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3)
                .prop_map(|v| AMQPValue::FieldArray(FieldArray::from(v))),
            proptest::collection::vec(("[a-z]{1,6}", inner), 0..3).prop_map(|entries| {
                let mut t = FieldTable::default();
                for (k, v) in entries {
                    t.insert(ShortString::from(k), v);
                }
                AMQPValue::FieldTable(t)
            }),
        ]
    })
}

fn amqp_table() -> impl Strategy<Value = FieldTable> {
    proptest::collection::vec(("[a-z]{1,6}", amqp_value()), 0..4).prop_map(|entries| {
        let mut t = FieldTable::default();
        for (k, v) in entries {
            t.insert(ShortString::from(k), v);
        }
        t
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Our table to AMQP: refused with a typed error exactly when
    /// `check_wire` refuses it, and otherwise written as amq-protocol
    /// writes it and read back unchanged.
    #[test]
    fn a_table_converts_and_round_trips_or_is_refused_typed(headers in table()) {
        let envelope = Envelope::new("x").with_headers(headers.clone());
        if let Ok(props) = reference::properties(&envelope, Some("guest")) {
            let oracle = tollgate_wire::encode_properties(&props).expect("encodes");
            prop_assert_eq!(encode::properties(&envelope, Some("guest")).ok(), Some(oracle));
        }
        match (envelope.check_wire(), sent(&envelope)) {
            (Ok(()), Ok(props)) => {
                let back = props.headers().as_ref().map(headers_of).unwrap_or_default();
                prop_assert_eq!(back, headers);
            }
            (Err(expected), Err(TransportError::InvalidHeaders(got))) => {
                prop_assert_eq!(got, expected);
            }
            (wire, converted) => prop_assert!(
                false,
                "check_wire said {:?} but conversion said {:?}",
                wire,
                converted.map(drop)
            ),
        }
    }

    /// AMQP to our table never panics, never keeps more than the conversion
    /// depth, and what AMQP can carry again converts back to itself.
    #[test]
    fn any_amqp_table_converts_and_is_stable(table in amqp_table()) {
        let ours = headers_of(&table);
        prop_assert!(ours.iter().all(|(_, v)| depth(v) <= CONVERT_DEPTH));
        match ours.check_wire() {
            Ok(()) => {
                let envelope = Envelope::new("x").with_headers(ours.clone());
                let props = sent(&envelope).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let again = props.headers().as_ref().map(headers_of).unwrap_or_default();
                prop_assert_eq!(again, ours);
            }
            Err(HeaderError::TooDeep { .. } | HeaderError::TooLarge { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected refusal {:?}", other),
        }
        // amq-protocol's values drop recursively; these are shallow
        // enough for a test thread.
        drop(table);
    }
}

/// Levels of arrays and tables in `value` (a scalar is 0).
fn depth(value: &HeaderValue) -> usize {
    match value {
        HeaderValue::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        HeaderValue::Table(t) => 1 + t.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
        _ => 0,
    }
}
