use std::sync::Arc;

use tollgate_auth::{
    Algorithm, AssertionSigner, AssertionVerifier, Effect, Identity, Policy, Rule,
    generate_assertion_key,
    testkit::{TestClock, TestKit},
};
use tollgate_bus::{Envelope, RejectCode, headers};

use super::Guard;

struct Bus {
    signer: AssertionSigner,
    verifier: AssertionVerifier,
}

fn bus() -> Bus {
    let (private, public) = generate_assertion_key().unwrap();
    Bus {
        signer: AssertionSigner::from_pem(private.as_bytes()).unwrap(),
        verifier: AssertionVerifier::from_public_pem(public.as_bytes()).unwrap(),
    }
}

/// A caller as the router verified it. (The assertion signer writes `sub` and `jti`
/// as null when absent, which the verifier refuses: see the report to auth.)
fn alice() -> Identity {
    let mut who = Identity::new("alice")
        .with_subject("alice-user")
        .with_scopes(["orders:write"]);
    who.token_id = Some("t-1".into());
    who
}

fn gateway(bus: &Bus) -> Guard {
    Guard::new("orders".into(), Some(bus.verifier.clone()), None, None)
}

fn message(route: &str) -> Envelope {
    let mut env = Envelope::new("{}");
    env.headers.insert(headers::ROUTE, route);
    env
}

fn asserted(signer: &AssertionSigner, route: &str, bound_route: &str, bound_id: &str) -> Envelope {
    let mut env = message(route);
    let token = signer.sign(&alice(), bound_route, bound_id).unwrap();
    env.headers.insert(headers::ASSERTION, token);
    env
}

fn refused(guard: &Guard, env: &Envelope) -> (RejectCode, &'static str) {
    let r = guard.admit(env).expect_err("refused");
    (r.code, r.detail)
}

#[test]
fn admits_a_valid_assertion_with_the_identity_it_asserts() {
    let bus = bus();
    let mut env = message("orders.create");
    let token = bus.signer.sign(&alice(), "orders.create", &env.id).unwrap();
    env.headers.insert(headers::ASSERTION, token);
    // Forged informational headers must not change who the handler sees.
    env.headers.insert(headers::CONSUMER, "admin");
    env.headers.insert(headers::AUTH_MODE, "service");
    let admitted = gateway(&bus).admit(&env).unwrap();
    assert_eq!(admitted.identity.consumer, "alice");
    assert_eq!(admitted.method, "create");
}

#[test]
fn refuses_a_message_without_an_assertion_even_with_identity_headers() {
    let bus = bus();
    let mut env = message("orders.create");
    env.headers.insert(headers::CONSUMER, "admin");
    env.headers.insert(headers::SCOPES, "orders:write");
    assert_eq!(
        refused(&gateway(&bus), &env),
        (RejectCode::NotFromBus, "assertion_missing")
    );
}

#[test]
fn refuses_an_assertion_signed_by_another_key() {
    let (bus, forger) = (bus(), bus());
    let id = uuid::Uuid::new_v4().to_string();
    let env = asserted(&forger.signer, "orders.create", "orders.create", &id).with_id(id);
    assert_eq!(
        refused(&gateway(&bus), &env),
        (RejectCode::NotFromBus, "bad_signature")
    );
}

#[test]
fn refuses_an_assertion_for_another_route_or_message() {
    let bus = bus();
    let guard = gateway(&bus);
    let other_route = asserted(&bus.signer, "orders.create", "orders.cancel", "m1").with_id("m1");
    assert_eq!(refused(&guard, &other_route).1, "claims_invalid");
    let other_id = asserted(&bus.signer, "orders.create", "orders.create", "m1").with_id("m2");
    assert_eq!(refused(&guard, &other_id).1, "claims_invalid");
}

#[test]
fn refuses_a_valid_assertion_for_another_service() {
    let bus = bus();
    // Signed for billing.pay and claiming that route, but put on the orders queue.
    let env = asserted(&bus.signer, "billing.pay", "billing.pay", "m1").with_id("m1");
    assert_eq!(
        refused(&gateway(&bus), &env),
        (RejectCode::NotFromBus, "route_mismatch")
    );
}

#[test]
fn an_expired_genuine_assertion_is_handed_back_for_re_admission() {
    let bus = bus();
    let past = Arc::new(TestClock::new(TestKit::NOW));
    let old = bus.signer.clone().with_clock(past);
    let env = asserted(&old, "orders.create", "orders.create", "m1").with_id("m1");
    let refusal = gateway(&bus).admit(&env).unwrap_err();
    assert_eq!(
        (refusal.code, refusal.detail, refusal.outlived),
        (RejectCode::NotFromBus, "assertion_outlived", true)
    );
    // Expired and for another message: no hand-back, a plain refusal.
    let other = asserted(&old, "orders.create", "orders.create", "m1").with_id("m2");
    let refusal = gateway(&bus).admit(&other).unwrap_err();
    assert_eq!((refusal.detail, refusal.outlived), ("token_expired", false));
}

#[test]
fn service_mode_admits_a_valid_token_and_refuses_others() {
    let kit = TestKit::new();
    let key = kit.consumer("alice", Algorithm::ES256);
    let guard = Guard::new("orders".into(), None, Some(Arc::new(kit.verifier())), None);
    let mut env = message("orders.create");
    let token = key.sign(&kit.claims("alice"));
    env.headers
        .insert(headers::AUTHORIZATION, format!("Bearer {token}"));
    assert_eq!(guard.admit(&env).unwrap().identity.consumer, "alice");

    let mallory = TestKit::new().consumer("alice", Algorithm::ES256);
    env.headers.insert(
        headers::AUTHORIZATION,
        format!("Bearer {}", mallory.sign(&kit.claims("alice"))),
    );
    assert_eq!(refused(&guard, &env).0, RejectCode::InvalidToken);
    env.headers.remove(headers::AUTHORIZATION);
    assert_eq!(refused(&guard, &env).0, RejectCode::TokenMissing);
}

#[test]
fn service_mode_applies_the_services_policy() {
    let kit = TestKit::new();
    let key = kit.consumer("alice", Algorithm::ES256);
    let rule = Rule::new("read-only", Effect::Allow, ["orders.get"]).unwrap();
    let policy = Arc::new(Policy::new(vec![rule]));
    let guard = Guard::new(
        "orders".into(),
        None,
        Some(Arc::new(kit.verifier())),
        Some(policy),
    );
    let bearer = format!("Bearer {}", key.sign(&kit.claims("alice")));
    let mut get = message("orders.get");
    get.headers.insert(headers::AUTHORIZATION, bearer.as_str());
    assert!(guard.admit(&get).is_ok());
    let mut create = message("orders.create");
    create
        .headers
        .insert(headers::AUTHORIZATION, bearer.as_str());
    assert_eq!(refused(&guard, &create).0, RejectCode::Forbidden);
}

#[test]
fn both_modes_refuse_a_message_with_neither_credential_as_not_from_bus() {
    let (bus, kit) = (bus(), TestKit::new());
    let guard = Guard::new(
        "orders".into(),
        Some(bus.verifier.clone()),
        Some(Arc::new(kit.verifier())),
        None,
    );
    assert_eq!(
        refused(&guard, &message("orders.create")).0,
        RejectCode::NotFromBus
    );
}
