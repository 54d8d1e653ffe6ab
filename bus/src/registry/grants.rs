//! Which consumer may register which service.

use serde::{Deserialize, Serialize};

/// Grants consumer `consumer` the right to register the listed services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryGrant {
    /// Consumer name (as in the consumers file).
    pub consumer: String,
    /// Service names it may register; `*` for any.
    pub services: Vec<String>,
}

/// All grants; nothing is allowed that no grant names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryGrants(Vec<RegistryGrant>);

impl RegistryGrants {
    /// Grants from config.
    pub fn new(grants: Vec<RegistryGrant>) -> Self {
        Self(grants)
    }

    /// Whether `consumer` may register `service`.
    pub fn allows(&self, consumer: &str, service: &str) -> bool {
        self.0
            .iter()
            .filter(|g| g.consumer == consumer)
            .any(|g| g.services.iter().any(|s| s == "*" || s == service))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants() -> RegistryGrants {
        RegistryGrants::new(vec![
            RegistryGrant {
                consumer: "orders-svc".into(),
                services: vec!["orders".into()],
            },
            RegistryGrant {
                consumer: "ops".into(),
                services: vec!["*".into()],
            },
        ])
    }

    #[test]
    fn a_consumer_registers_only_its_granted_services() {
        let g = grants();
        assert!(g.allows("orders-svc", "orders"));
        assert!(!g.allows("orders-svc", "billing"));
        assert!(g.allows("ops", "billing"));
        assert!(!g.allows("stranger", "orders"));
    }
}
