//! Trust state that changes while the bus runs: revocations and consumer
//! changes ([`TrustChange`]), kept as the set of changes in force
//! ([`TrustState`]), each until the tokens it names can no longer be valid.
//!
//! The state is pure data: the bus stores it (Redis), broadcasts each change
//! and applies the whole state to a [`Revocations`](crate::Revocations) and a
//! [`ConsumerStore`](crate::ConsumerStore) on top of the configured consumers.

mod change;
mod state;

pub use change::{InvalidChange, TrustChange};
pub use state::{TrustEntry, TrustState};
