//! A random prefix for every exchange and queue a test declares.

use rand::{Rng, distr::Alphanumeric};

/// A random namespace such as `tgt-a8x0q3kz1m`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace(String);

impl Namespace {
    /// A fresh random namespace.
    pub fn random() -> Self {
        let suffix: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(10)
            .map(char::from)
            .collect();
        Self(format!("tgt-{}", suffix.to_lowercase()))
    }

    /// `name` inside this namespace.
    pub fn name(&self, name: &str) -> String {
        format!("{}.{name}", self.0)
    }

    /// The prefix itself.
    pub fn prefix(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_differ_and_prefix_names() {
        let (a, b) = (Namespace::random(), Namespace::random());
        assert_ne!(a, b);
        assert!(a.name("q").starts_with("tgt-"));
        assert!(a.name("q").ends_with(".q"));
    }
}
