//! Who a caller is, once their credential has been verified.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The verified identity of a caller.
///
/// Built only by a successful verification (of a JWT, an opaque session or a
/// bus assertion); the router attaches it to the envelope and hands it to the
/// service as headers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct Identity {
    /// The consumer (API-gateway style account) the credential belongs to.
    pub consumer: String,
    /// The token's `sub` claim, when it has one.
    pub subject: Option<String>,
    /// Groups of the consumer.
    pub groups: Vec<String>,
    /// Scopes granted: the consumer's, narrowed or extended by the token's `scope` claim.
    pub scopes: Vec<String>,
    /// When the credential expires, in seconds since the Unix epoch.
    pub expires_at: Option<u64>,
    /// The token's `jti`, when it has one.
    pub token_id: Option<String>,
    /// Selected extra claims, as configured.
    pub claims: BTreeMap<String, serde_json::Value>,
}

impl Identity {
    /// An identity for `consumer` with nothing else set; fill the rest with the `with_*` methods.
    pub fn new(consumer: impl Into<String>) -> Self {
        Self {
            consumer: consumer.into(),
            ..Self::default()
        }
    }

    /// Sets the subject.
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the groups.
    pub fn with_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the scopes.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the identity holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether the identity is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}
