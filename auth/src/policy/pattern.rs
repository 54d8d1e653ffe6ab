//! Route patterns: `service.method` with AMQP topic wildcards.

use std::fmt;
use std::str::FromStr;

/// A pattern over dot-separated routes: `*` matches exactly one segment, `#` zero or
/// more (as in AMQP topic bindings). `orders.*` matches `orders.get`; `#` matches
/// every route; `*.health` matches `orders.health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    source: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Star,
    Hash,
}

/// Why a route pattern is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid route pattern {0:?}: segments must be non-empty, and `*`/`#` whole segments")]
pub struct InvalidPattern(pub String);

impl RoutePattern {
    /// Whether `route` matches. `route` is assumed valid (see [`is_valid_route`]).
    pub fn matches(&self, route: &str) -> bool {
        matches_segments(&self.segments, route.split('.'))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl FromStr for RoutePattern {
    type Err = InvalidPattern;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let segments = s
            .split('.')
            .map(|seg| match seg {
                "*" => Ok(Segment::Star),
                "#" => Ok(Segment::Hash),
                "" => Err(InvalidPattern(s.to_owned())),
                lit if lit.contains(['*', '#']) => Err(InvalidPattern(s.to_owned())),
                lit => Ok(Segment::Literal(lit.to_owned())),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            source: s.to_owned(),
            segments,
        })
    }
}

impl fmt::Display for RoutePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A route is non-empty dot-separated segments, none empty and none a wildcard.
pub(crate) fn is_valid_route(route: &str) -> bool {
    !route.is_empty()
        && route
            .split('.')
            .all(|seg| !seg.is_empty() && !seg.contains(['*', '#']))
}

fn matches_segments<'a>(
    pattern: &[Segment],
    mut route: impl Iterator<Item = &'a str> + Clone,
) -> bool {
    match pattern.split_first() {
        None => route.next().is_none(),
        Some((Segment::Literal(lit), rest)) => {
            route.next() == Some(lit.as_str()) && matches_segments(rest, route)
        }
        Some((Segment::Star, rest)) => route.next().is_some() && matches_segments(rest, route),
        Some((Segment::Hash, rest)) => loop {
            if matches_segments(rest, route.clone()) {
                return true;
            }
            if route.next().is_none() {
                return false;
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, route: &str) -> bool {
        pattern
            .parse::<RoutePattern>()
            .expect("valid")
            .matches(route)
    }

    #[test]
    fn literal_patterns_match_exactly() {
        assert!(m("orders.get", "orders.get"));
        assert!(!m("orders.get", "orders.get.all"));
        assert!(!m("orders.get", "orders"));
    }

    #[test]
    fn star_matches_exactly_one_segment() {
        assert!(m("orders.*", "orders.get"));
        assert!(!m("orders.*", "orders"));
        assert!(!m("orders.*", "orders.get.all"));
        assert!(m("*.health", "billing.health"));
    }

    #[test]
    fn hash_matches_zero_or_more_segments() {
        assert!(m("#", "orders.get"));
        assert!(m("orders.#", "orders"));
        assert!(m("orders.#", "orders.a.b.c"));
        assert!(m("#.health", "a.b.health"));
        assert!(!m("#.health", "a.b.healthy"));
        assert!(m("a.#.z", "a.z"));
        assert!(m("a.#.z", "a.b.c.z"));
    }

    #[test]
    fn partial_wildcards_and_empty_segments_are_invalid() {
        for bad in ["", "orders.", ".get", "ord*.get", "orders.g#", "a..b"] {
            assert!(bad.parse::<RoutePattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn routes_with_wildcards_or_empty_segments_are_invalid() {
        assert!(is_valid_route("orders.get"));
        for bad in ["", "orders.", "orders.*", "a..b", "#"] {
            assert!(!is_valid_route(bad), "{bad}");
        }
    }
}
