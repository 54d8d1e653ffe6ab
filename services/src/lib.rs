//! `tollgate-services`: the SDK for writing services and callers on the Tollgate bus.
//!
//! The service builder, typed handlers and the caller arrive with the SDK issue;
//! the crate exists now so the workspace has its final shape.

pub use tollgate_bus as bus;
