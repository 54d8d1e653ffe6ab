//! What the policy decided, which rule decided it, and why.

use std::fmt;
use std::sync::Arc;

use crate::error::AuthError;
use crate::policy::rule::Rule;

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Effect {
    /// The call may proceed.
    Allow,
    /// The call is refused with `forbidden`.
    Deny,
}

/// The rule that decided: its position and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    /// Zero-based position in the policy.
    pub index: usize,
    /// The rule's name.
    pub name: Arc<str>,
}

/// Why the policy decided as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// A rule allowed the call.
    AllowedByRule,
    /// A rule denied the call.
    DeniedByRule,
    /// No rule matched; the policy denies by default.
    NoRuleMatched,
    /// The caller had no credential and the policy has no anonymous consumer.
    Unauthenticated,
    /// The route is not `service.method`-shaped.
    InvalidRoute,
}

/// The outcome of [`Policy::decide`](crate::Policy::decide).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allow or deny.
    pub effect: Effect,
    /// The rule that decided, if one did.
    pub rule: Option<RuleRef>,
    /// Why.
    pub reason: Reason,
}

impl Decision {
    pub(crate) fn by_rule(index: usize, rule: &Rule) -> Self {
        let reason = match rule.effect() {
            Effect::Allow => Reason::AllowedByRule,
            Effect::Deny => Reason::DeniedByRule,
        };
        Self {
            effect: rule.effect(),
            rule: Some(RuleRef {
                index,
                name: rule.name_arc(),
            }),
            reason,
        }
    }

    pub(crate) fn deny(rule: Option<RuleRef>, reason: Reason) -> Self {
        Self {
            effect: Effect::Deny,
            rule,
            reason,
        }
    }

    /// Whether the call may proceed.
    pub fn is_allowed(&self) -> bool {
        self.effect == Effect::Allow
    }

    /// `Ok(self)` if allowed, else [`AuthError::Forbidden`] (code `forbidden`).
    pub fn into_result(self) -> Result<Self, AuthError> {
        if self.is_allowed() {
            Ok(self)
        } else {
            Err(AuthError::Forbidden)
        }
    }
}

impl Reason {
    /// A stable snake_case name, for logs and the dead-letter reason.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AllowedByRule => "allowed_by_rule",
            Self::DeniedByRule => "denied_by_rule",
            Self::NoRuleMatched => "no_rule_matched",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidRoute => "invalid_route",
        }
    }
}

impl fmt::Display for Decision {
    /// E.g. `deny by rule #2 "no-writes" (denied_by_rule)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let effect = if self.is_allowed() { "allow" } else { "deny" };
        match &self.rule {
            Some(rule) => write!(
                f,
                "{effect} by rule #{} {:?} ({})",
                rule.index,
                &*rule.name,
                self.reason.as_str()
            ),
            None => write!(f, "{effect} ({})", self.reason.as_str()),
        }
    }
}
