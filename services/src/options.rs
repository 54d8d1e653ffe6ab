//! How a caller sends one request: credential, timeout, format.

use std::{fmt, time::Duration};

/// Default time a caller waits for a reply.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of one request; `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestOptions {
    /// The caller's bearer token (without `Bearer `); `None` calls anonymously.
    pub token: Option<String>,
    /// How long to wait for the reply (default 10 s).
    pub timeout: Duration,
    /// Content type of the request body, and the format the router replies in
    /// (default `application/json`).
    pub content_type: String,
    /// The schema version the caller speaks; the router translates to the service's.
    pub schema_version: Option<String>,
}

impl RequestOptions {
    /// Options with `token` and the defaults.
    pub fn with_token(token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into()),
            ..Self::default()
        }
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the content type.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = content_type.into();
        self
    }

    /// Sets the schema version.
    pub fn schema_version(mut self, version: impl Into<String>) -> Self {
        self.schema_version = Some(version.into());
        self
    }
}

impl Default for RequestOptions {
    fn default() -> Self {
        Self {
            token: None,
            timeout: DEFAULT_TIMEOUT,
            content_type: "application/json".to_owned(),
            schema_version: None,
        }
    }
}

impl fmt::Debug for RequestOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestOptions")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("content_type", &self.content_type)
            .field("schema_version", &self.schema_version)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_token() {
        let options = RequestOptions::with_token("s3cr3t").schema_version("2");
        let shown = format!("{options:?}");
        assert!(!shown.contains("s3cr3t"));
        assert!(shown.contains("redacted"));
    }
}
