//! Where a service gets the bearer token it registers with.

use std::{fmt, sync::Arc};

/// Hands out the service's credential (a bearer token) each time it announces itself.
///
/// A fixed token suits tests and short-lived processes; a long-running service
/// passes a function that returns a fresh token before the old one expires.
/// `Debug` never shows the token.
#[derive(Clone)]
pub struct TokenSource(Arc<dyn Fn() -> Option<String> + Send + Sync>);

impl TokenSource {
    /// Always `token`.
    pub fn fixed(token: impl Into<String>) -> Self {
        let token = token.into();
        Self(Arc::new(move || Some(token.clone())))
    }

    /// Calls `f` for every announcement; `None` sends the announcement without a
    /// credential (the router will refuse it, and the service retries on the next heartbeat).
    pub fn from_fn(f: impl Fn() -> Option<String> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// The current token.
    pub fn token(&self) -> Option<String> {
        (self.0)()
    }
}

impl From<String> for TokenSource {
    fn from(token: String) -> Self {
        Self::fixed(token)
    }
}

impl From<&str> for TokenSource {
    fn from(token: &str) -> Self {
        Self::fixed(token)
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSource(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let source = TokenSource::from("secret-token");
        assert_eq!(source.token().as_deref(), Some("secret-token"));
        assert!(!format!("{source:?}").contains("secret"));
    }
}
