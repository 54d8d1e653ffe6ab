//! `service.method`, parsed once from the routing key and shared by every step.

use std::{fmt, sync::Arc};

/// A valid route: a service name and a method, both non-empty, no AMQP
/// wildcards. Cheap to clone (one shared string).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteKey {
    full: Arc<str>,
    /// Byte index of the first `.`.
    dot: usize,
}

impl RouteKey {
    /// Parses `service.method`; `None` unless both parts are non-empty and
    /// free of AMQP wildcards (the method may contain dots).
    pub fn parse(key: &str) -> Option<Self> {
        let dot = key.find('.')?;
        let valid = dot > 0 && dot + 1 < key.len() && !key.contains(['*', '#']);
        valid.then(|| Self {
            full: Arc::from(key),
            dot,
        })
    }

    /// The whole key.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The first segment: the service.
    pub fn service(&self) -> &str {
        &self.full[..self.dot]
    }

    /// The rest: the method.
    pub fn method(&self) -> &str {
        &self.full[self.dot + 1..]
    }
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_a_service_and_a_method() {
        let r = RouteKey::parse("orders.item.add").unwrap();
        assert_eq!((r.service(), r.method()), ("orders", "item.add"));
        assert_eq!(r.as_str(), "orders.item.add");
        assert!(RouteKey::parse("orders").is_none());
        assert!(RouteKey::parse(".create").is_none());
        assert!(RouteKey::parse("orders.").is_none());
        assert!(RouteKey::parse("orders.*").is_none());
        assert!(RouteKey::parse("orders.#").is_none());
    }
}
