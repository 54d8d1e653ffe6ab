//! The access policy: may this caller call this route? Pure and synchronous.
//!
//! Rules are tried in order and the first that matches decides; when none does,
//! the call is denied (code `forbidden`).

mod decision;
mod pattern;
mod rule;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use decision::{Decision, Effect, Reason, RuleRef};
pub use pattern::{InvalidPattern, RoutePattern};
pub use rule::{Rule, RuleSpec};

use crate::error::LoadError;
use crate::identity::Identity;

/// An ordered list of rules over routes `service.method`, denying by default.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
    anonymous: Option<Arc<str>>,
}

/// How a policy is written in the router config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// The consumer name given to callers without a credential, on routes whose rule says
    /// `anonymous = true`. Unset: callers without a credential are always denied.
    #[serde(default)]
    pub anonymous_consumer: Option<String>,
    /// The rules, tried in order.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

impl Policy {
    /// A policy of `rules`, denying callers without a credential.
    pub fn new(rules: Vec<Rule>) -> Self {
        Self {
            rules,
            anonymous: None,
        }
    }

    /// Builds a policy from its config. Errors on an invalid route pattern or a rule
    /// with no routes.
    pub fn from_spec(spec: &PolicySpec) -> Result<Self, LoadError> {
        let rules = spec
            .rules
            .iter()
            .enumerate()
            .map(|(i, rule)| rule.build(i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            rules,
            anonymous: spec.anonymous_consumer.as_deref().map(Arc::from),
        })
    }

    /// Lets callers without a credential through as consumer `name`, on the routes of
    /// rules marked anonymous.
    pub fn with_anonymous_consumer(mut self, name: impl Into<String>) -> Self {
        self.anonymous = Some(Arc::from(name.into()));
        self
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The anonymous consumer's identity, when configured: what the router attaches to a
    /// message without a credential that the policy allowed.
    pub fn anonymous_identity(&self) -> Option<Identity> {
        self.anonymous.as_deref().map(Identity::new)
    }

    /// Decides whether `who` (`None`: no credential) may call `route` (`service.method`).
    ///
    /// The first rule whose patterns match the route and whose conditions match the
    /// caller decides. A caller without a credential matches only rules marked
    /// `anonymous`, and only when an anonymous consumer is configured.
    pub fn decide(&self, who: Option<&Identity>, route: &str) -> Decision {
        if !pattern::is_valid_route(route) {
            return Decision::deny(None, Reason::InvalidRoute);
        }
        if who.is_none() && self.anonymous.is_none() {
            return Decision::deny(None, Reason::Unauthenticated);
        }
        let found = self.rules.iter().enumerate().find(|(_, rule)| {
            rule.matches_route(route)
                && match who {
                    Some(identity) => rule.matches_identity(identity),
                    None => rule.anonymous(),
                }
        });
        match found {
            Some((index, rule)) => Decision::by_rule(index, rule),
            None => Decision::deny(None, Reason::NoRuleMatched),
        }
    }
}

#[cfg(test)]
mod tests;
