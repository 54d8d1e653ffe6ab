//! Where a consumer's remote JWKS lives and how often it is read again.
//!
//! Only the description lives here: fetching (HTTP, timeouts, the schedule)
//! belongs to whoever runs the verifier (the router's `jwks` module).

use std::time::Duration;

use crate::error::LoadError;

/// How often a remote key set is fetched again when nothing asks sooner.
pub const DEFAULT_JWKS_REFRESH_SECS: u64 = 300;
/// The shortest gap between two fetches a token with an unknown `kid` may
/// cause, per consumer.
pub const DEFAULT_JWKS_MIN_REFETCH_SECS: u64 = 10;

/// A consumer's remote JSON Web Key Set: its URL and refresh settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksSource {
    /// `http://` or `https://` URL of the key set.
    pub url: String,
    /// Fetch again after this long.
    pub refresh: Duration,
    /// At most one fetch per this long because of an unknown `kid`.
    pub min_refetch: Duration,
}

impl JwksSource {
    /// A source at `url`, refreshed every `refresh_secs` (default 300) and
    /// refetched on an unknown `kid` at most every `min_refetch_secs`
    /// (default 10). Errors when the URL is not http(s) or a period is out of
    /// range (refresh 1–86400 s, refetch 1–3600 s and not above refresh).
    pub fn new(
        owner: &str,
        url: &str,
        refresh_secs: Option<u64>,
        min_refetch_secs: Option<u64>,
    ) -> Result<Self, LoadError> {
        let refresh = refresh_secs.unwrap_or(DEFAULT_JWKS_REFRESH_SECS);
        let min_refetch = min_refetch_secs.unwrap_or(DEFAULT_JWKS_MIN_REFETCH_SECS);
        let scheme_ok = ["http://", "https://"].iter().any(|s| {
            url.len() > s.len()
                && url
                    .get(..s.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(s))
        });
        if !scheme_ok || url.chars().any(char::is_whitespace) {
            return Err(LoadError::Invalid(format!(
                "consumer {owner}: jwks_url must be an http:// or https:// URL"
            )));
        }
        if !(1..=86_400).contains(&refresh) {
            return Err(LoadError::Invalid(format!(
                "consumer {owner}: jwks_refresh_secs must be 1–86400"
            )));
        }
        if !(1..=3600).contains(&min_refetch) || min_refetch > refresh {
            return Err(LoadError::Invalid(format!(
                "consumer {owner}: jwks_min_refetch_secs must be 1–3600 and at most jwks_refresh_secs"
            )));
        }
        Ok(Self {
            url: url.to_owned(),
            refresh: Duration::from_secs(refresh),
            min_refetch: Duration::from_secs(min_refetch),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_http_and_https_urls_with_defaults() {
        let s = JwksSource::new("p", "https://idp/jwks", None, None).expect("valid");
        assert_eq!(s.refresh, Duration::from_secs(DEFAULT_JWKS_REFRESH_SECS));
        assert!(JwksSource::new("p", "HTTP://127.0.0.1:8/k", Some(5), Some(5)).is_ok());
    }

    #[test]
    fn refuses_other_schemes_and_odd_periods() {
        assert!(JwksSource::new("p", "file:///etc/jwks", None, None).is_err());
        assert!(JwksSource::new("p", "https://", None, None).is_err());
        assert!(JwksSource::new("p", "https://idp", Some(0), None).is_err());
        assert!(JwksSource::new("p", "https://idp", Some(5), Some(10)).is_err());
    }
}
