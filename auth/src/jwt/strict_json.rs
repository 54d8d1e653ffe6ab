//! Decoding a token segment's JSON so that a key repeated in any object is an
//! error, not "the last one wins".
//!
//! RFC 7515 §5.2 and RFC 7519 §7.2 let a parser either reject duplicate member
//! names or keep the last; two parsers that pick differently read two tokens
//! from one signature (a proxy checks the first `exp`, we honour the second).
//! We reject. The check costs nothing extra: the value is built by our own
//! serde visitor, and `Map::insert` already says when a key was there before.

use std::{cell::Cell, fmt};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a segment is not a strict JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrictJsonError {
    /// Not UTF-8 JSON, or not an object at the top.
    NotAnObject,
    /// A member name appears twice in one object (at any depth).
    DuplicateKey,
}

/// Parses `bytes` as one JSON object, refusing a repeated key in any object.
pub(crate) fn object_from_slice(bytes: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    let duplicate = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = Strict(&duplicate)
        .deserialize(&mut de)
        .and_then(|value| de.end().map(|()| value));
    match parsed {
        Ok(Value::Object(map)) => Ok(map),
        _ if duplicate.get() => Err(StrictJsonError::DuplicateKey),
        _ => Err(StrictJsonError::NotAnObject),
    }
}

/// A seed that builds a [`Value`] like serde_json's own, but errors on a
/// repeated key (and records that this was the reason in the flag).
#[derive(Clone, Copy)]
struct Strict<'f>(&'f Cell<bool>);

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value without repeated keys")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            if object.insert(key, value).is_some() {
                self.0.set(true);
                return Err(de::Error::custom("duplicate key"));
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Map<String, Value>, StrictJsonError> {
        object_from_slice(json.as_bytes())
    }

    #[test]
    fn reads_the_same_object_serde_json_reads() {
        let json = r#"{"a":1,"b":-2,"c":1.5,"d":"x\"y","e":[true,null,{"f":[]}],"g":{}}"#;
        let expected: Value = serde_json::from_str(json).expect("valid");
        assert_eq!(parse(json).map(Value::Object), Ok(expected));
    }

    #[test]
    fn refuses_a_repeated_key_at_the_top() {
        assert_eq!(
            parse(r#"{"exp":1,"exp":2}"#),
            Err(StrictJsonError::DuplicateKey)
        );
    }

    #[test]
    fn refuses_a_repeated_key_in_a_nested_object_or_an_array() {
        assert_eq!(
            parse(r#"{"a":{"b":1,"b":1}}"#),
            Err(StrictJsonError::DuplicateKey)
        );
        assert_eq!(
            parse(r#"{"a":[{"b":1},{"c":1,"c":2}]}"#),
            Err(StrictJsonError::DuplicateKey)
        );
    }

    #[test]
    fn an_escaped_spelling_of_the_same_key_is_the_same_key() {
        assert_eq!(
            parse(r#"{"exp":1,"\u0065xp":2}"#),
            Err(StrictJsonError::DuplicateKey)
        );
    }

    #[test]
    fn the_same_key_in_two_objects_is_fine() {
        assert!(parse(r#"{"a":{"k":1},"b":{"k":2},"k":3}"#).is_ok());
    }

    #[test]
    fn refuses_what_is_not_one_object() {
        for json in ["[1]", "1", "\"s\"", "{} {}", "{", "", "{\"a\":1,}"] {
            assert_eq!(parse(json), Err(StrictJsonError::NotAnObject), "{json}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let strict = object_from_slice(&bytes);
            let lenient = serde_json::from_slice::<Map<String, Value>>(&bytes);
            // Whatever strict reads, serde_json reads the same.
            if let Ok(map) = strict {
                proptest::prop_assert_eq!(Some(map), lenient.ok());
            }
        }

        #[test]
        fn objects_without_repeated_keys_read_as_serde_json_reads_them(
            object in proptest::collection::btree_map(".{0,8}", proptest::num::i64::ANY, 0..12),
        ) {
            let map: Map<String, Value> = object.into_iter().map(|(k, v)| (k, v.into())).collect();
            let text = serde_json::to_vec(&map).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            proptest::prop_assert_eq!(object_from_slice(&text), Ok(map));
        }
    }
}
