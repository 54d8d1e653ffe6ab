//! RFC 6901 JSON pointers, parsed once at load, and the three edits the
//! mappings make with them: take, set and set-if-absent.

use std::fmt;

use serde_json::{Map, Value};

/// A parsed, non-empty JSON pointer such as `/customer/id` or `/items/0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pointer {
    tokens: Vec<Token>,
    source: String,
}

/// One reference token, unescaped, with its array index if it is one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    key: String,
    /// `Some` for `0` or a number without leading zeros (RFC 6901 §4).
    index: Option<usize>,
}

/// Why a pointer does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ParseError {
    /// `""`, the whole document.
    Empty,
    /// Does not start with `/`.
    NoLeadingSlash,
    /// `~` not followed by `0` or `1`.
    BadEscape,
}

/// Why a value could not be written at a pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SetError {
    /// A value on the way is neither an object nor an array.
    NotAContainer,
    /// An array on the way is indexed by something that is not an index, or
    /// by an index past its end.
    BadIndex,
}

/// Whether [`Pointer::set`] replaces a value that is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Write {
    /// Replace an object member; insert into an array (RFC 6902 `add`).
    Always,
    /// Write only where nothing is (a `null` is something).
    IfAbsent,
}

// === Pointer ===

impl Pointer {
    /// Parses `source`; the empty pointer is refused because every edit names a field.
    pub(super) fn parse(source: &str) -> Result<Self, ParseError> {
        let rest = match source.strip_prefix('/') {
            Some(rest) => rest,
            None if source.is_empty() => return Err(ParseError::Empty),
            None => return Err(ParseError::NoLeadingSlash),
        };
        let tokens = rest
            .split('/')
            .map(Token::parse)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            tokens,
            source: source.to_owned(),
        })
    }

    /// The pointer as configured.
    pub(super) fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether both pointers name members of the same parent.
    pub(super) fn same_parent(&self, other: &Self) -> bool {
        self.parent() == other.parent()
    }

    fn parent(&self) -> &[Token] {
        self.tokens.split_last().map_or(&[], |(_, parent)| parent)
    }

    /// Removes and returns the value at the pointer; `None` (and no change) if
    /// nothing is there. With `prune`, objects left empty by the removal are
    /// removed too, up to (not including) the root.
    pub(super) fn take(&self, doc: &mut Value, prune: bool) -> Option<Value> {
        take_in(doc, &self.tokens, prune)
    }

    /// Writes `value()` at the pointer, creating missing objects on the way.
    /// `value` is called only if something is written.
    pub(super) fn set(
        &self,
        doc: &mut Value,
        value: impl FnOnce() -> Value,
        write: Write,
    ) -> Result<(), SetError> {
        let Some((last, parents)) = self.tokens.split_last() else {
            return Err(SetError::NotAContainer); // unreachable: parse refuses ""
        };
        let mut node = doc;
        for token in parents {
            node = match node {
                Value::Object(map) => map
                    .entry(token.key.as_str())
                    .or_insert_with(|| Value::Object(Map::new())),
                Value::Array(items) => token
                    .index
                    .and_then(|i| items.get_mut(i))
                    .ok_or(SetError::BadIndex)?,
                _ => return Err(SetError::NotAContainer),
            };
        }
        match node {
            Value::Object(map) => {
                if write == Write::Always || !map.contains_key(&last.key) {
                    map.insert(last.key.clone(), value());
                }
                Ok(())
            }
            Value::Array(items) => {
                let index = if last.key == "-" {
                    Some(items.len())
                } else {
                    last.index
                };
                match index {
                    Some(i) if i < items.len() && write == Write::IfAbsent => Ok(()),
                    Some(i) if i <= items.len() => {
                        items.insert(i, value());
                        Ok(())
                    }
                    _ => Err(SetError::BadIndex),
                }
            }
            _ => Err(SetError::NotAContainer),
        }
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

// === Token ===

impl Token {
    fn parse(raw: &str) -> Result<Self, ParseError> {
        let mut key = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '~' {
                key.push(c);
                continue;
            }
            match chars.next() {
                Some('0') => key.push('~'),
                Some('1') => key.push('/'),
                _ => return Err(ParseError::BadEscape),
            }
        }
        let is_index = key == "0"
            || (!key.is_empty()
                && !key.starts_with('0')
                && key.bytes().all(|b| b.is_ascii_digit()));
        let index = if is_index { key.parse().ok() } else { None };
        Ok(Self { key, index })
    }
}

// === ParseError, SetError ===

impl ParseError {
    /// Why, in words.
    pub(super) const fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "the empty pointer names the whole document",
            Self::NoLeadingSlash => "it must start with '/'",
            Self::BadEscape => "'~' must be followed by '0' or '1'",
        }
    }
}

impl SetError {
    /// Why, in words.
    pub(super) const fn as_str(self) -> &'static str {
        match self {
            Self::NotAContainer => "a value on the way is neither an object nor an array",
            Self::BadIndex => "an array on the way has no such index",
        }
    }
}

// === Helpers ===

fn child_mut<'v>(node: &'v mut Value, token: &Token) -> Option<&'v mut Value> {
    match node {
        Value::Object(map) => map.get_mut(&token.key),
        Value::Array(items) => token.index.and_then(|i| items.get_mut(i)),
        _ => None,
    }
}

fn remove_child(node: &mut Value, token: &Token) -> Option<Value> {
    match node {
        Value::Object(map) => map.remove(&token.key),
        Value::Array(items) => token
            .index
            .filter(|&i| i < items.len())
            .map(|i| items.remove(i)),
        _ => None,
    }
}

// Recursion is bounded by the pointer's length, which comes from the config.
fn take_in(node: &mut Value, tokens: &[Token], prune: bool) -> Option<Value> {
    let (first, rest) = tokens.split_first()?;
    if rest.is_empty() {
        return remove_child(node, first);
    }
    let child = child_mut(node, first)?;
    let taken = take_in(child, rest, prune)?;
    // Only object members are pruned: removing an array element would shift
    // the indices after it.
    if prune && child.as_object().is_some_and(Map::is_empty) && node.is_object() {
        remove_child(node, first);
    }
    Some(taken)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ptr(s: &str) -> Pointer {
        Pointer::parse(s).unwrap()
    }

    #[test]
    fn parses_escapes_and_refuses_bad_pointers() {
        let p = ptr("/a~1b/m~0n/~01");
        let keys: Vec<_> = p.tokens.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["a/b", "m~n", "~1"]);
        assert_eq!(Pointer::parse(""), Err(ParseError::Empty));
        assert_eq!(Pointer::parse("a/b"), Err(ParseError::NoLeadingSlash));
        assert_eq!(Pointer::parse("/a~2"), Err(ParseError::BadEscape));
        assert_eq!(Pointer::parse("/a~"), Err(ParseError::BadEscape));
        assert_eq!(
            ptr("/").tokens[0].key,
            "",
            "\"/\" names the member with the empty key"
        );
    }

    #[test]
    fn only_canonical_numbers_are_array_indices() {
        let index = |s: &str| ptr(s).tokens[0].index;
        assert_eq!(index("/0"), Some(0));
        assert_eq!(index("/12"), Some(12));
        assert_eq!(index("/012"), None);
        assert_eq!(index("/-"), None);
        assert_eq!(index("/1e3"), None);
        assert_eq!(index("/99999999999999999999999"), None);
    }

    #[test]
    fn take_prunes_only_object_members_it_emptied() {
        let mut doc = json!({"a": {"b": {"c": 1}}, "keep": {}, "list": [{"x": 1}]});
        assert_eq!(ptr("/a/b/c").take(&mut doc, true), Some(json!(1)));
        assert_eq!(ptr("/list/0/x").take(&mut doc, true), Some(json!(1)));
        assert_eq!(doc, json!({"keep": {}, "list": [{}]}));
        assert_eq!(ptr("/keep/nothing").take(&mut doc, true), None);
        assert_eq!(ptr("/list/0/nothing").take(&mut doc, true), None);
        assert_eq!(doc, json!({"keep": {}, "list": [{}]}));
    }

    #[test]
    fn set_inserts_into_arrays_and_refuses_scalars_on_the_way() {
        let mut doc = json!({"list": [1, 3], "n": 5});
        ptr("/list/1")
            .set(&mut doc, || json!(2), Write::Always)
            .unwrap();
        ptr("/list/-")
            .set(&mut doc, || json!(4), Write::Always)
            .unwrap();
        assert_eq!(doc["list"], json!([1, 2, 3, 4]));
        assert_eq!(
            ptr("/list/9").set(&mut doc, || json!(0), Write::Always),
            Err(SetError::BadIndex)
        );
        assert_eq!(
            ptr("/n/x").set(&mut doc, || json!(0), Write::Always),
            Err(SetError::NotAContainer)
        );
        assert_eq!(
            ptr("/n/x/y").set(&mut doc, || json!(0), Write::Always),
            Err(SetError::NotAContainer)
        );
    }
}

#[cfg(test)]
pub(super) mod props;
