//! Which authentication mode applies to which route.

use serde::{Deserialize, Serialize};
use tollgate_auth::RoutePattern;

/// Where a route's callers are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthMode {
    /// The router verifies the credential and applies the access policy; the
    /// service gets the identity and a bus-signed assertion.
    #[default]
    Gateway,
    /// The router passes the credential through untouched; the service verifies
    /// it with `tollgate-auth` (the SDK does this when given a verifier).
    Service,
    /// The router asks the central auth service (`[central_auth] service`)
    /// who the credential's holder is, over the bus, for every message (with
    /// a short cache); the policy then decides as in gateway mode.
    Central,
}

/// `[[routes]]` in the config: an auth mode for routes matching `pattern`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteAuth {
    /// Route pattern (`orders.*`, `billing.#`).
    pub pattern: String,
    /// Mode for matching routes.
    pub auth: AuthMode,
}

/// Per-route modes; the first matching pattern decides, else the default.
#[derive(Debug, Clone, Default)]
pub struct AuthModes {
    default: AuthMode,
    routes: Vec<(RoutePattern, AuthMode)>,
}

impl AuthMode {
    /// `gateway`, `service` or `central`, as in the config and the
    /// `x-tollgate-auth-mode` header.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Service => "service",
            Self::Central => "central",
        }
    }
}

impl AuthModes {
    /// Builds from config; errors name the bad pattern.
    pub fn new(default: AuthMode, routes: &[RouteAuth]) -> Result<Self, String> {
        let routes = routes
            .iter()
            .map(|r| {
                r.pattern
                    .parse::<RoutePattern>()
                    .map(|p| (p, r.auth))
                    .map_err(|e| format!("route pattern `{}`: {e}", r.pattern))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { default, routes })
    }

    /// Whether any route (or the default) is in `mode`.
    pub fn uses(&self, mode: AuthMode) -> bool {
        self.default == mode || self.routes.iter().any(|(_, m)| *m == mode)
    }

    /// The mode of `route` (a `service.method` string, possibly invalid).
    pub fn mode_for(&self, route: &str) -> AuthMode {
        self.routes
            .iter()
            .find(|(p, _)| p.matches(route))
            .map_or(self.default, |(_, m)| *m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_pattern_decides() {
        let modes = AuthModes::new(
            AuthMode::Gateway,
            &[
                RouteAuth {
                    pattern: "legacy.*".into(),
                    auth: AuthMode::Service,
                },
                RouteAuth {
                    pattern: "#".into(),
                    auth: AuthMode::Gateway,
                },
            ],
        )
        .unwrap();
        assert_eq!(modes.mode_for("legacy.get"), AuthMode::Service);
        assert_eq!(modes.mode_for("orders.get"), AuthMode::Gateway);
    }
}
