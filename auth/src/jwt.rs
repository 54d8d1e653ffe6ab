//! JSON Web Tokens: parse, verify, issue; keys and key sets.

pub(crate) mod algorithm;
pub(crate) mod claims;
mod config;
pub(crate) mod issuer;
pub(crate) mod jwks;
pub(crate) mod keys;
pub(crate) mod token;
mod verifier;

pub use config::VerifierConfig;
pub use token::bearer_token;
pub use verifier::Verifier;
