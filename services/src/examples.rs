//! The example services: what a service on Tollgate looks like, and the
//! services `tollgate demo`, the example binaries and the tests run.
//!
//! * [`orders`] — JSON, schema version 2: `create` and `get`, with in-memory state.
//! * [`inventory`] — MessagePack, schema version 2: `reserve` and `get` on seeded stock.
//! * [`billing_legacy`] — JSON, schema version **1**: `charge`. Callers speaking
//!   version 2 are served through the router's mapping (see `tollgate.example.toml`).
//!
//! Each module has a `service(credential, bus_key)` that returns a configured
//! [`ServiceBuilder`](crate::ServiceBuilder) in gateway mode, and the pub serde
//! types of its requests and replies. The handlers trust only the verified
//! identity; which consumer may call what is the router's deny-by-default policy.

pub mod billing_legacy;
pub mod inventory;
pub mod orders;
