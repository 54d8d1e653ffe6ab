//! Decoding MessagePack and CBOR into the pivot, a `serde_json::Value`.
//!
//! The pivot is JSON's data model, so what JSON cannot hold is refused here
//! rather than silently changed (serde_json's own visitor turns NaN into
//! `null` and has no notion of binary).

use std::{cell::Cell, fmt};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::error::TranslateError;

/// Most elements reserved up front for an array, whatever its length prefix
/// claims: the prefix is untrusted.
const MAX_PREALLOC: usize = 256;

/// CBOR tags of an unsigned and a negative bignum (RFC 8949 §3.4.3).
const BIGNUM: u64 = 2;
const NEGATIVE_BIGNUM: u64 = 3;

/// Why the pivot visitor refused a value. The codec's error type can only
/// carry a message, so the typed reason travels beside it.
#[derive(Default)]
pub(super) struct Refusal(Cell<Option<TranslateError>>);

/// Builds a pivot value from a MessagePack deserializer (any self-describing
/// deserializer works), recording a typed reason in `refusal` when it refuses.
pub(super) fn from_msgpack<'de, D: Deserializer<'de>>(
    de: D,
    refusal: &Refusal,
) -> Result<Value, D::Error> {
    Pivot { refusal }.deserialize(de)
}

/// Converts a decoded CBOR value. Its depth is bounded by the decoder's
/// recursion limit, so the recursion here is too.
pub(super) fn from_cbor(value: ciborium::Value) -> Result<Value, TranslateError> {
    use ciborium::Value as Cbor;
    Ok(match value {
        Cbor::Integer(i) => integer(i128::from(i)).ok_or(TranslateError::UnrepresentableNumber)?,
        Cbor::Bytes(b) => bytes(&b),
        Cbor::Float(f) => float(f).ok_or(TranslateError::UnrepresentableNumber)?,
        Cbor::Text(s) => Value::String(s),
        Cbor::Bool(b) => Value::Bool(b),
        Cbor::Null => Value::Null,
        Cbor::Tag(tag @ (BIGNUM | NEGATIVE_BIGNUM), inner) if inner.is_bytes() => bignum(
            tag == NEGATIVE_BIGNUM,
            inner.as_bytes().map_or(&[][..], Vec::as_slice),
        )
        .ok_or(TranslateError::UnrepresentableNumber)?,
        Cbor::Tag(_, inner) => from_cbor(*inner)?,
        Cbor::Array(items) => {
            Value::Array(items.into_iter().map(from_cbor).collect::<Result<_, _>>()?)
        }
        Cbor::Map(entries) => {
            let mut map = Map::new();
            for (key, value) in entries {
                let Cbor::Text(key) = key else {
                    return Err(TranslateError::NonStringKey);
                };
                map.insert(key, from_cbor(value)?);
            }
            Value::Object(map)
        }
        _ => {
            return Err(TranslateError::Unsupported {
                what: "CBOR value of an unknown kind",
            });
        }
    })
}

#[derive(Clone, Copy)]
struct Pivot<'r> {
    refusal: &'r Refusal,
}

// === Refusal ===

impl Refusal {
    /// The recorded reason, if the pivot visitor refused something.
    pub(super) fn take(&self) -> Option<TranslateError> {
        self.0.take()
    }
}

// === Pivot ===

impl Pivot<'_> {
    fn refuse<E: de::Error>(self, reason: TranslateError) -> E {
        let err = E::custom(&reason);
        self.refusal.0.set(Some(reason));
        err
    }
}

impl<'de> DeserializeSeed<'de> for Pivot<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pivot<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value JSON can represent")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        integer(v).ok_or_else(|| self.refuse(TranslateError::UnrepresentableNumber))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        u64::try_from(v)
            .map(Value::from)
            .map_err(|_| self.refuse(TranslateError::UnrepresentableNumber))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        float(v).ok_or_else(|| self.refuse(TranslateError::UnrepresentableNumber))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(bytes(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        self.deserialize(de)
    }

    // rmp-serde hands MessagePack extension types over as a newtype struct.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, _de: D) -> Result<Value, D::Error> {
        Err(self.refuse(TranslateError::Unsupported {
            what: "MessagePack extension type",
        }))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_PREALLOC));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key_seed(self)? {
            let Value::String(key) = key else {
                return Err(self.refuse(TranslateError::NonStringKey));
            };
            let value = access.next_value_seed(self)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

// === Helpers ===

fn integer(v: i128) -> Option<Value> {
    i64::try_from(v)
        .map(Value::from)
        .or_else(|_| u64::try_from(v).map(Value::from))
        .ok()
}

/// A CBOR bignum's value, if it fits `i64` or `u64`.
fn bignum(negative: bool, be_bytes: &[u8]) -> Option<Value> {
    let significant = be_bytes
        .iter()
        .position(|&b| b != 0)
        .map_or(&[][..], |i| &be_bytes[i..]);
    if significant.len() > 8 {
        return None;
    }
    let n = significant
        .iter()
        .fold(0_u64, |n, &b| (n << 8) | u64::from(b));
    integer(if negative {
        -1 - i128::from(n)
    } else {
        i128::from(n)
    })
}

fn float(v: f64) -> Option<Value> {
    Number::from_f64(v).map(Value::Number)
}

fn bytes(v: &[u8]) -> Value {
    Value::Array(v.iter().map(|&b| Value::from(b)).collect())
}
