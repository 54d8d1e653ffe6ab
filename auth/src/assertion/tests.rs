use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;

use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

const NOW: u64 = 1_700_000_000;

#[derive(Debug)]
struct Manual(AtomicU64);

impl Clock for Manual {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Bus {
    clock: Arc<Manual>,
    signer: AssertionSigner,
    verifier: AssertionVerifier,
}

fn bus() -> Bus {
    let clock = Arc::new(Manual(AtomicU64::new(NOW)));
    let (private, public) = generate_assertion_key().expect("keygen");
    let signer = AssertionSigner::from_pem(private.as_bytes())
        .expect("private")
        .with_clock(clock.clone());
    let verifier = AssertionVerifier::from_public_pem(public.as_bytes())
        .expect("public")
        .with_clock(clock.clone());
    Bus {
        clock,
        signer,
        verifier,
    }
}

fn caller() -> Identity {
    let mut who = Identity::new("billing")
        .with_subject("u1")
        .with_groups(["staff"])
        .with_scopes(["a"]);
    who.token_id = Some("t1".into());
    who.claims.insert("tenant".into(), "acme".into());
    who
}

fn code<T: std::fmt::Debug>(r: Result<T, AuthError>) -> &'static str {
    r.expect_err("refused").code()
}

#[test]
fn an_assertion_round_trips_the_identity_route_and_message() {
    let bus = bus();
    let token = bus
        .signer
        .sign(&caller(), "orders.get", "m-1")
        .expect("signed");
    let asserted = bus
        .verifier
        .verify(&token, "orders.get", "m-1")
        .expect("verifies");
    assert_eq!(asserted.route, "orders.get");
    assert_eq!(asserted.message_id, "m-1");
    assert_eq!(asserted.expires_at, NOW + 30);
    let mut expected = caller();
    expected.expires_at = Some(NOW + 30);
    assert_eq!(asserted.identity, expected);
}

#[test]
fn an_identity_without_subject_or_token_id_round_trips() {
    let bus = bus();
    let anonymous = Identity::new("anonymous");
    let token = bus
        .signer
        .sign(&anonymous, "orders.health", "m-2")
        .expect("signed");
    let asserted = bus
        .verifier
        .verify(&token, "orders.health", "m-2")
        .expect("verifies");
    assert_eq!(asserted.identity.consumer, "anonymous");
    assert_eq!(asserted.identity.subject, None);
    assert_eq!(asserted.identity.token_id, None);
}

#[test]
fn an_assertion_for_another_route_or_message_is_refused() {
    let bus = bus();
    let token = bus
        .signer
        .sign(&caller(), "orders.get", "m-1")
        .expect("signed");
    assert_eq!(
        code(bus.verifier.verify(&token, "orders.delete", "m-1")),
        "claims_invalid"
    );
    assert_eq!(
        code(bus.verifier.verify(&token, "orders.get", "m-2")),
        "claims_invalid"
    );
}

#[test]
fn an_assertion_expires_after_its_ttl_and_never_outlives_the_credential() {
    let bus = bus();
    let token = bus
        .signer
        .sign(&caller(), "orders.get", "m-1")
        .expect("signed");
    bus.clock.0.store(NOW + 35, Ordering::SeqCst);
    assert_eq!(
        code(bus.verifier.verify(&token, "orders.get", "m-1")),
        "token_expired"
    );

    let mut short = caller();
    short.expires_at = Some(NOW + 40);
    let token = bus
        .signer
        .sign(&short, "orders.get", "m-1")
        .expect("signed");
    assert_eq!(
        bus.verifier
            .verify(&token, "orders.get", "m-1")
            .map(|a| a.expires_at),
        Ok(NOW + 40)
    );
}

#[test]
fn an_assertion_signed_by_another_key_or_tampered_is_refused() {
    let bus = bus();
    let other = bus_with_other_key();
    let token = other.sign(&caller(), "orders.get", "m-1").expect("signed");
    assert_eq!(
        code(bus.verifier.verify(&token, "orders.get", "m-1")),
        "bad_signature"
    );

    let token = bus
        .signer
        .sign(&caller(), "orders.get", "m-1")
        .expect("signed");
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = b64(
        r#"{"consumer":"admin","route":"orders.get","mid":"m-1","exp":1700000030,"iss":"tollgate-bus"}"#,
    );
    parts[1] = &forged;
    assert_eq!(
        code(bus.verifier.verify(&parts.join("."), "orders.get", "m-1")),
        "bad_signature"
    );
}

fn bus_with_other_key() -> AssertionSigner {
    let (private, _) = generate_assertion_key().expect("keygen");
    AssertionSigner::from_pem(private.as_bytes()).expect("private")
}

#[test]
fn a_consumer_token_is_not_an_assertion() {
    let bus = bus();
    let key = EncodingKey::from_secret(&[1; 32]).expect("secret");
    let hs =
        jsonwebtoken::encode(&Header::default(), &json!({"exp": NOW + 10}), &key).expect("signed");
    assert_eq!(
        code(bus.verifier.verify(&hs, "orders.get", "m-1")),
        "algorithm_not_allowed"
    );

    let (private, _) = generate_assertion_key().expect("keygen");
    let ed = EncodingKey::from_ed_pem(private.as_bytes()).expect("ed");
    let jwt = jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::EdDSA),
        &json!({"exp": NOW + 10}),
        &ed,
    )
    .expect("signed");
    assert_eq!(
        code(bus.verifier.verify(&jwt, "orders.get", "m-1")),
        "token_malformed"
    );
}

#[test]
fn a_rotated_bus_key_is_selected_by_kid() {
    let bus = bus();
    let (private, public) = generate_assertion_key().expect("keygen");
    let next = AssertionSigner::from_pem(private.as_bytes())
        .expect("private")
        .with_kid("bus-2")
        .with_clock(bus.clock.clone());
    let verifier = bus
        .verifier
        .clone()
        .with_key("bus-2", public.as_bytes())
        .expect("public");
    let token = next.sign(&caller(), "orders.get", "m-1").expect("signed");
    assert!(verifier.verify(&token, "orders.get", "m-1").is_ok());
    assert_eq!(
        code(bus.verifier.verify(&token, "orders.get", "m-1")),
        "unknown_key"
    );
    let old = bus
        .signer
        .sign(&caller(), "orders.get", "m-1")
        .expect("signed");
    assert!(verifier.verify(&old, "orders.get", "m-1").is_ok());
}

/// A signer at `NOW` and a verifier of its key whose clock reads `NOW + offset`.
fn skewed(offset: i64) -> (AssertionSigner, AssertionVerifier) {
    let (private, public) = generate_assertion_key().expect("keygen");
    let router_clock = Arc::new(Manual(AtomicU64::new(NOW)));
    let service_clock = Arc::new(Manual(AtomicU64::new(NOW.saturating_add_signed(offset))));
    let signer = AssertionSigner::from_pem(private.as_bytes())
        .expect("private")
        .with_clock(router_clock);
    let verifier = AssertionVerifier::from_public_pem(public.as_bytes())
        .expect("public")
        .with_clock(service_clock);
    (signer, verifier)
}

#[test]
fn a_service_clock_behind_by_more_than_the_leeway_refuses_until_the_leeway_covers_it() {
    let (signer, verifier) = skewed(-10);
    let token = signer.sign(&caller(), "orders.get", "m-1").expect("signed");
    assert_eq!(verifier.leeway(), DEFAULT_ASSERTION_LEEWAY);
    let refused = verifier.check(&token, "orders.get", "m-1");
    assert_eq!(
        refused.outcome.map(|_| ()),
        Err(AuthError::TokenNotYetValid)
    );
    assert_eq!(refused.skew_secs, Some(-10));

    let verifier = verifier.with_leeway(Duration::from_secs(15));
    let accepted = verifier.check(&token, "orders.get", "m-1");
    assert!(accepted.outcome.is_ok());
    assert_eq!(accepted.skew_secs, Some(-10));
}

#[test]
fn a_service_clock_ahead_reads_as_a_positive_skew() {
    let (signer, verifier) = skewed(3);
    let token = signer.sign(&caller(), "orders.get", "m-1").expect("signed");
    let checked = verifier.check(&token, "orders.get", "m-1");
    assert!(checked.outcome.is_ok());
    assert_eq!(checked.skew_secs, Some(3));
}

#[test]
fn a_forged_assertion_gives_no_clock_reading() {
    let (_, verifier) = skewed(0);
    let (other, _) = skewed(0);
    let token = other.sign(&caller(), "orders.get", "m-1").expect("signed");
    let checked = verifier.check(&token, "orders.get", "m-1");
    assert_eq!(checked.outcome.map(|_| ()), Err(AuthError::BadSignature));
    assert_eq!(checked.skew_secs, None);
}

#[test]
fn the_leeway_is_capped_at_the_maximum() {
    let (_, verifier) = skewed(0);
    let verifier = verifier.with_leeway(Duration::from_secs(3600));
    assert_eq!(verifier.leeway(), MAX_ASSERTION_LEEWAY);
}

#[test]
fn a_stale_assertion_verifies_as_issued_and_says_its_age() {
    let b = bus();
    let token = b
        .signer
        .sign(&caller(), "orders.create", "m1")
        .expect("sign");
    b.clock.0.store(NOW + 3_600, Ordering::SeqCst);
    assert_eq!(
        code(b.verifier.verify(&token, "orders.create", "m1")),
        "token_expired"
    );
    let own = b.signer.verifier().expect("the signer's own verifier");
    let stale = own
        .verify_as_issued(&token, "orders.create", "m1")
        .expect("genuine, as issued");
    assert_eq!(stale.issued_at, NOW);
    assert_eq!(stale.identity.consumer, "billing");
    assert_eq!(
        code(own.verify_as_issued(&token, "orders.cancel", "m1")),
        "claims_invalid"
    );
    let forged = bus_with_other_key()
        .sign(&caller(), "orders.create", "m1")
        .expect("sign");
    assert_eq!(
        code(own.verify_as_issued(&forged, "orders.create", "m1")),
        "bad_signature"
    );
}

// === HS256 assertions with service secrets ===

/// `service`'s verifier holding only its own secret, on the bus's clock.
fn service_verifier(bus: &Bus, service: &str) -> AssertionVerifier {
    let secret = bus.signer.service_secret(service).expect("derived");
    AssertionVerifier::from_service_secret(service, &secret).with_clock(bus.clock.clone())
}

#[test]
fn an_hs256_assertion_round_trips_with_the_service_secret() {
    let bus = bus();
    let orders = service_verifier(&bus, "orders");
    assert_eq!(orders.service_alg(), AssertionAlg::HS256);
    assert_eq!(bus.verifier.service_alg(), AssertionAlg::EdDSA);
    let token = bus
        .signer
        .sign_for(AssertionAlg::HS256, &caller(), "orders.get", "m-1")
        .expect("signed");
    let asserted = orders
        .verify(&token, "orders.get", "m-1")
        .expect("verifies");
    assert_eq!(asserted.alg, AssertionAlg::HS256);
    let mut expected = caller();
    expected.expires_at = Some(NOW + 30);
    assert_eq!(asserted.identity, expected);
    // The router checks its own HS256 assertions (re-admission) with the bus key.
    let router = bus.signer.verifier().expect("verifier");
    let again = router
        .verify_as_issued(&token, "orders.get", "m-1")
        .expect("the router verifies");
    assert_eq!(again.alg, AssertionAlg::HS256);
}

#[test]
fn a_service_secret_is_the_same_on_every_router_and_new_with_a_new_bus_key() {
    let (private, _) = generate_assertion_key().expect("keygen");
    let one = AssertionSigner::from_pem(private.as_bytes()).expect("private");
    let other_router = AssertionSigner::from_pem(private.as_bytes()).expect("private");
    assert_eq!(
        one.service_secret("orders").unwrap(),
        other_router.service_secret("orders").unwrap()
    );
    let bus = bus();
    assert_ne!(
        bus.signer.service_secret("orders").unwrap(),
        bus.signer.service_secret("billing").unwrap()
    );
    assert_ne!(
        bus.signer.service_secret("orders").unwrap(),
        bus_with_other_key().service_secret("orders").unwrap()
    );
}

/// An HS256 assertion for `route` and message `m-1`, claiming `admin`,
/// made with `key` outside the bus (a forgery).
fn hs256_assertion_as_admin(key: &[u8], route: &str) -> String {
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some(ASSERTION_TYP.to_owned());
    let claims = json!({
        "iss": DEFAULT_ISSUER, "iat": NOW, "exp": NOW + 30, "consumer": "admin",
        "groups": [], "scopes": [], "claims": {}, "route": route, "mid": "m-1",
    });
    let key = EncodingKey::from_secret(key).expect("secret");
    jsonwebtoken::encode(&header, &claims, &key).expect("signed")
}

#[test]
fn a_service_cannot_mint_assertions_for_another_service() {
    let bus = bus();
    // `orders` holds its own secret and signs an assertion for billing's route.
    let orders_secret = bus.signer.service_secret("orders").unwrap();
    let orders_key = URL_SAFE_NO_PAD.decode(orders_secret.to_text()).unwrap();
    let forged = hs256_assertion_as_admin(&orders_key, "billing.pay");
    let billing = service_verifier(&bus, "billing");
    assert_eq!(
        code(billing.verify(&forged, "billing.pay", "m-1")),
        "bad_signature"
    );
    let router = bus.signer.verifier().expect("verifier");
    assert_eq!(
        code(router.verify(&forged, "billing.pay", "m-1")),
        "bad_signature"
    );
    // Billing's genuine assertion does not open orders' routes either.
    let genuine = bus
        .signer
        .sign_for(AssertionAlg::HS256, &caller(), "billing.pay", "m-1")
        .unwrap();
    let orders = service_verifier(&bus, "orders");
    assert_eq!(
        code(orders.verify(&genuine, "billing.pay", "m-1")),
        "unknown_key"
    );
    assert_eq!(
        code(orders.verify(&genuine, "orders.get", "m-1")),
        "bad_signature"
    );
}

#[test]
fn the_public_key_is_never_taken_as_an_hmac_secret() {
    // The classic confusion: an HS256 token "signed" with the public key's
    // PEM bytes, which every service holds.
    let clock = Arc::new(Manual(AtomicU64::new(NOW)));
    let (_, public) = generate_assertion_key().expect("keygen");
    let verifier = AssertionVerifier::from_public_pem(public.as_bytes())
        .expect("public")
        .with_clock(clock);
    let token = hs256_assertion_as_admin(public.as_bytes(), "orders.get");
    assert_eq!(
        code(verifier.verify(&token, "orders.get", "m-1")),
        "algorithm_not_allowed"
    );
}

#[test]
fn a_secret_only_service_refuses_ed25519_assertions_and_tampered_hs256_ones() {
    let bus = bus();
    let orders = service_verifier(&bus, "orders");
    let ed = bus.signer.sign(&caller(), "orders.get", "m-1").unwrap();
    assert_eq!(code(orders.verify(&ed, "orders.get", "m-1")), "unknown_key");
    let hs = bus
        .signer
        .sign_for(AssertionAlg::HS256, &caller(), "orders.get", "m-1")
        .unwrap();
    let mut parts: Vec<String> = hs.split('.').map(str::to_owned).collect();
    parts[1] = b64(&format!(
        r#"{{"iss":"{DEFAULT_ISSUER}","iat":{NOW},"exp":{},"consumer":"admin","route":"orders.get","mid":"m-1"}}"#,
        NOW + 30
    ));
    assert_eq!(
        code(orders.verify(&parts.join("."), "orders.get", "m-1")),
        "bad_signature"
    );
    // Expired like any assertion.
    bus.clock.0.store(NOW + 60, Ordering::SeqCst);
    assert_eq!(
        code(orders.verify(&hs, "orders.get", "m-1")),
        "token_expired"
    );
    // A verifier that trusts both keeps working through a move to secrets.
    let (private, public) = generate_assertion_key().expect("keygen");
    let signer = AssertionSigner::from_pem(private.as_bytes()).expect("private");
    let both = AssertionVerifier::from_public_pem(public.as_bytes())
        .expect("public")
        .with_service_secret("orders", &signer.service_secret("orders").unwrap());
    assert_eq!(both.service_alg(), AssertionAlg::HS256);
    for alg in [AssertionAlg::EdDSA, AssertionAlg::HS256] {
        let token = signer
            .sign_for(alg, &caller(), "orders.get", "m-2")
            .unwrap();
        assert_eq!(both.verify(&token, "orders.get", "m-2").unwrap().alg, alg);
    }
}
