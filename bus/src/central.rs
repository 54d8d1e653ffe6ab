//! Central mode: for each message on a `central` route the router asks the
//! central auth service's `introspect` over the bus who holds the credential.
//!
//! * [`CentralAuth`] sends the question straight to the service's queue,
//!   signed with the bus's assertion key as the consumer
//!   [`ROUTER_CONSUMER`](tollgate_auth::ROUTER_CONSUMER), and waits for the
//!   answer on the router's own reply queue, each attempt bounded by a
//!   timeout, retried with a doubling back-off; past the last attempt the
//!   message is refused `auth_unavailable` (never passed, never dropped).
//! * [`IntrospectionCache`] keeps positive answers briefly (at most 5 s),
//!   keyed by the credential's hash; the service's `sessions_ended`
//!   announcement on the control exchange (a logout, a disabled user) empties
//!   the entries at once on every router.

mod cache;
mod client;
mod outcome;

use std::time::Duration;

pub use cache::IntrospectionCache;
pub use client::CentralAuth;

use crate::rejection::Rejection;

/// The refusal of a central-mode message nobody asked the auth service about
/// (a router without a central client): `auth_unavailable`, never a pass.
pub(crate) fn unasked() -> Rejection {
    outcome::unavailable(0)
}

/// How a router asks the central auth service (from `[central_auth]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentralSettings {
    /// The auth service's name.
    pub service: String,
    /// Bound on one attempt.
    pub timeout: Duration,
    /// Attempts before `auth_unavailable`.
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each next one.
    pub retry_backoff: Duration,
    /// How long a positive answer is cached (zero: never).
    pub cache_ttl: Duration,
    /// Most cached answers.
    pub cache_max_entries: usize,
}
