//! Translation between what a caller speaks and what a service speaks: the
//! codec (JSON, MessagePack, CBOR) and the schema version.
//!
//! Pure and synchronous. [`Translator::request`] takes a payload from the
//! caller's [`Format`] to the service's, [`Translator::reply`] takes the reply
//! back, each through the declarative [`MappingSpec`] configured for the
//! service and version pair.
//!
//! Every payload that is translated goes through a pivot, a JSON document
//! ([`serde_json::Value`]), so a translation can only carry what JSON can:
//!
//! - MessagePack and CBOR binary becomes an array of byte values (0–255);
//! - a map key that is not a string is refused;
//! - an integer beyond `i64`/`u64`, or a NaN or infinite float, is refused;
//! - CBOR tags are dropped and their content kept; MessagePack extension
//!   types are refused;
//! - a document nested [`MAX_DEPTH`] or more levels deep is refused.
//!
//! Every refusal is a [`TranslateError`], which becomes a `bad_payload`
//! [`Rejection`](crate::Rejection) at stage `translate`.

mod codec;
mod error;
mod mapping;
mod pivot;
mod pointer;
mod translator;

pub use codec::{Codec, MAX_DEPTH};
pub use error::{MappingError, TranslateError};
pub use mapping::{MappingSpec, OpSpec};
pub use translator::{Format, Translator};
