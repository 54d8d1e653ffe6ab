//! The wire codecs: JSON, MessagePack and CBOR.
//!
//! Decoding untrusted bytes never panics, never recurses without bound and
//! allocates only in proportion to the input: every codec stops at
//! [`MAX_DEPTH`] levels of nesting, and a value followed by more bytes is
//! refused.

use std::fmt;

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::{error::TranslateError, pivot};

/// Nesting of arrays and maps (and CBOR tags) at which every codec stops:
/// a document `MAX_DEPTH` levels deep or deeper is refused. This is
/// serde_json's own fixed limit, applied to the binary codecs too.
pub const MAX_DEPTH: usize = 128;

// ciborium counts the levels it may still enter; serde_json and rmp-serde
// refuse the level that reaches their limit.
const CBOR_RECURSION_LIMIT: usize = MAX_DEPTH - 1;

/// A wire format of payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// JSON (RFC 8259).
    Json,
    /// MessagePack; structs are written as maps with field names.
    MessagePack,
    /// CBOR (RFC 8949).
    Cbor,
}

// `&mut &[u8]` reads advance the slice, so what is left afterwards is the
// trailing garbage. rmp-serde's `ReadReader` grows its buffer with the bytes
// actually read, so a length prefix claiming 4 GiB allocates nothing.
type MsgpackDeserializer<'a, 'b> =
    rmp_serde::Deserializer<rmp_serde::decode::ReadReader<&'a mut &'b [u8]>>;

// === Codec ===

impl Codec {
    /// The codec of a MIME type, ignoring parameters and case:
    /// `application/json` and any `…/…+json`, `application/msgpack`,
    /// `application/x-msgpack`, `application/vnd.msgpack`, `application/cbor`.
    /// `None` for anything else.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let essence = ct.split(';').next().unwrap_or_default().trim();
        let is = |name: &str| essence.eq_ignore_ascii_case(name);
        if is("application/json") || is_json_suffix(essence) {
            Some(Self::Json)
        } else if is("application/msgpack")
            || is("application/x-msgpack")
            || is("application/vnd.msgpack")
        {
            Some(Self::MessagePack)
        } else if is("application/cbor") {
            Some(Self::Cbor)
        } else {
            None
        }
    }

    /// The canonical MIME type: `application/json`, `application/msgpack` or
    /// `application/cbor`.
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::MessagePack => "application/msgpack",
            Self::Cbor => "application/cbor",
        }
    }

    /// A human name: `JSON`, `MessagePack` or `CBOR`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Json => "JSON",
            Self::MessagePack => "MessagePack",
            Self::Cbor => "CBOR",
        }
    }

    /// Encodes `value`. MessagePack writes structs as maps with field names.
    ///
    /// Errors with [`TranslateError::Encode`] when the codec cannot represent
    /// the value (for JSON: a map with non-string keys).
    pub fn to_vec<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>, TranslateError> {
        let encode = |source: Box<dyn std::error::Error + Send + Sync>| TranslateError::Encode {
            codec: self,
            source,
        };
        match self {
            Self::Json => serde_json::to_vec(value).map_err(|e| encode(e.into())),
            Self::MessagePack => rmp_serde::to_vec_named(value).map_err(|e| encode(e.into())),
            Self::Cbor => {
                let mut out = Vec::new();
                ciborium::into_writer(value, &mut out).map_err(|e| encode(e.into()))?;
                Ok(out)
            }
        }
    }

    /// Decodes one value that spans all of `bytes`.
    ///
    /// Errors with [`TranslateError::TooDeep`] past [`MAX_DEPTH`] levels,
    /// [`TranslateError::TrailingBytes`] when bytes follow the value, and
    /// [`TranslateError::Decode`] for anything else the codec refuses.
    pub fn from_slice<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, TranslateError> {
        match self {
            Self::Json => serde_json::from_slice(bytes).map_err(json_error),
            Self::MessagePack => decode_msgpack(bytes, |de| T::deserialize(de)),
            Self::Cbor => {
                let mut rest = bytes;
                let value =
                    ciborium::de::from_reader_with_recursion_limit(&mut rest, CBOR_RECURSION_LIMIT)
                        .map_err(cbor_error)?;
                ensure_consumed(self, rest)?;
                Ok(value)
            }
        }
    }

    /// Decodes `bytes` into the translation pivot, a JSON document.
    ///
    /// On top of [`Codec::from_slice`]'s refusals: MessagePack and CBOR binary
    /// becomes an array of byte values; CBOR tags are dropped (their content
    /// kept); a non-string map key is [`TranslateError::NonStringKey`]; an
    /// integer beyond `i64`/`u64` or a NaN or infinite float is
    /// [`TranslateError::UnrepresentableNumber`]; a MessagePack extension type
    /// is [`TranslateError::Unsupported`].
    pub fn decode(self, bytes: &[u8]) -> Result<Value, TranslateError> {
        match self {
            Self::Json => self.from_slice(bytes),
            Self::MessagePack => {
                let refusal = pivot::Refusal::default();
                decode_msgpack(bytes, |de| pivot::from_msgpack(de, &refusal))
                    .map_err(|e| refusal.take().unwrap_or(e))
            }
            Self::Cbor => pivot::from_cbor(self.from_slice(bytes)?),
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// === Helpers ===

/// `type/subtype+json`, compared without allocating.
fn is_json_suffix(essence: &str) -> bool {
    let bytes = essence.as_bytes();
    let suffix = b"+json";
    bytes.len() > suffix.len()
        && bytes[bytes.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        && essence.contains('/')
}

fn decode_msgpack<T>(
    bytes: &[u8],
    decode: impl FnOnce(&mut MsgpackDeserializer<'_, '_>) -> Result<T, rmp_serde::decode::Error>,
) -> Result<T, TranslateError> {
    let mut rest = bytes;
    let mut de = rmp_serde::Deserializer::new(&mut rest);
    de.set_max_depth(MAX_DEPTH);
    let value = decode(&mut de).map_err(|e| match e {
        rmp_serde::decode::Error::DepthLimitExceeded => TranslateError::TooDeep { max: MAX_DEPTH },
        e => TranslateError::Decode {
            codec: Codec::MessagePack,
            source: e.into(),
        },
    })?;
    drop(de);
    ensure_consumed(Codec::MessagePack, rest)?;
    Ok(value)
}

fn ensure_consumed(codec: Codec, rest: &[u8]) -> Result<(), TranslateError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(TranslateError::TrailingBytes { codec })
    }
}

fn json_error(e: serde_json::Error) -> TranslateError {
    // serde_json has no error kind for its recursion limit; its message is the
    // only tell. Only the error path pays for the string.
    if e.to_string().starts_with("recursion limit exceeded") {
        return TranslateError::TooDeep { max: MAX_DEPTH };
    }
    if e.is_syntax() && e.to_string().starts_with("trailing characters") {
        return TranslateError::TrailingBytes { codec: Codec::Json };
    }
    TranslateError::Decode {
        codec: Codec::Json,
        source: e.into(),
    }
}

fn cbor_error(e: ciborium::de::Error<std::io::Error>) -> TranslateError {
    match e {
        ciborium::de::Error::RecursionLimitExceeded => TranslateError::TooDeep { max: MAX_DEPTH },
        e => TranslateError::Decode {
            codec: Codec::Cbor,
            source: e.into(),
        },
    }
}

#[cfg(test)]
mod tests;
