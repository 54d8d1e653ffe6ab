//! Properties of the token and header parsers: arbitrary input never panics and
//! is refused with a typed, coded error; well-formed tokens with arbitrary
//! claim values verify and carry those values into the identity.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tollgate_auth::testkit::{TestKey, TestKit, b64};
use tollgate_auth::{Algorithm, AuthError, VerifierConfig, bearer_token};

fn known(error: AuthError) -> bool {
    AuthError::ALL.contains(&error) && !error.code().is_empty()
}

/// A JSON value of bounded size: scalars, arrays and objects of them.
fn json_value() -> impl Strategy<Value = Value> {
    nested(prop_oneof![
        exact_leaf(),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
    ])
}

/// Like [`json_value`], without fractional numbers: serde_json (without its
/// `float_roundtrip` feature, which would slow every parse) may read the last
/// bit of a decimal fraction differently from how it wrote it.
fn exact_json_value() -> impl Strategy<Value = Value> {
    nested(exact_leaf())
}

fn exact_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ]
    .boxed()
}

fn nested(leaf: impl Strategy<Value = Value> + 'static) -> impl Strategy<Value = Value> {
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

struct Scene {
    kit: TestKit,
    alice: TestKey,
}

fn scene() -> Scene {
    let kit = TestKit::new();
    let alice = kit.consumer("alice", Algorithm::HS256);
    Scene { kit, alice }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_bearer_parser_never_panics_and_returns_exactly_what_follows_the_scheme(
        header in any::<String>(),
    ) {
        match bearer_token(Some(&header)) {
            Ok(token) => {
                prop_assert!(header.len() == 7 + token.len());
                prop_assert!(header[..7].eq_ignore_ascii_case("bearer "));
                prop_assert!(!token.is_empty());
                prop_assert!(!token.contains(char::is_whitespace));
            }
            Err(e) => prop_assert!(known(e)),
        }
    }

    #[test]
    fn a_well_formed_header_always_yields_its_token(token in "[A-Za-z0-9._~+/-]{1,64}=*") {
        let header = format!("Bearer {token}");
        prop_assert_eq!(bearer_token(Some(&header)), Ok(token.as_str()));
    }

    #[test]
    fn the_token_parser_never_panics_on_arbitrary_text(token in any::<String>()) {
        let s = scene();
        match s.kit.verifier().verify(&token) {
            Ok(_) => prop_assert!(false, "an arbitrary string verified"),
            Err(e) => prop_assert!(known(e)),
        }
    }

    #[test]
    fn the_token_parser_never_panics_on_arbitrary_json_segments(
        header in json_value(),
        claims in json_value(),
        signature in "[A-Za-z0-9_-]{0,64}",
    ) {
        let s = scene();
        let token = format!("{}.{}.{signature}", b64(header.to_string()), b64(claims.to_string()));
        if let Err(e) = s.kit.verifier().verify(&token) {
            prop_assert!(known(e));
        }
    }

    #[test]
    fn a_signed_token_with_arbitrary_values_in_its_claims_is_refused_or_verified_never_panics(
        claims in prop::collection::btree_map(any::<String>(), json_value(), 0..8),
    ) {
        let s = scene();
        let mut body: Map<String, Value> = claims.into_iter().collect();
        body.insert("key".into(), "alice".into());
        let token = s.alice.sign(&Value::Object(body));
        if let Err(e) = s.kit.verifier().verify(&token) {
            prop_assert!(known(e));
        }
    }

    #[test]
    fn well_formed_tokens_with_arbitrary_claim_values_round_trip(
        sub in any::<String>(),
        jti in any::<String>(),
        tenant in exact_json_value(),
        scopes in prop::collection::vec("[a-z]{1,8}(\\.[a-z]{1,8})?", 0..5),
        ttl in 1u64..86_000,
    ) {
        let s = scene();
        let now = TestKit::NOW;
        let token = s.alice.sign(&json!({
            "key": "alice", "sub": sub, "jti": jti, "tenant": tenant,
            "scope": scopes.join(" "), "iat": now, "exp": now + ttl,
        }));
        let verifier = s.kit.verifier_with(
            VerifierConfig::default().with_forward_claims(["tenant"]),
        );
        let identity = verifier.verify(&token).map_err(|e| e.code());
        prop_assert!(identity.is_ok(), "{identity:?}");
        let identity = identity.unwrap_or_else(|_| unreachable!());
        prop_assert_eq!(identity.consumer.as_str(), "alice");
        prop_assert_eq!(identity.subject.as_deref(), Some(sub.as_str()));
        prop_assert_eq!(identity.token_id.as_deref(), Some(jti.as_str()));
        prop_assert_eq!(identity.expires_at, Some(now + ttl));
        prop_assert_eq!(identity.claims.get("tenant"), Some(&tenant));
    }
}
