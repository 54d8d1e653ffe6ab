//! `[http]`: the HTTP entry of `tollgate serve` (`POST /{service}/{method}`).

use std::{net::SocketAddr, time::Duration};

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Default of [`HttpSection::reply_timeout_secs`].
const DEFAULT_REPLY_TIMEOUT_SECS: u64 = 30;

/// `[http]`. Without `listen`, the router has no HTTP entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Address of the HTTP entry, e.g. `127.0.0.1:8080`; none when unset
    /// (`TOLLGATE_HTTP_LISTEN`).
    pub listen: Option<String>,
    /// Seconds a service has to answer an HTTP request before the client gets
    /// 504 (1 to `router.reply_timeout_secs`; default 30, or
    /// `router.reply_timeout_secs` when that is shorter).
    pub reply_timeout_secs: Option<u64>,
    /// Seconds a client has to send its request line and headers, and again
    /// its body, before it gets 408 and its connection is closed (1–300,
    /// default 10).
    pub client_timeout_secs: u64,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            listen: None,
            reply_timeout_secs: None,
            client_timeout_secs: 10,
        }
    }
}

impl HttpSection {
    /// The address to listen on, when set and valid.
    pub fn socket(&self) -> Option<SocketAddr> {
        self.listen.as_deref().and_then(|a| a.parse().ok())
    }

    /// How long a service has to answer, given `router.reply_timeout_secs`.
    pub fn reply_timeout(&self, router_reply_timeout_secs: u64) -> Duration {
        let secs = self
            .reply_timeout_secs
            .unwrap_or(DEFAULT_REPLY_TIMEOUT_SECS.min(router_reply_timeout_secs));
        Duration::from_secs(secs)
    }

    /// How long a client has for its headers, and for its body.
    pub fn client_timeout(&self) -> Duration {
        Duration::from_secs(self.client_timeout_secs)
    }

    /// Adds every problem of this section to `errors`; `router_reply_timeout`
    /// is `router.reply_timeout_secs`.
    pub(super) fn check(&self, router_reply_timeout: u64, errors: &mut Vec<ConfigError>) {
        if let Some(addr) = &self.listen
            && addr.parse::<SocketAddr>().is_err()
        {
            errors.push(ConfigError::new(
                "http.listen",
                format!("`{addr}` is not host:port"),
            ));
        }
        if let Some(secs) = self.reply_timeout_secs
            && !(1..=router_reply_timeout).contains(&secs)
        {
            errors.push(ConfigError::new(
                "http.reply_timeout_secs",
                format!("must be 1–{router_reply_timeout} (router.reply_timeout_secs)"),
            ));
        }
        if !(1..=300).contains(&self.client_timeout_secs) {
            errors.push(ConfigError::new(
                "http.client_timeout_secs",
                "must be 1–300",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_of_the_section_is_reported() {
        let section = HttpSection {
            listen: Some("nowhere".into()),
            reply_timeout_secs: Some(400),
            client_timeout_secs: 0,
        };
        let mut errors = Vec::new();
        section.check(300, &mut errors);
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn the_default_section_is_valid_and_listens_nowhere() {
        let mut errors = Vec::new();
        HttpSection::default().check(300, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(HttpSection::default().socket(), None);
    }

    #[test]
    fn the_default_reply_timeout_never_outlasts_the_router_s() {
        let section = HttpSection::default();
        assert_eq!(section.reply_timeout(300), Duration::from_secs(30));
        assert_eq!(section.reply_timeout(5), Duration::from_secs(5));
        let mut errors = Vec::new();
        section.check(1, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
    }
}
