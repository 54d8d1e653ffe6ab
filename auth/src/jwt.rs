//! JSON Web Tokens: parse, verify, issue; keys and key sets.

pub(crate) mod algorithm;
mod bearer;
pub(crate) mod claims;
mod config;
pub(crate) mod issuer;
pub(crate) mod jwks;
pub(crate) mod keys;
pub(crate) mod remote;
mod strict_json;
pub(crate) mod token;
mod verifier;

pub use bearer::bearer_token;
pub use config::{RegisteredClaim, VerifierConfig};
pub use verifier::{KeyMiss, Verifier};
