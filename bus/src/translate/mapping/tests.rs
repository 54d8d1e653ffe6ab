use serde_json::{Value, json};

use super::*;

/// Ops from their config shape (as JSON, the same serde path as TOML).
fn ops(ops: Value) -> Vec<OpSpec> {
    serde_json::from_value(ops).unwrap()
}

fn spec(request: Value) -> MappingSpec {
    MappingSpec {
        service: "billing".into(),
        from: "2".into(),
        to: "1".into(),
        request: ops(request),
        reply: None,
    }
}

fn compiled(spec: MappingSpec) -> Mapping {
    compile(&[spec]).unwrap().remove(0)
}

fn request(ops: Value, mut doc: Value) -> Value {
    compiled(spec(ops))
        .apply(Direction::Request, &mut doc)
        .unwrap();
    doc
}

fn codes(errors: &[MappingError]) -> Vec<&'static str> {
    errors.iter().map(MappingError::code).collect()
}

// === Ops ===

#[test]
fn rename_renames_a_member_within_its_parent() {
    let ops = json!([{"op": "rename", "from": "/customer/id", "to": "/customer/ref"}]);
    let doc = request(ops, json!({"customer": {"id": 7, "name": "A"}}));
    assert_eq!(doc, json!({"customer": {"ref": 7, "name": "A"}}));
}

#[test]
fn move_creates_missing_objects_and_removes_objects_it_emptied() {
    let ops = json!([
        {"op": "move", "from": "/amount/value", "to": "/amount_cents"},
        {"op": "move", "from": "/customer_id", "to": "/customer/ids/primary"},
    ]);
    let doc = request(ops, json!({"amount": {"value": 250}, "customer_id": 7}));
    assert_eq!(
        doc,
        json!({"amount_cents": 250, "customer": {"ids": {"primary": 7}}})
    );
}

#[test]
fn move_replaces_an_existing_member() {
    let ops = json!([{"op": "move", "from": "/new", "to": "/old"}]);
    assert_eq!(request(ops, json!({"new": 1, "old": 0})), json!({"old": 1}));
}

#[test]
fn ops_follow_array_indices_and_insert_into_arrays() {
    let ops = json!([
        {"op": "rename", "from": "/items/1/sku", "to": "/items/1/code"},
        {"op": "move", "from": "/extra", "to": "/items/0"},
        {"op": "move", "from": "/last", "to": "/items/-"},
    ]);
    let doc = json!({"items": [{"sku": "a"}, {"sku": "b"}], "extra": {"sku": "z"}, "last": 9});
    let doc = request(ops, doc);
    assert_eq!(
        doc,
        json!({"items": [{"sku": "z"}, {"sku": "a"}, {"code": "b"}, 9]})
    );
}

#[test]
fn escaped_pointers_name_members_with_slashes_and_tildes() {
    let ops = json!([
        {"op": "rename", "from": "/a~1b", "to": "/m~0n"},
        {"op": "drop", "path": "/x~1~0y"},
    ]);
    let doc = request(ops, json!({"a/b": 1, "x/~y": 2, "x": {"~y": 3}}));
    assert_eq!(doc, json!({"m~n": 1, "x": {"~y": 3}}));
}

#[test]
fn drop_removes_only_the_named_value() {
    let ops = json!([
        {"op": "drop", "path": "/metadata/trace"},
        {"op": "drop", "path": "/list/0"},
    ]);
    let doc = request(ops, json!({"metadata": {"trace": "t"}, "list": [1, 2]}));
    assert_eq!(doc, json!({"metadata": {}, "list": [2]}));
}

#[test]
fn default_writes_only_where_nothing_is() {
    let ops = json!([
        {"op": "default", "path": "/currency", "value": "EUR"},
        {"op": "default", "path": "/note", "value": "none"},
        {"op": "default", "path": "/options/retry", "value": {"times": 3}},
    ]);
    let doc = request(ops, json!({"currency": "USD", "note": null}));
    let expected = json!({"currency": "USD", "note": null, "options": {"retry": {"times": 3}}});
    assert_eq!(doc, expected);
}

#[test]
fn missing_sources_are_no_ops() {
    let ops = json!([
        {"op": "rename", "from": "/a/b", "to": "/a/c"},
        {"op": "move", "from": "/missing", "to": "/x/y"},
        {"op": "move", "from": "/scalar/deeper", "to": "/z"},
        {"op": "move", "from": "/list/5", "to": "/z"},
        {"op": "move", "from": "/list/first", "to": "/z"},
        {"op": "drop", "path": "/gone"},
    ]);
    let doc = json!({"a": {}, "scalar": 1, "list": [1]});
    assert_eq!(request(ops, doc.clone()), doc);
}

#[test]
fn a_target_below_a_scalar_is_a_bad_payload() {
    let mapping = compiled(spec(json!([
        {"op": "drop", "path": "/unused"},
        {"op": "move", "from": "/a", "to": "/b/c"},
    ])));
    let mut doc = json!({"a": 1, "b": "scalar"});
    let err = mapping.apply(Direction::Request, &mut doc).unwrap_err();
    assert_eq!(err.code(), "mapping_failed");
    let rejection = crate::Rejection::from(err);
    assert_eq!(rejection.code, crate::RejectCode::BadPayload);
    assert_eq!(
        rejection.reason,
        "mapping [0] (billing 2 -> 1), request[1] (move) of the mapping for service billing \
         cannot write /b/c: a value on the way is neither an object nor an array"
    );
}

#[test]
fn a_default_on_a_scalar_document_is_a_bad_payload() {
    let mapping = compiled(spec(json!([{"op": "default", "path": "/a", "value": 1}])));
    let err = mapping
        .apply(Direction::Request, &mut json!(5))
        .unwrap_err();
    assert_eq!(err.code(), "mapping_failed");
}

// === Reply ops ===

#[test]
fn reply_ops_default_to_the_inverse_of_the_request_moves_in_reverse_order() {
    let mapping = compiled(spec(json!([
        {"op": "move", "from": "/a", "to": "/b"},
        {"op": "drop", "path": "/metadata"},
        {"op": "move", "from": "/b", "to": "/c/d"},
        {"op": "default", "path": "/currency", "value": "EUR"},
        {"op": "rename", "from": "/c/d", "to": "/c/e"},
    ])));
    let mut reply = json!({"c": {"e": 1}, "currency": "EUR", "other": true});
    mapping.apply(Direction::Reply, &mut reply).unwrap();
    assert_eq!(reply, json!({"a": 1, "currency": "EUR", "other": true}));
}

#[test]
fn explicit_reply_ops_replace_the_inverse() {
    let mut spec = spec(json!([{"op": "move", "from": "/a", "to": "/b"}]));
    spec.reply = Some(ops(json!([{"op": "drop", "path": "/internal"}])));
    let mut reply = json!({"b": 1, "internal": 2});
    compiled(spec).apply(Direction::Reply, &mut reply).unwrap();
    assert_eq!(reply, json!({"b": 1}));
}

#[test]
fn request_then_inverse_returns_the_original_when_only_renames_and_moves_are_used() {
    let ops = json!([
        {"op": "move", "from": "/customer/id", "to": "/customer_id"},
        {"op": "rename", "from": "/total", "to": "/amount"},
        {"op": "move", "from": "/amount", "to": "/money/amount"},
        {"op": "move", "from": "/lines/0/sku", "to": "/first_sku"},
        {"op": "rename", "from": "/we~1ird", "to": "/we~0ird"},
    ]);
    let mapping = compiled(spec(ops));
    let documents = [
        json!({}),
        json!({"customer": {"id": 7}}),
        json!({"customer": {"id": 7, "name": "A"}, "total": 250}),
        json!({"customer": {}, "total": {"value": 1, "unit": "c"}, "we/ird": [1, 2]}),
        json!({"lines": [{"sku": "a", "qty": 2}, {"sku": "b"}], "total": null}),
        json!({"lines": [{"sku": "a"}], "notes": ["x"], "customer": {"id": {"v": 1}}}),
        json!({"lines": [], "customer": "not an object"}),
    ];
    for original in documents {
        let mut doc = original.clone();
        mapping.apply(Direction::Request, &mut doc).unwrap();
        mapping.apply(Direction::Reply, &mut doc).unwrap();
        assert_eq!(doc, original);
    }
}

// === Validation ===

#[test]
fn validation_reports_every_problem_at_once() {
    let good = spec(json!([{"op": "drop", "path": "/a"}]));
    let mut same_version = good.clone();
    same_version.to = "2".into();
    let mut bad_reply = spec(json!([]));
    bad_reply.service = "other".into();
    bad_reply.reply = Some(ops(json!([{"op": "drop", "path": "/x~"}])));
    let mut unnamed = spec(json!([]));
    unnamed.service = String::new();
    let bad_ops = spec(json!([
        {"op": "move", "from": "no-slash", "to": ""},
        {"op": "rename", "from": "/customer/id", "to": "/customer_id"},
        {"op": "default", "path": "/ok", "value": 1},
    ]));
    let errors = match compile(&[good, same_version, bad_reply, unnamed, bad_ops]) {
        Err(errors) => errors,
        Ok(_) => panic!("the specs have problems"),
    };
    let expected = [
        "same_version",
        "bad_pointer",
        "empty_field",
        "duplicate_mapping",
        "bad_pointer",
        "whole_document",
        "rename_across_parents",
    ];
    assert_eq!(codes(&errors), expected);
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages[0],
        "mapping [1] (billing 2 -> 2): `from` and `to` are both schema version \"2\""
    );
    assert_eq!(
        messages[1],
        "mapping [2] (other 2 -> 1), reply[0] (drop): `path` = \"/x~\" is not a JSON pointer: \
         '~' must be followed by '0' or '1'"
    );
    assert_eq!(
        messages[3],
        "mapping [4] (billing 2 -> 1): duplicates mapping [0] (billing 2 -> 1) (same service, from and to)"
    );
    assert_eq!(
        messages[6],
        "mapping [4] (billing 2 -> 1), request[1] (rename): rename \"/customer/id\" -> \
         \"/customer_id\" changes the parent; use move"
    );
}

#[test]
fn config_parses_from_its_documented_shape() {
    let config = json!({
        "service": "billing-legacy",
        "from": "2",
        "to": "1",
        "request": [
            {"op": "move", "from": "/customer/id", "to": "/customer_id"},
            {"op": "default", "path": "/currency", "value": "EUR"},
        ],
    });
    let spec: MappingSpec = serde_json::from_value(config).unwrap();
    assert_eq!(spec.reply, None);
    assert_eq!(
        spec.request[1],
        OpSpec::Default {
            path: "/currency".into(),
            value: json!("EUR")
        }
    );
    assert!(compile(&[spec]).is_ok());
}

#[test]
fn config_refuses_unknown_fields_and_ops() {
    let unknown_field = json!({"service": "s", "from": "2", "to": "1", "requests": []});
    let unknown_op_field = json!([{"op": "drop", "path": "/a", "value": 1}]);
    let unknown_op = json!([{"op": "copy", "from": "/a", "to": "/b"}]);
    assert!(serde_json::from_value::<MappingSpec>(unknown_field).is_err());
    assert!(serde_json::from_value::<Vec<OpSpec>>(unknown_op_field).is_err());
    assert!(serde_json::from_value::<Vec<OpSpec>>(unknown_op).is_err());
}
