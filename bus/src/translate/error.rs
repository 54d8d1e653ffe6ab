//! Why a payload could not be translated, and why a mapping config was refused.

use crate::rejection::Rejection;

use super::codec::Codec;

/// A payload that cannot be decoded, mapped or encoded.
///
/// The [`Display`](std::fmt::Display) text never quotes the payload: it is safe
/// to send back to the caller. The codec's own message (which may quote the
/// payload) stays in [`std::error::Error::source`], for the log only.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranslateError {
    /// The bytes are not a valid document of the codec.
    #[error("payload is not valid {codec}")]
    Decode {
        /// The codec that failed.
        codec: Codec,
        /// The codec's own error (may quote the payload: log it, never reply with it).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A complete value was followed by more bytes.
    #[error("{codec} payload has trailing bytes after the value")]
    TrailingBytes {
        /// The codec that found them.
        codec: Codec,
    },
    /// Arrays, maps and tags are nested too deep (see [`MAX_DEPTH`](super::MAX_DEPTH)).
    #[error("payload is nested {max} or more levels deep")]
    TooDeep {
        /// The depth at which decoding stops.
        max: usize,
    },
    /// A map key is not a string (the pivot is JSON, whose keys are strings).
    #[error("payload has a map key that is not a string")]
    NonStringKey,
    /// An integer beyond the 64-bit range, or a NaN or infinite float.
    #[error("payload has a number beyond 64-bit integers or a NaN or infinite float")]
    UnrepresentableNumber,
    /// A value that has no JSON counterpart (a MessagePack extension type).
    #[error("payload has a {what}, which cannot be translated")]
    Unsupported {
        /// What was found.
        what: &'static str,
    },
    /// The value cannot be written in the codec.
    #[error("payload cannot be encoded as {codec}")]
    Encode {
        /// The codec that failed.
        codec: Codec,
        /// The codec's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Caller and service speak different schema versions and no mapping joins them.
    #[error("no mapping from schema version {from} to {to} for service {service}")]
    NoMapping {
        /// The service.
        service: String,
        /// The version the payload is in.
        from: String,
        /// The version the payload must be turned into.
        to: String,
    },
    /// An op of a mapping met a document of another shape.
    #[error("{op} of the mapping for service {service} cannot write {pointer}: {problem}")]
    Apply {
        /// The service.
        service: String,
        /// Which op, e.g. `request op #2 (move)`.
        op: String,
        /// The pointer that could not be written (from the config, not the payload).
        pointer: String,
        /// What was in the way.
        problem: &'static str,
    },
}

/// A refused mapping config. [`Translator::new`](super::Translator::new)
/// reports every problem at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MappingError {
    /// A pointer is not a valid RFC 6901 JSON pointer.
    #[error("{at}: `{field}` = {pointer:?} is not a JSON pointer: {problem}")]
    BadPointer {
        /// The mapping and op, e.g. `mapping #0 (service billing, 2 -> 1), request op #1 (move)`.
        at: String,
        /// The op's field (`from`, `to` or `path`).
        field: &'static str,
        /// The pointer as configured.
        pointer: String,
        /// Why it does not parse.
        problem: &'static str,
    },
    /// The empty pointer (the whole document) was used where a field is needed.
    #[error("{at}: `{field}` is the empty pointer (the whole document); name a field")]
    WholeDocument {
        /// The mapping and op.
        at: String,
        /// The op's field.
        field: &'static str,
    },
    /// A rename whose source and target have different parents.
    #[error("{at}: rename {from:?} -> {to:?} changes the parent; use move")]
    RenameAcrossParents {
        /// The mapping and op.
        at: String,
        /// The source pointer.
        from: String,
        /// The target pointer.
        to: String,
    },
    /// A mapping with an empty service name or schema version.
    #[error("{at}: `{field}` is empty")]
    Empty {
        /// The mapping.
        at: String,
        /// The empty field.
        field: &'static str,
    },
    /// A mapping whose source and target schema versions are the same.
    #[error("{at}: `from` and `to` are both schema version {version:?}")]
    SameVersion {
        /// The mapping.
        at: String,
        /// The version.
        version: String,
    },
    /// Two mappings for the same service and version pair.
    #[error("{at}: duplicates {first} (same service, from and to)")]
    Duplicate {
        /// The later mapping.
        at: String,
        /// The earlier mapping.
        first: String,
    },
}

// === TranslateError ===

impl TranslateError {
    /// The stable snake_case code, for logs and metrics.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Decode { .. } => "decode_failed",
            Self::TrailingBytes { .. } => "trailing_bytes",
            Self::TooDeep { .. } => "too_deep",
            Self::NonStringKey => "non_string_key",
            Self::UnrepresentableNumber => "unrepresentable_number",
            Self::Unsupported { .. } => "unsupported_value",
            Self::Encode { .. } => "encode_failed",
            Self::NoMapping { .. } => "no_mapping",
            Self::Apply { .. } => "mapping_failed",
        }
    }
}

impl From<TranslateError> for Rejection {
    /// `bad_payload` at stage `translate`; the reason is the error's
    /// [`Display`](std::fmt::Display) text, which never quotes the payload.
    fn from(err: TranslateError) -> Self {
        Rejection::bad_payload(err.to_string())
    }
}

// === MappingError ===

impl MappingError {
    /// The stable snake_case code.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::BadPointer { .. } => "bad_pointer",
            Self::WholeDocument { .. } => "whole_document",
            Self::RenameAcrossParents { .. } => "rename_across_parents",
            Self::Empty { .. } => "empty_field",
            Self::SameVersion { .. } => "same_version",
            Self::Duplicate { .. } => "duplicate_mapping",
        }
    }
}
