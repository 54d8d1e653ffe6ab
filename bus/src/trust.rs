//! Trust state at runtime: revocations and consumer changes taken through
//! the router's own routes (`tollgate.trust.*`, allowed by the policy),
//! stored in Redis, broadcast signed on the control exchange and applied by
//! every router within a second; a router that starts later loads them.

mod broadcast;
mod follow;
mod live;
mod service;
mod store;
mod sync;

pub use broadcast::{
    BROADCAST_KEY_PURPOSE, BroadcastError, BroadcastKey, MAX_BROADCAST_AGE_SECS, SignedChange,
};
pub use follow::follow;
pub use live::{Install, LiveTrust};
pub use service::{
    CONSUMERS_METHOD, LIST_METHOD, REVOKE_METHOD, TRUST_SERVICE, TrustBackend, TrustListing,
    TrustService, is_router_route,
};
pub use store::{TrustStore, TrustStoreError};
pub use sync::{first_load, keep_in_sync, load_when_ready};

use std::{sync::Arc, time::Duration};

use tollgate_auth::{Consumer, Revocations};

/// What a router needs to run trust state (`[trust]` plus the verifiers'
/// shared state), built from the config.
#[derive(Clone)]
pub struct TrustSettings {
    /// Redis URL; `None`: no trust store.
    pub redis_url: Option<String>,
    /// Prefix of every key, namespace included.
    pub key_prefix: String,
    /// Longest token lifetime (s).
    pub max_lifetime: u64,
    /// Clock skew allowed (s).
    pub leeway: u64,
    /// How often the state is re-read.
    pub resync: Duration,
    /// The config's consumers, which the changes apply on top of.
    pub baseline: Vec<Consumer>,
    /// The revocations every verifier of the router honours.
    pub revocations: Arc<Revocations>,
    /// Signs and opens broadcasts.
    pub key: BroadcastKey,
}

impl std::fmt::Debug for TrustSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustSettings")
            .field("key_prefix", &self.key_prefix)
            .field("configured", &self.redis_url.is_some())
            .finish_non_exhaustive()
    }
}
