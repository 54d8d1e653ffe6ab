//! `tollgate-auth`: who is calling, and may they?
//!
//! Consumers and their keys, JWT verification and issuing, the verified-token
//! cache, revocation, the access policy and the bus assertion; for the central
//! auth service, users with argon2id passwords and opaque sessions. This crate knows
//! nothing of AMQP: the router, every service and the central auth service use
//! it alike.

mod assertion;
mod cache;
mod clock;
mod consumer;
mod credential;
mod error;
mod identity;
mod introspection;
mod jwt;
mod password;
mod policy;
mod revocation;
mod session;
mod store;
#[cfg(feature = "test-support")]
pub mod testkit;
mod trust;
mod users;

pub use assertion::{
    ASSERTION_TYP, AssertedIdentity, AssertionAlg, AssertionCheck, AssertionSigner,
    AssertionVerifier, DEFAULT_ASSERTION_LEEWAY, DEFAULT_ISSUER, MAX_ASSERTION_LEEWAY,
    ServiceSecret, generate_assertion_key,
};
pub use cache::{CacheStats, TokenCache};
pub use clock::{Clock, SystemClock};
pub use consumer::{Consumer, ConsumerSpec};
pub use credential::{Credential, CredentialSpec};
pub use error::{AuthError, IssueError, LoadError, PasswordError};
pub use identity::Identity;
pub use introspection::{
    INTROSPECT_METHOD, Inactive, IntrospectAnswer, IntrospectRequest, ROUTER_CONSUMER,
};
pub use jwt::algorithm::{Algorithm, UnsupportedAlgorithm};
pub use jwt::issuer::Issuer;
pub use jwt::jwks::credentials_from_jwks;
pub use jwt::remote::{DEFAULT_JWKS_MIN_REFETCH_SECS, DEFAULT_JWKS_REFRESH_SECS, JwksSource};
pub use jwt::{KeyMiss, RegisteredClaim, Verifier, VerifierConfig, bearer_token};
pub use password::{
    MAX_PASSWORD_BYTES, MIN_MEMORY_KIB, MIN_PASSES, check_hash, decoy_hash, hash_password,
    verify_password,
};
pub use policy::{
    Decision, Effect, InvalidPattern, Policy, PolicySpec, Reason, RoutePattern, Rule, RuleRef,
    RuleSpec,
};
pub use revocation::Revocations;
pub use session::{
    CredentialHash, SESSION_TOKEN_PREFIX, Session, SessionEnd, SessionLimits, SessionToken,
};
pub use store::{ConsumerStore, ConsumersFile, load_consumers};
pub use trust::{InvalidChange, TrustChange, TrustEntry, TrustState};
pub use users::{User, UsersFile};
