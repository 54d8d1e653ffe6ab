//! `tollgate-auth`: who is calling, and may they?
//!
//! Consumers and their keys, JWT verification and issuing, the verified-token
//! cache, revocation, the access policy and the bus assertion. This crate knows
//! nothing of AMQP: the router, every service and the central auth service use
//! it alike.

mod identity;

pub use identity::Identity;
