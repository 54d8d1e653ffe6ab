//! One rule: which routes, whom, and allow or deny.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::LoadError;
use crate::identity::Identity;
use crate::policy::decision::Effect;
use crate::policy::pattern::RoutePattern;

/// A rule: on `routes`, for callers matching every condition given, `effect`.
///
/// Conditions left empty do not constrain: a rule with no consumers, groups or
/// scopes applies to every authenticated caller.
#[derive(Debug, Clone)]
pub struct Rule {
    name: Arc<str>,
    routes: Vec<RoutePattern>,
    effect: Effect,
    consumers: Vec<String>,
    groups: Vec<String>,
    scopes_any: Vec<String>,
    scopes_all: Vec<String>,
    anonymous: bool,
}

/// How a rule is written in the router config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// A name for logs and decisions; defaults to `rule-<index>`.
    #[serde(default)]
    pub name: Option<String>,
    /// Route patterns (`service.method`, with `*` and `#`); at least one.
    pub routes: Vec<String>,
    /// `allow` (default) or `deny`.
    #[serde(default = "allow")]
    pub effect: Effect,
    /// The caller's consumer must be one of these.
    #[serde(default)]
    pub consumers: Vec<String>,
    /// The caller must be in one of these groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The caller must hold at least one of these scopes.
    #[serde(default)]
    pub scopes_any: Vec<String>,
    /// The caller must hold all of these scopes.
    #[serde(default)]
    pub scopes_all: Vec<String>,
    /// Callers without a credential match this rule (as the anonymous consumer).
    #[serde(default)]
    pub anonymous: bool,
}

fn allow() -> Effect {
    Effect::Allow
}

impl Rule {
    /// A rule named `name` with `effect` on `routes`. Errors on an invalid pattern or no
    /// route.
    pub fn new<I, S>(name: &str, effect: Effect, routes: I) -> Result<Self, LoadError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let routes = routes
            .into_iter()
            .map(|r| {
                r.as_ref()
                    .parse()
                    .map_err(|e| LoadError::Invalid(format!("rule {name}: {e}")))
            })
            .collect::<Result<Vec<RoutePattern>, _>>()?;
        if routes.is_empty() {
            return Err(LoadError::Invalid(format!("rule {name} has no routes")));
        }
        Ok(Self {
            name: Arc::from(name),
            routes,
            effect,
            consumers: Vec::new(),
            groups: Vec::new(),
            scopes_any: Vec::new(),
            scopes_all: Vec::new(),
            anonymous: false,
        })
    }

    /// Restricts the rule to these consumers.
    pub fn consumers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.consumers = names.into_iter().map(Into::into).collect();
        self
    }

    /// Restricts the rule to members of any of these groups.
    pub fn groups<I: IntoIterator<Item = S>, S: Into<String>>(mut self, groups: I) -> Self {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Restricts the rule to holders of any of these scopes.
    pub fn scopes_any<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes_any = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Restricts the rule to holders of all of these scopes.
    pub fn scopes_all<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes_all = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Lets callers without a credential match the rule.
    pub fn allow_anonymous(mut self) -> Self {
        self.anonymous = true;
        self
    }

    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Allow or deny.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// Whether callers without a credential match.
    pub fn anonymous(&self) -> bool {
        self.anonymous
    }

    pub(crate) fn name_arc(&self) -> Arc<str> {
        Arc::clone(&self.name)
    }

    /// Whether any of the rule's patterns matches `route`.
    pub fn matches_route(&self, route: &str) -> bool {
        self.routes.iter().any(|p| p.matches(route))
    }

    /// Whether `who` meets every condition of the rule.
    pub fn matches_identity(&self, who: &Identity) -> bool {
        (self.consumers.is_empty() || self.consumers.contains(&who.consumer))
            && (self.groups.is_empty() || self.groups.iter().any(|g| who.in_group(g)))
            && (self.scopes_any.is_empty() || self.scopes_any.iter().any(|s| who.has_scope(s)))
            && self.scopes_all.iter().all(|s| who.has_scope(s))
    }
}

impl RuleSpec {
    pub(crate) fn build(&self, index: usize) -> Result<Rule, LoadError> {
        let name = self.name.clone().unwrap_or_else(|| format!("rule-{index}"));
        let mut rule = Rule::new(&name, self.effect, &self.routes)?
            .consumers(self.consumers.iter().cloned())
            .groups(self.groups.iter().cloned())
            .scopes_any(self.scopes_any.iter().cloned())
            .scopes_all(self.scopes_all.iter().cloned());
        rule.anonymous = self.anonymous;
        Ok(rule)
    }
}
