//! Typed message headers that hold exactly what an AMQP 0-9-1 field table holds.

use std::collections::BTreeMap;

use bytes::Bytes;

/// Longest header name AMQP can carry (a short string).
pub const MAX_NAME_BYTES: usize = 255;
/// Deepest nesting of tables and arrays accepted on the wire.
pub const MAX_DEPTH: usize = 32;
/// Largest encoded header table accepted on the wire.
///
/// RabbitMQ's default `frame_max` is 128 KiB and the whole content header
/// (all properties) must fit one frame; 120 KiB leaves room for the rest.
pub const MAX_ENCODED_BYTES: usize = 120 * 1024;

/// One header value: every type of the AMQP 0-9-1 field table (RabbitMQ's dialect).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum HeaderValue {
    /// `t`: boolean.
    Bool(bool),
    /// `b`: signed 8-bit integer.
    I8(i8),
    /// `B`: unsigned 8-bit integer.
    U8(u8),
    /// `s`: signed 16-bit integer.
    I16(i16),
    /// `u`: unsigned 16-bit integer.
    U16(u16),
    /// `I`: signed 32-bit integer.
    I32(i32),
    /// `i`: unsigned 32-bit integer.
    U32(u32),
    /// `l`: signed 64-bit integer.
    I64(i64),
    /// `f`: 32-bit float.
    F32(f32),
    /// `d`: 64-bit float.
    F64(f64),
    /// `D`: decimal, `value / 10^scale`.
    Decimal {
        /// Number of decimal digits.
        scale: u8,
        /// Unscaled value.
        value: u32,
    },
    /// `S`: a UTF-8 long string.
    String(String),
    /// `x`: raw bytes (also what a non-UTF-8 long string arrives as).
    Bytes(Bytes),
    /// `T`: seconds since the Unix epoch.
    Timestamp(u64),
    /// `A`: an array of values.
    Array(Vec<HeaderValue>),
    /// `F`: a nested table.
    Table(Headers),
    /// `V`: no value.
    Void,
}

/// A header table: names to values, ordered by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Headers(BTreeMap<String, HeaderValue>);

/// A header table AMQP cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// A name is longer than an AMQP short string allows.
    #[error("header name of {len} bytes exceeds the AMQP limit of {MAX_NAME_BYTES}")]
    NameTooLong {
        /// Length of the offending name in bytes.
        len: usize,
    },
    /// Tables or arrays are nested deeper than [`MAX_DEPTH`].
    #[error("header `{name}` nests deeper than {MAX_DEPTH} levels")]
    TooDeep {
        /// Top-level header under which the nesting occurs.
        name: String,
    },
    /// A message property (id, correlation id, reply-to, content type) is
    /// longer than an AMQP short string allows.
    #[error("message property of {len} bytes exceeds the AMQP limit of {MAX_NAME_BYTES}")]
    PropertyTooLong {
        /// Length of the offending property in bytes.
        len: usize,
    },
    /// The encoded table is larger than [`MAX_ENCODED_BYTES`].
    #[error(
        "headers encode to {size} bytes, more than the {MAX_ENCODED_BYTES} an AMQP frame carries"
    )]
    TooLarge {
        /// Encoded size in bytes.
        size: usize,
    },
}

// === Headers ===

impl Headers {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`, returning the previous value.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        value: impl Into<HeaderValue>,
    ) -> Option<HeaderValue> {
        self.0.insert(name.into(), value.into())
    }

    /// Builder form of [`Headers::insert`].
    pub fn with(mut self, name: impl Into<String>, value: impl Into<HeaderValue>) -> Self {
        self.insert(name, value);
        self
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&HeaderValue> {
        self.0.get(name)
    }

    /// The value of `name` when it is a string.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(HeaderValue::as_str)
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<HeaderValue> {
        self.0.remove(name)
    }

    /// Keeps only the entries for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &HeaderValue) -> bool) {
        self.0.retain(|k, v| keep(k, v));
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates over entries in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &HeaderValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The size of this table in AMQP's wire encoding (without its 4-byte length prefix).
    pub fn encoded_len(&self) -> usize {
        self.0
            .iter()
            .map(|(k, v)| 1 + k.len() + v.encoded_len())
            .sum()
    }

    /// Checks that AMQP can carry this table: name lengths, nesting depth, encoded size.
    ///
    /// Both transports call this before publishing, so a bad table is a typed
    /// error on either, never a dropped connection.
    pub fn check_wire(&self) -> Result<(), HeaderError> {
        for (name, value) in &self.0 {
            check_name(name)?;
            check_value(name, value, 1)?;
        }
        let size = self.encoded_len();
        if size > MAX_ENCODED_BYTES {
            return Err(HeaderError::TooLarge { size });
        }
        Ok(())
    }
}

fn check_name(name: &str) -> Result<(), HeaderError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(HeaderError::NameTooLong { len: name.len() });
    }
    Ok(())
}

fn check_value(top: &str, value: &HeaderValue, depth: usize) -> Result<(), HeaderError> {
    let nested = |depth: usize| {
        if depth > MAX_DEPTH {
            Err(HeaderError::TooDeep {
                name: top.to_owned(),
            })
        } else {
            Ok(())
        }
    };
    match value {
        HeaderValue::Array(items) => {
            nested(depth + 1)?;
            items
                .iter()
                .try_for_each(|v| check_value(top, v, depth + 1))
        }
        HeaderValue::Table(table) => {
            nested(depth + 1)?;
            table.0.iter().try_for_each(|(k, v)| {
                check_name(k)?;
                check_value(top, v, depth + 1)
            })
        }
        _ => Ok(()),
    }
}

impl FromIterator<(String, HeaderValue)> for Headers {
    fn from_iter<I: IntoIterator<Item = (String, HeaderValue)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl IntoIterator for Headers {
    type Item = (String, HeaderValue);
    type IntoIter = std::collections::btree_map::IntoIter<String, HeaderValue>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

// === HeaderValue ===

impl HeaderValue {
    /// The string, when this is a [`HeaderValue::String`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a signed integer, when it is any integer type that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Self::I8(v) => Some(v.into()),
            Self::U8(v) => Some(v.into()),
            Self::I16(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::I32(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::I64(v) => Some(v),
            _ => None,
        }
    }

    /// The nested table, when this is a [`HeaderValue::Table`].
    pub fn as_table(&self) -> Option<&Headers> {
        match self {
            Self::Table(t) => Some(t),
            _ => None,
        }
    }

    /// The items, when this is a [`HeaderValue::Array`].
    pub fn as_array(&self) -> Option<&[HeaderValue]> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Size in AMQP's wire encoding, including the one-byte type tag.
    pub fn encoded_len(&self) -> usize {
        1 + match self {
            Self::Bool(_) | Self::I8(_) | Self::U8(_) => 1,
            Self::I16(_) | Self::U16(_) => 2,
            Self::I32(_) | Self::U32(_) | Self::F32(_) => 4,
            Self::I64(_) | Self::F64(_) | Self::Timestamp(_) => 8,
            Self::Decimal { .. } => 5,
            Self::String(s) => 4 + s.len(),
            Self::Bytes(b) => 4 + b.len(),
            Self::Array(items) => 4 + items.iter().map(Self::encoded_len).sum::<usize>(),
            Self::Table(t) => 4 + t.encoded_len(),
            Self::Void => 0,
        }
    }
}

macro_rules! header_value_from {
    ($($ty:ty => $variant:ident),* $(,)?) => {
        $(impl From<$ty> for HeaderValue {
            fn from(v: $ty) -> Self {
                Self::$variant(v.into())
            }
        })*
    };
}

header_value_from! {
    bool => Bool, i8 => I8, u8 => U8, i16 => I16, u16 => U16, i32 => I32, u32 => U32,
    i64 => I64, f32 => F32, f64 => F64, String => String, &str => String, Bytes => Bytes,
    Vec<HeaderValue> => Array, Headers => Table,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> HeaderValue {
        (0..depth).fold(HeaderValue::Void, |v, _| HeaderValue::Array(vec![v]))
    }

    #[test]
    fn accepts_every_value_type() {
        let inner = Headers::new().with(
            "k",
            HeaderValue::Decimal {
                scale: 2,
                value: 1234,
            },
        );
        let h = Headers::new()
            .with("bool", true)
            .with("bytes", Bytes::from_static(&[0, 159, 146, 150]))
            .with("table", inner)
            .with(
                "array",
                vec![HeaderValue::from(1i8), HeaderValue::Timestamp(7)],
            );
        assert_eq!(h.check_wire(), Ok(()));
    }

    #[test]
    fn refuses_a_name_longer_than_a_short_string() {
        let h = Headers::new().with("n".repeat(256), 1i32);
        assert_eq!(h.check_wire(), Err(HeaderError::NameTooLong { len: 256 }));
    }

    #[test]
    fn refuses_a_nested_name_longer_than_a_short_string() {
        let h = Headers::new().with("t", Headers::new().with("n".repeat(300), 1i32));
        assert_eq!(h.check_wire(), Err(HeaderError::NameTooLong { len: 300 }));
    }

    #[test]
    fn refuses_nesting_beyond_the_depth_limit() {
        assert_eq!(
            Headers::new()
                .with("deep", nested(MAX_DEPTH - 1))
                .check_wire(),
            Ok(())
        );
        let h = Headers::new().with("deep", nested(MAX_DEPTH + 5));
        assert_eq!(
            h.check_wire(),
            Err(HeaderError::TooDeep {
                name: "deep".into()
            })
        );
    }

    #[test]
    fn refuses_a_table_larger_than_a_frame() {
        let h = Headers::new().with("big", "x".repeat(MAX_ENCODED_BYTES));
        assert!(matches!(h.check_wire(), Err(HeaderError::TooLarge { .. })));
    }

    #[test]
    fn encoded_len_counts_tags_lengths_and_names() {
        let h = Headers::new().with("ab", "xyz");
        // name: 1 + 2; value: tag 1 + len 4 + 3
        assert_eq!(h.encoded_len(), 3 + 8);
    }
}
