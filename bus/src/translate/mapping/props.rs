//! Property tests of mappings: any ops with any pointers compile or are
//! refused with typed [`MappingError`]s; a compiled mapping applied to any
//! document, either way, succeeds or fails with [`TranslateError::Apply`].

use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::translate::pointer::props::{document, pointer_text};

fn op() -> impl Strategy<Value = OpSpec> {
    prop_oneof![
        (pointer_text(), pointer_text()).prop_map(|(from, to)| OpSpec::Rename { from, to }),
        (pointer_text(), pointer_text()).prop_map(|(from, to)| OpSpec::Move { from, to }),
        pointer_text().prop_map(|path| OpSpec::Drop { path }),
        (pointer_text(), document()).prop_map(|(path, value)| OpSpec::Default { path, value }),
    ]
}

fn spec() -> impl Strategy<Value = MappingSpec> {
    (
        proptest::collection::vec(op(), 0..5),
        proptest::option::of(proptest::collection::vec(op(), 0..5)),
        prop_oneof![Just("1"), Just("2"), Just("")],
    )
        .prop_map(|(request, reply, from)| MappingSpec {
            service: "svc".into(),
            from: from.into(),
            to: "3".into(),
            request,
            reply,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_mapping_compiles_or_every_problem_is_typed(specs in proptest::collection::vec(spec(), 1..3)) {
        match compile(&specs) {
            Ok(mappings) => prop_assert_eq!(mappings.len(), specs.len()),
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for e in &errors {
                    prop_assert!(!e.code().is_empty());
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
    }

    #[test]
    fn a_compiled_mapping_applies_to_any_document_or_fails_typed(
        spec in spec(),
        doc in document(),
        reply in any::<bool>(),
    ) {
        let Ok(mut mappings) = compile(std::slice::from_ref(&spec)) else { return Ok(()) };
        let mapping = mappings.remove(0);
        let direction = if reply { Direction::Reply } else { Direction::Request };
        let mut edited: Value = doc;
        match mapping.apply(direction, &mut edited) {
            Ok(()) => {}
            Err(e @ TranslateError::Apply { .. }) => prop_assert_eq!(e.code(), "mapping_failed"),
            Err(other) => prop_assert!(false, "unexpected error {:?}", other),
        }
    }
}
