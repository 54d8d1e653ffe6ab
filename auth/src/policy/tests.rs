use super::*;

fn alice() -> Identity {
    Identity::new("alice")
        .with_groups(["staff"])
        .with_scopes(["orders.read"])
}

fn allow(name: &str, routes: &[&str]) -> Rule {
    Rule::new(name, Effect::Allow, routes).expect("valid")
}

fn deny(name: &str, routes: &[&str]) -> Rule {
    Rule::new(name, Effect::Deny, routes).expect("valid")
}

#[test]
fn an_empty_policy_denies_with_no_rule_matched() {
    let decision = Policy::default().decide(Some(&alice()), "orders.get");
    assert_eq!(decision, Decision::deny(None, Reason::NoRuleMatched));
    assert_eq!(
        decision.into_result().map_err(|e| e.code()),
        Err("forbidden")
    );
}

#[test]
fn the_first_matching_rule_decides_and_is_named() {
    let policy = Policy::new(vec![
        deny("no-deletes", &["orders.delete"]),
        allow("staff-orders", &["orders.*"]).groups(["staff"]),
    ]);
    let denied = policy.decide(Some(&alice()), "orders.delete");
    assert_eq!(denied.reason, Reason::DeniedByRule);
    assert_eq!(
        denied.rule.map(|r| (r.index, r.name.to_string())),
        Some((0, "no-deletes".into()))
    );
    let allowed = policy.decide(Some(&alice()), "orders.get");
    assert!(allowed.is_allowed());
    assert_eq!(allowed.rule.map(|r| r.index), Some(1));
    assert_eq!(allowed.reason, Reason::AllowedByRule);
}

#[test]
fn consumer_and_group_conditions_restrict_the_rule() {
    let policy = Policy::new(vec![
        allow("bob-only", &["billing.#"]).consumers(["bob"]),
        allow("admins", &["admin.*"]).groups(["admin", "ops"]),
    ]);
    assert!(!policy.decide(Some(&alice()), "billing.pay").is_allowed());
    assert!(
        policy
            .decide(Some(&Identity::new("bob")), "billing.pay")
            .is_allowed()
    );
    assert!(!policy.decide(Some(&alice()), "admin.reset").is_allowed());
    let ops = Identity::new("carol").with_groups(["ops"]);
    assert!(policy.decide(Some(&ops), "admin.reset").is_allowed());
}

#[test]
fn scopes_any_needs_one_and_scopes_all_needs_every_one() {
    let policy = Policy::new(vec![
        allow("read", &["orders.get"]).scopes_any(["orders.read", "orders.admin"]),
        allow("write", &["orders.put"]).scopes_all(["orders.read", "orders.write"]),
    ]);
    assert!(policy.decide(Some(&alice()), "orders.get").is_allowed());
    assert!(!policy.decide(Some(&alice()), "orders.put").is_allowed());
    let writer = Identity::new("w").with_scopes(["orders.write", "orders.read"]);
    assert!(policy.decide(Some(&writer), "orders.put").is_allowed());
    assert!(
        !policy
            .decide(Some(&Identity::new("none")), "orders.get")
            .is_allowed()
    );
}

#[test]
fn callers_without_credentials_are_denied_unless_an_anonymous_rule_allows_them() {
    let rules = vec![
        allow("public-health", &["*.health"]).allow_anonymous(),
        allow("everyone", &["#"]),
    ];
    let closed = Policy::new(rules.clone());
    assert_eq!(
        closed.decide(None, "orders.health").reason,
        Reason::Unauthenticated
    );

    let open = Policy::new(rules).with_anonymous_consumer("anonymous");
    let health = open.decide(None, "orders.health");
    assert!(health.is_allowed());
    assert_eq!(health.rule.map(|r| r.index), Some(0));
    assert_eq!(
        open.decide(None, "orders.get").reason,
        Reason::NoRuleMatched
    );
    assert!(open.decide(Some(&alice()), "orders.get").is_allowed());
    assert_eq!(
        open.anonymous_identity().map(|i| i.consumer),
        Some("anonymous".into())
    );
}

#[test]
fn malformed_routes_are_denied() {
    let policy = Policy::new(vec![allow("all", &["#"])]);
    for route in ["", "orders.", "orders.*", "a..b"] {
        assert_eq!(
            policy.decide(Some(&alice()), route).reason,
            Reason::InvalidRoute
        );
    }
}

#[test]
fn a_policy_parses_from_toml() {
    let spec: PolicySpec = toml::from_str(
        r#"
        anonymous_consumer = "anonymous"

        [[rules]]
        name = "no-deletes"
        routes = ["*.delete"]
        effect = "deny"

        [[rules]]
        routes = ["orders.*", "billing.#"]
        groups = ["staff"]
        scopes_any = ["orders.read"]
        "#,
    )
    .expect("valid TOML");
    let policy = Policy::from_spec(&spec).expect("valid policy");
    assert_eq!(policy.rules()[1].name(), "rule-1");
    assert!(!policy.decide(Some(&alice()), "orders.delete").is_allowed());
    assert!(policy.decide(Some(&alice()), "billing.x.y").is_allowed());
    assert_eq!(
        policy.decide(Some(&alice()), "orders.delete").to_string(),
        "deny by rule #0 \"no-deletes\" (denied_by_rule)"
    );
}

#[test]
fn invalid_patterns_and_empty_routes_are_refused_at_load_time() {
    for routes in [vec!["ord*"], vec![]] {
        let spec = PolicySpec {
            anonymous_consumer: None,
            rules: vec![RuleSpec {
                name: None,
                routes: routes.into_iter().map(String::from).collect(),
                effect: Effect::Allow,
                consumers: vec![],
                groups: vec![],
                scopes_any: vec![],
                scopes_all: vec![],
                anonymous: false,
            }],
        };
        assert!(Policy::from_spec(&spec).is_err());
    }
}
