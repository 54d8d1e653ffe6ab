use bytes::Bytes;
use serde_json::{Value, json};

use super::*;
use crate::{RejectCode, Stage};

fn json_v2() -> Format {
    Format::new(Codec::Json, "2")
}

fn msgpack_v1() -> Format {
    Format::new(Codec::MessagePack, "1")
}

/// The billing example: a v2 caller, a v1 service.
fn billing() -> Translator {
    let spec = json!({
        "service": "billing-legacy",
        "from": "2",
        "to": "1",
        "request": [
            {"op": "move", "from": "/customer/id", "to": "/customer_id"},
            {"op": "move", "from": "/amount/value", "to": "/amount_cents"},
            {"op": "drop", "path": "/metadata"},
            {"op": "default", "path": "/currency", "value": "EUR"},
        ],
    });
    Translator::new(&[serde_json::from_value(spec).unwrap()]).unwrap()
}

fn encode(codec: Codec, doc: &Value) -> Bytes {
    Bytes::from(codec.to_vec(doc).unwrap())
}

#[test]
fn the_same_format_returns_the_payload_untouched_without_decoding() {
    let payload = Bytes::from_static(b"not json at all");
    for translator in [Translator::empty(), billing()] {
        let out = translator
            .request("billing-legacy", &payload, &json_v2(), &json_v2())
            .unwrap();
        assert_eq!(
            out.as_ptr(),
            payload.as_ptr(),
            "the same buffer, not a copy"
        );
        let out = translator
            .reply("billing-legacy", &payload, &json_v2(), &json_v2())
            .unwrap();
        assert_eq!(out, payload);
    }
}

#[test]
fn the_same_version_in_another_codec_is_transcoded_without_a_mapping() {
    let doc = json!({"customer": {"id": 7}, "bin": [1, 2]});
    let out = Translator::empty()
        .request(
            "any",
            &encode(Codec::Json, &doc),
            &json_v2(),
            &Format::new(Codec::Cbor, "2"),
        )
        .unwrap();
    assert_eq!(Codec::Cbor.decode(&out).unwrap(), doc);
}

#[test]
fn another_version_without_a_mapping_is_a_bad_payload() {
    let payload = encode(Codec::Json, &json!({}));
    let err = billing()
        .request("orders", &payload, &json_v2(), &msgpack_v1())
        .unwrap_err();
    assert_eq!(err.code, RejectCode::BadPayload);
    assert_eq!(err.stage, Stage::Translate);
    assert_eq!(
        err.reason,
        "no mapping from schema version 2 to 1 for service orders"
    );
    let v3 = Format::new(Codec::Json, "3");
    let err = billing()
        .reply("billing-legacy", &payload, &msgpack_v1(), &v3)
        .unwrap_err();
    assert_eq!(
        err.reason,
        "no mapping from schema version 3 to 1 for service billing-legacy"
    );
}

#[test]
fn a_payload_that_does_not_decode_is_a_bad_payload() {
    let garbage = Bytes::from_static(b"{\"customer\": ");
    let err = billing()
        .request("billing-legacy", &garbage, &json_v2(), &msgpack_v1())
        .unwrap_err();
    assert_eq!(err.code, RejectCode::BadPayload);
    assert_eq!(err.reason, "payload is not valid JSON");
}

#[test]
fn a_v2_json_caller_and_a_v1_message_pack_service_round_trip() {
    let translator = billing();
    let request = json!({
        "customer": {"id": 42},
        "amount": {"value": 1999},
        "metadata": {"trace": "abc"},
    });
    let wire = translator
        .request(
            "billing-legacy",
            &encode(Codec::Json, &request),
            &json_v2(),
            &msgpack_v1(),
        )
        .unwrap();
    let seen_by_service = Codec::MessagePack.decode(&wire).unwrap();
    let expected = json!({"customer_id": 42, "amount_cents": 1999, "currency": "EUR"});
    assert_eq!(seen_by_service, expected);

    let reply = json!({"customer_id": 42, "amount_cents": 1999, "currency": "EUR", "paid": true});
    let wire = translator
        .reply(
            "billing-legacy",
            &encode(Codec::MessagePack, &reply),
            &msgpack_v1(),
            &json_v2(),
        )
        .unwrap();
    let seen_by_caller: Value = serde_json::from_slice(&wire).unwrap();
    let expected = json!({
        "customer": {"id": 42},
        "amount": {"value": 1999},
        "currency": "EUR",
        "paid": true,
    });
    assert_eq!(seen_by_caller, expected);
}

#[test]
fn a_mapping_applies_only_to_its_own_service() {
    let payload = encode(Codec::Json, &json!({"customer": {"id": 1}}));
    let err = billing()
        .request("billing", &payload, &json_v2(), &msgpack_v1())
        .unwrap_err();
    assert_eq!(
        err.reason,
        "no mapping from schema version 2 to 1 for service billing"
    );
}

#[test]
fn invalid_specs_are_refused_with_every_problem() {
    let spec = json!({
        "service": "s", "from": "1", "to": "1",
        "request": [{"op": "drop", "path": "x"}],
    });
    let problems = Translator::new(&[serde_json::from_value(spec).unwrap()]).unwrap_err();
    let codes: Vec<_> = problems.iter().map(MappingError::code).collect();
    assert_eq!(codes, ["same_version", "bad_pointer"]);
}
