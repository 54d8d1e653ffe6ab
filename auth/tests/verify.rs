//! Honest tokens: every algorithm, JWKS keys by kid, key rotation, the identity produced,
//! and tokens from the issuer.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, json};
use tollgate_auth::testkit::{TestKey, TestKit};
use tollgate_auth::{
    Algorithm, AuthError, Consumer, JwksSource, KeyMiss, Revocations, Verifier, VerifierConfig,
    credentials_from_jwks,
};

#[test]
fn good_tokens_of_every_algorithm_verify_by_kid_and_by_consumer_claim() {
    let kit = TestKit::new();
    let verifier = kit.verifier();
    for alg in Algorithm::ALL {
        let name = format!("c-{alg}");
        let key = kit.consumer(&name, alg);
        let claims = kit.claims(&name);
        for token in [key.sign(&claims), key.sign_without_kid(&claims)] {
            let identity = verifier
                .verify(&token)
                .unwrap_or_else(|e| panic!("{alg}: {e:?}"));
            assert_eq!(identity.consumer, name);
            assert_eq!(identity.subject.as_deref(), claims["sub"].as_str());
            assert_eq!(identity.token_id.as_deref(), claims["jti"].as_str());
            assert_eq!(identity.expires_at, claims["exp"].as_u64());
        }
    }
}

#[test]
fn keys_from_a_jwks_are_selected_by_kid() {
    let keys: Vec<TestKey> = [
        Algorithm::RS256,
        Algorithm::PS512,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, alg)| TestKey::generate(alg, format!("idp-{i}")))
    .collect();
    let jwks = json!({"keys": keys.iter().map(TestKey::jwk).collect::<Vec<_>>()}).to_string();
    let mut idp = Consumer::new("idp");
    idp.credentials = credentials_from_jwks("idp.jwks.json", &jwks).expect("valid JWKS");
    idp.trust_token_scopes = true;
    let kit = TestKit::new();
    kit.store.upsert(idp).expect("unique");
    let verifier = kit.verifier();
    for key in &keys {
        let mut claims = kit.claims("idp");
        claims.as_object_mut().expect("object").remove("key");
        claims["scope"] = "orders.read orders.write".into();
        let identity = verifier.verify(&key.sign(&claims)).expect("verifies");
        assert_eq!(identity.consumer, "idp");
        assert_eq!(identity.scopes, ["orders.read", "orders.write"]);
    }
}

#[test]
fn a_key_rotation_accepts_both_keys_then_only_the_new_one() {
    let kit = TestKit::new();
    let old = kit.consumer("alice", Algorithm::ES256);
    let verifier = kit.verifier();
    let old_token = old.sign(&kit.claims("alice"));
    assert!(verifier.verify(&old_token).is_ok());

    let new = kit.add_key("alice", Algorithm::EdDSA, "alice-2");
    let new_token = new.sign(&kit.claims("alice"));
    assert!(verifier.verify(&old_token).is_ok());
    assert!(verifier.verify(&new_token).is_ok());

    assert!(kit.store.remove_credential(&old.kid));
    assert_eq!(
        verifier.verify(&old_token).map_err(|e| e.code()),
        Err("unknown_key")
    );
    let without_kid = old.sign_without_kid(&kit.claims("alice"));
    assert_eq!(
        verifier.verify(&without_kid).map_err(|e| e.code()),
        Err("algorithm_not_allowed")
    );
    assert!(verifier.verify(&new_token).is_ok());
}

#[test]
fn the_identity_carries_groups_narrowed_scopes_and_forwarded_claims() {
    let kit = TestKit::new();
    let key = TestKey::generate(Algorithm::HS256, "b1");
    let billing = Consumer::new("billing")
        .with_key("billing-key")
        .with_groups(["internal"])
        .with_scopes(["orders.read", "orders.write"])
        .with_credential(key.credential());
    kit.store.upsert(billing).expect("unique");
    let verifier =
        kit.verifier_with(VerifierConfig::default().with_forward_claims(["tenant", "absent"]));
    let mut claims = kit.claims("billing-key");
    claims["scope"] = "orders.read admin".into();
    claims["tenant"] = "acme".into();
    let identity = verifier.verify(&key.sign(&claims)).expect("verifies");
    assert_eq!(identity.consumer, "billing");
    assert_eq!(identity.groups, ["internal"]);
    assert_eq!(
        identity.scopes,
        ["orders.read"],
        "a token may narrow its scopes, never widen them"
    );
    assert_eq!(identity.claims.get("tenant"), Some(&json!("acme")));
    assert!(!identity.claims.contains_key("absent"));
}

#[test]
fn a_cached_token_is_served_until_it_expires_then_refused() {
    let kit = TestKit::new();
    let key = kit.consumer("alice", Algorithm::PS256);
    let verifier = kit.verifier();
    let token = key.sign(&kit.claims("alice"));
    assert!(verifier.verify(&token).is_ok());
    assert!(verifier.verify(&token).is_ok());
    assert_eq!(
        (verifier.cache_stats().hits, verifier.cache_stats().misses),
        (1, 1)
    );
    kit.clock.advance(300);
    assert!(
        verifier.verify(&token).is_ok(),
        "within the leeway, re-verified"
    );
    assert_eq!(
        verifier.cache_stats().hits,
        1,
        "the entry did not outlive exp"
    );
    kit.clock.advance(30);
    assert_eq!(
        verifier.verify(&token).map_err(|e| e.code()),
        Err("token_expired")
    );
}

#[test]
fn issued_tokens_verify_and_carry_the_extra_claims() {
    let kit = TestKit::new();
    kit.consumer("alice", Algorithm::RS384);
    let mut extra = Map::new();
    extra.insert("sub".into(), "user-7".into());
    let token = kit
        .issuer()
        .sign("alice", Duration::from_secs(120), extra)
        .expect("signed");
    let identity = kit.verifier().verify(&token).expect("verifies");
    assert_eq!(identity.consumer, "alice");
    assert_eq!(identity.subject.as_deref(), Some("user-7"));
    assert_eq!(identity.expires_at, Some(TestKit::NOW + 120));
    assert!(identity.token_id.is_some());
}

#[test]
fn a_reloaded_store_drops_consumers_that_left() {
    let kit = TestKit::new();
    let key = kit.consumer("alice", Algorithm::HS512);
    let verifier = kit.verifier();
    let token = key.sign(&kit.claims("alice"));
    assert!(verifier.verify(&token).is_ok());
    kit.store
        .replace_all(vec![Consumer::new("bob")])
        .expect("valid");
    assert_eq!(
        verifier.verify(&token).map_err(|e| e.code()),
        Err("unknown_key")
    );
}

#[test]
fn the_cache_can_be_turned_off() {
    let kit = TestKit::new();
    let key = kit.consumer("alice", Algorithm::HS256);
    let store = Arc::clone(&kit.store);
    let verifier = Verifier::new(
        store,
        Arc::new(Revocations::new()),
        VerifierConfig::default().with_cache_capacity(0),
    )
    .with_clock(kit.clock.clone());
    let token = key.sign(&kit.claims("alice"));
    assert!(verifier.verify(&token).is_ok());
    assert!(verifier.verify(&token).is_ok());
    assert_eq!(verifier.cache_stats().inserts, 0);
}

#[test]
fn a_remote_consumer_before_its_first_fetch_is_refused_as_keys_unavailable() {
    let kit = TestKit::new();
    let mut idp = Consumer::new("idp");
    idp.jwks_source = Some(JwksSource::new("idp", "https://idp/jwks", None, None).expect("valid"));
    kit.store.upsert(idp).expect("unique");
    let verifier = kit.verifier();
    let key = TestKey::generate(Algorithm::ES256, "idp-1");
    let claims = kit.claims("idp");
    // By consumer claim, with or without a kid: the keys are not there yet.
    assert_eq!(
        verifier.verify(&key.sign(&claims)),
        Err(AuthError::KeysUnavailable)
    );
    assert_eq!(
        verifier.verify(&key.sign_without_kid(&claims)),
        Err(AuthError::KeysUnavailable)
    );
    // A kid alone names no consumer.
    let mut bare = claims.clone();
    bare.as_object_mut().expect("object").remove("key");
    assert_eq!(
        verifier.verify(&key.sign(&bare)),
        Err(AuthError::UnknownKey)
    );
    // Once the set arrived, the token verifies.
    kit.store
        .replace_credentials("idp", &[], vec![key.credential()])
        .expect("installed");
    assert!(verifier.verify(&key.sign(&bare)).is_ok());
}

#[test]
fn an_unknown_kid_is_reported_with_the_claimed_consumer_and_a_known_one_is_not() {
    let kit = TestKit::new();
    let known = kit.consumer("alice", Algorithm::ES256);
    let verifier = kit.verifier();
    let claims = kit.claims("alice");
    assert_eq!(verifier.unknown_kid(&known.sign(&claims)), None);
    assert_eq!(verifier.unknown_kid(&known.sign_without_kid(&claims)), None);
    assert_eq!(verifier.unknown_kid("not.a.token"), None);
    let stranger = TestKey::generate(Algorithm::ES256, "rotated-in");
    assert_eq!(
        verifier.unknown_kid(&stranger.sign(&claims)),
        Some(KeyMiss {
            kid: "rotated-in".into(),
            consumer_key: Some("alice".into()),
        })
    );
}
