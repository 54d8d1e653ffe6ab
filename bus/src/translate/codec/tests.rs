use serde_json::{Value, json};

use super::*;
use crate::{RejectCode, Rejection, Stage};

const ALL: [Codec; 3] = [Codec::Json, Codec::MessagePack, Codec::Cbor];
const DEEP: usize = 100_000;

fn document() -> Value {
    json!({
        "id": "a-1",
        "count": 3,
        "negative": -40,
        "big": u64::MAX,
        "ratio": 0.25,
        "ok": true,
        "none": null,
        "tags": ["x", "y", {"z": [1, 2, []]}],
        "nested": {"deeper": {"deepest": {"empty": {}}}},
    })
}

/// `depth` nested arrays around nothing, in each codec's own encoding.
fn nested_arrays(codec: Codec, depth: usize) -> Vec<u8> {
    match codec {
        Codec::Json => [vec![b'['; depth], vec![b']'; depth]].concat(),
        // fixarray(1) … fixarray(0)
        Codec::MessagePack => [vec![0x91; depth - 1], vec![0x90]].concat(),
        // array(1) … array(0)
        Codec::Cbor => [vec![0x81; depth - 1], vec![0x80]].concat(),
    }
}

/// `depth` nested maps `{"a": {"a": … {}}}`.
fn nested_maps(codec: Codec, depth: usize) -> Vec<u8> {
    match codec {
        Codec::Json => [
            "{\"a\":".repeat(depth - 1),
            "{}".into(),
            "}".repeat(depth - 1),
        ]
        .concat()
        .into_bytes(),
        Codec::MessagePack => [b"\x81\xa1a".repeat(depth - 1), vec![0x80]].concat(),
        Codec::Cbor => [b"\xa1\x61a".repeat(depth - 1), vec![0xa0]].concat(),
    }
}

// === Content types ===

#[test]
fn content_types_are_recognised_ignoring_case_and_parameters() {
    let cases = [
        ("application/json", Some(Codec::Json)),
        ("Application/JSON; charset=utf-8", Some(Codec::Json)),
        ("application/vnd.acme.order+json", Some(Codec::Json)),
        ("application/problem+JSON ;q=1", Some(Codec::Json)),
        ("application/msgpack", Some(Codec::MessagePack)),
        ("application/x-msgpack", Some(Codec::MessagePack)),
        ("application/vnd.msgpack", Some(Codec::MessagePack)),
        ("application/cbor", Some(Codec::Cbor)),
        (" application/cbor ", Some(Codec::Cbor)),
        ("text/plain", None),
        ("+json", None),
        ("application/jsonx", None),
        ("", None),
    ];
    for (ct, expected) in cases {
        assert_eq!(Codec::from_content_type(ct), expected, "{ct:?}");
    }
}

#[test]
fn canonical_content_types_map_back_to_their_codec() {
    for codec in ALL {
        assert_eq!(Codec::from_content_type(codec.content_type()), Some(codec));
    }
}

// === Round trips ===

#[test]
fn each_codec_round_trips_a_nested_document() {
    for codec in ALL {
        let bytes = codec.to_vec(&document()).unwrap();
        assert_eq!(codec.decode(&bytes).unwrap(), document(), "{codec}");
        assert_eq!(
            codec.from_slice::<Value>(&bytes).unwrap(),
            document(),
            "{codec}"
        );
    }
}

#[test]
fn message_pack_writes_structs_as_maps_with_field_names() {
    #[derive(serde::Serialize)]
    struct Order {
        id: u32,
    }
    let bytes = Codec::MessagePack.to_vec(&Order { id: 7 }).unwrap();
    assert_eq!(bytes, b"\x81\xa2id\x07");
}

#[test]
fn transcoding_json_to_message_pack_and_back_preserves_the_document() {
    let json = Codec::Json.to_vec(&document()).unwrap();
    let msgpack = Codec::MessagePack
        .to_vec(&Codec::Json.decode(&json).unwrap())
        .unwrap();
    let back = Codec::Json
        .to_vec(&Codec::MessagePack.decode(&msgpack).unwrap())
        .unwrap();
    assert_eq!(Codec::Json.decode(&back).unwrap(), document());
}

// === Untrusted bytes ===

#[test]
fn each_codec_refuses_garbage() {
    let garbage: [(Codec, &[u8]); 3] = [
        (Codec::Json, b"{\"a\": tru"),
        (Codec::MessagePack, b"\xc1"), // the one reserved marker
        (Codec::Cbor, b"\x1c"),        // reserved additional information
    ];
    for (codec, bytes) in garbage {
        let err = codec.decode(bytes).unwrap_err();
        assert_eq!(err.code(), "decode_failed", "{codec}: {err}");
        assert_eq!(
            codec.from_slice::<Value>(bytes).unwrap_err().code(),
            "decode_failed"
        );
    }
}

#[test]
fn each_codec_refuses_a_truncated_value() {
    for codec in ALL {
        let bytes = codec.to_vec(&document()).unwrap();
        let err = codec.decode(&bytes[..bytes.len() - 1]).unwrap_err();
        assert_eq!(err.code(), "decode_failed", "{codec}: {err}");
    }
}

#[test]
fn each_codec_refuses_trailing_bytes() {
    for codec in ALL {
        for trailer in [&b"\x00"[..], b"1", b"{}"] {
            let mut bytes = codec.to_vec(&json!({"a": 1})).unwrap();
            bytes.extend_from_slice(trailer);
            let err = codec.decode(&bytes).unwrap_err();
            assert_eq!(err.code(), "trailing_bytes", "{codec} {trailer:?}: {err}");
            let err = codec.from_slice::<Value>(&bytes).unwrap_err();
            assert_eq!(err.code(), "trailing_bytes", "{codec} {trailer:?}: {err}");
        }
    }
}

#[test]
fn json_allows_trailing_whitespace() {
    assert_eq!(
        Codec::Json.decode(b"{\"a\":1} \n").unwrap(),
        json!({"a": 1})
    );
}

#[test]
fn each_codec_refuses_100k_deep_nesting_without_crashing() {
    for codec in ALL {
        for bytes in [nested_arrays(codec, DEEP), nested_maps(codec, DEEP)] {
            let err = codec.decode(&bytes).unwrap_err();
            assert_eq!(err.code(), "too_deep", "{codec}: {err}");
            let err = codec.from_slice::<Value>(&bytes).unwrap_err();
            assert_eq!(err.code(), "too_deep", "{codec}: {err}");
        }
    }
}

#[test]
fn cbor_refuses_100k_nested_tags_without_crashing() {
    let bytes = [vec![0xc6; DEEP], vec![0x00]].concat(); // tag(6) … 0
    assert_eq!(Codec::Cbor.decode(&bytes).unwrap_err().code(), "too_deep");
}

#[test]
fn every_codec_stops_at_the_same_depth() {
    for codec in ALL {
        let below = MAX_DEPTH - 1;
        assert!(
            codec.decode(&nested_arrays(codec, below)).is_ok(),
            "{codec}"
        );
        assert!(codec.decode(&nested_maps(codec, below)).is_ok(), "{codec}");
        let at = MAX_DEPTH;
        assert_eq!(
            codec.decode(&nested_arrays(codec, at)).unwrap_err().code(),
            "too_deep"
        );
        assert_eq!(
            codec.decode(&nested_maps(codec, at)).unwrap_err().code(),
            "too_deep"
        );
    }
}

#[test]
fn length_prefixes_beyond_the_input_are_refused_without_allocating_them() {
    let cases: [(Codec, &[u8]); 4] = [
        (Codec::MessagePack, b"\xdb\xff\xff\xff\xffabc"), // str32 of 4 GiB
        (Codec::MessagePack, b"\xdd\xff\xff\xff\xff\x01"), // array32 of 4 G items
        (Codec::Cbor, b"\x5b\xff\xff\xff\xff\xff\xff\xff\xffab"), // bytes of 2^64-1
        (Codec::Cbor, b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff\x01"), // array of 2^64-1
    ];
    for (codec, bytes) in cases {
        assert_eq!(
            codec.decode(bytes).unwrap_err().code(),
            "decode_failed",
            "{codec}"
        );
    }
}

// === The pivot ===

#[test]
fn binary_becomes_an_array_of_byte_values() {
    let msgpack = b"\xc4\x03\x00\x7f\xff"; // bin8 [0, 127, 255]
    let cbor = b"\x43\x00\x7f\xff"; // bytes(3)
    assert_eq!(
        Codec::MessagePack.decode(msgpack).unwrap(),
        json!([0, 127, 255])
    );
    assert_eq!(Codec::Cbor.decode(cbor).unwrap(), json!([0, 127, 255]));
}

#[test]
fn non_string_map_keys_are_refused() {
    let msgpack = b"\x81\x01\x02"; // {1: 2}
    let cbor = b"\xa1\x01\x02";
    assert_eq!(
        Codec::MessagePack.decode(msgpack).unwrap_err().code(),
        "non_string_key"
    );
    assert_eq!(
        Codec::Cbor.decode(cbor).unwrap_err().code(),
        "non_string_key"
    );
}

#[test]
fn non_finite_floats_are_refused() {
    let msgpack = b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"; // float64 NaN
    let cbor_inf = b"\xf9\x7c\x00"; // half-float +inf
    let cbor_nan = b"\xf9\x7e\x00";
    assert_eq!(
        Codec::MessagePack.decode(msgpack).unwrap_err().code(),
        "unrepresentable_number"
    );
    assert_eq!(
        Codec::Cbor.decode(cbor_inf).unwrap_err().code(),
        "unrepresentable_number"
    );
    assert_eq!(
        Codec::Cbor.decode(cbor_nan).unwrap_err().code(),
        "unrepresentable_number"
    );
}

#[test]
fn integers_beyond_64_bits_are_refused() {
    let beyond_u64 = b"\xc2\x49\x01\x00\x00\x00\x00\x00\x00\x00\x00"; // bignum 2^64
    let below_i64 = b"\x3b\xff\xff\xff\xff\xff\xff\xff\xff"; // -2^64
    assert_eq!(
        Codec::Cbor.decode(beyond_u64).unwrap_err().code(),
        "unrepresentable_number"
    );
    assert_eq!(
        Codec::Cbor.decode(below_i64).unwrap_err().code(),
        "unrepresentable_number"
    );
    assert_eq!(
        Codec::Cbor
            .decode(b"\x1b\xff\xff\xff\xff\xff\xff\xff\xff")
            .unwrap(),
        json!(u64::MAX)
    );
    let small_bignum = b"\xc2\x43\x00\x01\x00"; // bignum 256 with a leading zero
    assert_eq!(Codec::Cbor.decode(small_bignum).unwrap(), json!(256));
    let small_negative = b"\xc3\x41\x09"; // -1 - 9
    assert_eq!(Codec::Cbor.decode(small_negative).unwrap(), json!(-10));
}

#[test]
fn cbor_tags_are_dropped_and_their_content_kept() {
    let tagged = b"\xc1\x1a\x51\x4b\x67\xb0"; // tag 1 (epoch time) 1363896240
    assert_eq!(Codec::Cbor.decode(tagged).unwrap(), json!(1_363_896_240));
}

#[test]
fn message_pack_extension_types_are_refused() {
    let timestamp = b"\xd6\xff\x00\x00\x00\x01"; // fixext4, type -1
    let err = Codec::MessagePack.decode(timestamp).unwrap_err();
    assert_eq!(err.code(), "unsupported_value", "{err}");
}

// === Errors ===

#[test]
fn a_decode_error_becomes_bad_payload_without_quoting_the_payload() {
    let err = Codec::Json.decode(br#"{"secret": "hunter2" "#).unwrap_err();
    assert!(std::error::Error::source(&err).is_some());
    let rejection = Rejection::from(err);
    assert_eq!(rejection.code, RejectCode::BadPayload);
    assert_eq!(rejection.stage, Stage::Translate);
    assert_eq!(rejection.reason, "payload is not valid JSON");
}

#[test]
fn json_refuses_to_encode_non_string_keys() {
    let map = std::collections::BTreeMap::from([(1, 2)]);
    assert!(
        Codec::Json.to_vec(&map).is_ok(),
        "serde_json quotes integer keys"
    );
    let map = std::collections::BTreeMap::from([((1, 2), 3)]);
    assert_eq!(
        Codec::Json.to_vec(&map).unwrap_err().code(),
        "encode_failed"
    );
}
