//! Verify per algorithm with the cache off, a cache hit, a policy decision,
//! and signing and checking the bus assertion (paid on every routed message).
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tollgate_auth::testkit::TestKit;
use tollgate_auth::{
    Algorithm, AssertionSigner, AssertionVerifier, Effect, Identity, Policy, Rule, VerifierConfig,
    generate_assertion_key,
};

fn verify_per_algorithm(c: &mut Criterion) {
    let kit = TestKit::new();
    let uncached = kit.verifier_with(VerifierConfig::default().with_cache_capacity(0));
    let mut group = c.benchmark_group("verify_miss");
    for alg in Algorithm::ALL {
        let name = format!("c-{alg}");
        let token = kit.consumer(&name, alg).sign(&kit.claims(&name));
        group.bench_function(alg.as_str(), |b| {
            b.iter(|| uncached.verify(black_box(&token)).unwrap())
        });
    }
    group.finish();
}

fn verify_cache_hit(c: &mut Criterion) {
    let kit = TestKit::new();
    let verifier = kit.verifier();
    let mut group = c.benchmark_group("verify_hit");
    for alg in [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256] {
        let name = format!("c-{alg}");
        let token = kit.consumer(&name, alg).sign(&kit.claims(&name));
        verifier.verify(&token).unwrap();
        group.bench_function(alg.as_str(), |b| {
            b.iter(|| verifier.verify(black_box(&token)).unwrap())
        });
    }
    group.finish();
}

fn policy_decision(c: &mut Criterion) {
    let mut rules: Vec<Rule> = (0..20)
        .map(|i| {
            Rule::new(&format!("svc{i}"), Effect::Allow, [format!("svc{i}.*")])
                .unwrap()
                .groups(["ops"])
        })
        .collect();
    rules.push(
        Rule::new("orders", Effect::Allow, ["orders.#"])
            .unwrap()
            .scopes_any(["orders.read"]),
    );
    let policy = Policy::new(rules);
    let who = Identity::new("billing")
        .with_groups(["staff"])
        .with_scopes(["orders.read"]);
    c.bench_function("policy_decide_21_rules", |b| {
        b.iter(|| policy.decide(black_box(Some(&who)), black_box("orders.get")))
    });
}

fn bus_assertion(c: &mut Criterion) {
    let (private, public) = generate_assertion_key().unwrap();
    let signer = AssertionSigner::from_pem(private.as_bytes()).unwrap();
    let verifier = AssertionVerifier::from_public_pem(public.as_bytes()).unwrap();
    let who = Identity::new("web")
        .with_subject("web-user")
        .with_groups(["frontend"])
        .with_scopes(["orders.write"]);
    let token = signer.sign(&who, "orders.create", "m-1").unwrap();
    c.bench_function("assertion_sign", |b| {
        b.iter(|| {
            signer
                .sign(black_box(&who), "orders.create", "m-1")
                .unwrap()
        })
    });
    c.bench_function("assertion_verify", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(&token), "orders.create", "m-1")
                .unwrap()
        })
    });
}

criterion_group!(
    benches,
    verify_per_algorithm,
    verify_cache_hit,
    policy_decision,
    bus_assertion
);
criterion_main!(benches);
