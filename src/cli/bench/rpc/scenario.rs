//! The scenarios of `bench rpc`: which gate, who verifies, which tokens.

use anyhow::bail;

use crate::cli::bench::{
    bench_bus::AuthMode,
    gate::GateKind,
    keys::{CALLER_EDDSA, CALLER_HS256, CALLER_RS256},
};

/// One way a call reaches the echo service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// The baseline: the relay process; the service verifies the caller's token.
    RawRelay,
    /// The router in gateway mode, the same token on every call (verifier
    /// cache hit); the service holds its own secret (HS256 assertions).
    GatewayCached,
    /// As `GatewayCached`, the router holding no call (`hold_calls = 0`):
    /// every request is delivered durably (README, "Delivery contract").
    GatewayDurable,
    /// As `GatewayCached`, the service holding only the bus's public key
    /// (Ed25519 assertions).
    GatewayEd25519,
    /// The router in gateway mode, a fresh token per call (cache miss), signed
    /// by the caller named here (HS256, RS256 or EdDSA).
    GatewayFresh(&'static str),
    /// The router in service mode; the service verifies the caller's token.
    ServiceMode,
    /// The echo routes in central mode: the caller logs in to the central
    /// auth service once and calls with its opaque session; the router asks
    /// the auth service about it, keeping the answer for 2 s (`cached`) or
    /// asking for every message.
    Central {
        /// Whether the router keeps positive answers (2 s) or asks every time.
        cached: bool,
    },
    /// HTTP → the router's HTTP entry (gateway mode, the same token on every
    /// call) → bus → service → HTTP: one keep-alive connection per call in flight.
    HttpGateway,
}

/// Every scenario, the baseline first.
pub(crate) const ALL: [Scenario; 11] = [
    Scenario::RawRelay,
    Scenario::GatewayCached,
    Scenario::GatewayDurable,
    Scenario::GatewayEd25519,
    Scenario::GatewayFresh(CALLER_HS256),
    Scenario::GatewayFresh(CALLER_RS256),
    Scenario::GatewayFresh(CALLER_EDDSA),
    Scenario::ServiceMode,
    Scenario::Central { cached: true },
    Scenario::Central { cached: false },
    Scenario::HttpGateway,
];

/// How long a central-mode router keeps a positive answer in the cached scenario.
const CENTRAL_CACHE_TTL_MS: u64 = 2_000;

/// The name of the baseline.
pub(crate) const BASELINE: &str = "raw_relay";

impl Scenario {
    /// The name in reports and in `--scenarios`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::RawRelay => BASELINE,
            Self::GatewayCached => "gateway_cached",
            Self::GatewayDurable => "gateway_cached_durable",
            Self::GatewayEd25519 => "gateway_cached_ed25519",
            Self::GatewayFresh(CALLER_RS256) => "gateway_fresh_rs256",
            Self::GatewayFresh(CALLER_EDDSA) => "gateway_fresh_eddsa",
            Self::GatewayFresh(_) => "gateway_fresh_hs256",
            Self::ServiceMode => "service_mode",
            Self::Central { cached: true } => "central_cached",
            Self::Central { cached: false } => "central_uncached",
            Self::HttpGateway => "http_gateway",
        }
    }

    /// The process between caller and service.
    pub(crate) fn gate(self) -> GateKind {
        match self {
            Self::RawRelay => GateKind::Relay,
            Self::GatewayCached
            | Self::GatewayDurable
            | Self::GatewayEd25519
            | Self::GatewayFresh(_) => GateKind::Router(AuthMode::Gateway),
            Self::ServiceMode => GateKind::Router(AuthMode::Service),
            Self::Central { cached } => GateKind::Router(AuthMode::Central {
                cache_ttl_ms: if cached { CENTRAL_CACHE_TTL_MS } else { 0 },
            }),
            Self::HttpGateway => GateKind::HttpRouter,
        }
    }

    /// Whether the gate holds calls as configured (else it holds none).
    pub(crate) fn holds_calls(self) -> bool {
        self != Self::GatewayDurable
    }

    /// Whether calls carry a session of the central auth service.
    pub(crate) fn is_central(self) -> bool {
        matches!(self, Self::Central { .. })
    }

    /// Whether the service verifies the caller's token itself (else it
    /// checks the bus's assertion).
    pub(crate) fn service_verifies(self) -> bool {
        matches!(self, Self::RawRelay | Self::ServiceMode)
    }

    /// Whether the service checks assertions with its own secret (HS256)
    /// rather than the bus's public key.
    pub(crate) fn service_holds_secret(self) -> bool {
        self != Self::GatewayEd25519
    }

    /// The caller whose fresh tokens this scenario spends, one per call;
    /// `None`: the same HS256 token on every call.
    pub(crate) fn fresh_tokens_of(self) -> Option<&'static str> {
        match self {
            Self::GatewayFresh(caller) => Some(caller),
            _ => None,
        }
    }
}

/// The scenarios named in `names` (all when empty), the baseline always
/// first, in the order of [`ALL`]. Errors on an unknown name.
pub(crate) fn select(names: &[String]) -> anyhow::Result<Vec<Scenario>> {
    let names: Vec<&str> = names
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .collect();
    if let Some(unknown) = names.iter().find(|n| !ALL.iter().any(|s| s.name() == **n)) {
        let known: Vec<&str> = ALL.iter().map(|s| s.name()).collect();
        bail!("unknown scenario `{unknown}` (known: {})", known.join(", "));
    }
    Ok(ALL
        .into_iter()
        .filter(|s| names.is_empty() || *s == Scenario::RawRelay || names.contains(&s.name()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_baseline_always_runs_first() {
        let picked = select(&names(&["service_mode", "gateway_fresh_rs256"])).unwrap();
        assert_eq!(
            picked,
            [
                Scenario::RawRelay,
                Scenario::GatewayFresh(CALLER_RS256),
                Scenario::ServiceMode
            ]
        );
        assert_eq!(select(&[]).unwrap(), ALL);
        assert_eq!(
            select(&names(&["raw_relay"])).unwrap(),
            [Scenario::RawRelay]
        );
    }

    #[test]
    fn unknown_scenarios_are_refused() {
        let error = select(&names(&["gateway_fresh_es256"])).unwrap_err();
        assert!(error.to_string().contains("gateway_fresh_es256"));
    }

    #[test]
    fn names_are_distinct() {
        let mut all: Vec<&str> = ALL.iter().map(|s| s.name()).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), ALL.len());
    }
}
