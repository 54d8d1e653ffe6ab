//! Property tests of JSON pointers: any text parses or is refused with a
//! [`ParseError`]; any edit of any document succeeds or is refused with a
//! [`SetError`], and never panics.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::*;

/// Pointer text: mostly well-formed tokens (keys, indices, `-`, escapes),
/// sometimes anything at all.
pub(in crate::translate) fn pointer_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        "[a-c]{0,2}",
        "(0|[1-9][0-9]{0,2})",
        Just("-".to_owned()),
        "[a-c~01]{0,4}",
        Just("99999999999999999999999".to_owned()),
    ];
    prop_oneof![
        4 => proptest::collection::vec(token, 1..5).prop_map(|t| format!("/{}", t.join("/"))),
        1 => ".{0,12}",
    ]
}

/// Small JSON documents whose keys the pointers above can name.
pub(in crate::translate) fn document() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z]{0,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 40, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(("[a-c0-2~/]{0,2}", inner), 0..4)
                .prop_map(|e| Value::Object(e.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Parsing never panics; a parsed pointer shows its source; a refusal is typed.
    #[test]
    fn any_text_parses_or_is_refused_typed(text in pointer_text()) {
        match Pointer::parse(&text) {
            Ok(p) => {
                prop_assert_eq!(p.as_str(), text.as_str());
                prop_assert!(!p.tokens.is_empty());
            }
            Err(ParseError::Empty) => prop_assert!(text.is_empty()),
            Err(ParseError::NoLeadingSlash) => prop_assert!(!text.starts_with('/')),
            Err(ParseError::BadEscape) => prop_assert!(text.contains('~')),
        }
    }

    /// An edit succeeds or is refused typed; what `set` wrote (not at `-`),
    /// `take` finds again; a refused edit leaves no value behind at the pointer.
    #[test]
    fn edits_of_any_document_succeed_or_are_refused_typed(
        text in pointer_text(),
        doc in document(),
        value in document(),
        always in any::<bool>(),
        prune in any::<bool>(),
    ) {
        let Ok(pointer) = Pointer::parse(&text) else { return Ok(()) };
        let mut taken = doc.clone();
        let before = pointer.take(&mut taken, prune);
        if before.is_none() {
            prop_assert_eq!(&taken, &doc, "a take that found nothing changed the document");
        }
        let write = if always { Write::Always } else { Write::IfAbsent };
        let mut edited = doc.clone();
        let mut written = false;
        match pointer.set(&mut edited, || { written = true; value.clone() }, write) {
            Ok(()) => {
                let last = pointer.tokens.last().map(|t| t.key.as_str());
                if written && last != Some("-") {
                    prop_assert_eq!(pointer.take(&mut edited, false), Some(value));
                }
            }
            Err(SetError::NotAContainer | SetError::BadIndex) => prop_assert!(!written),
        }
    }
}
