//! `[http]`: the HTTP entry of `tollgate serve` (`POST /{service}/{method}`).

use std::{net::SocketAddr, time::Duration};

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[http]`. Without `listen`, the router has no HTTP entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Address of the HTTP entry, e.g. `127.0.0.1:8080`; none when unset
    /// (`TOLLGATE_HTTP_LISTEN`).
    pub listen: Option<String>,
    /// Seconds a service has to answer an HTTP request before the client gets
    /// 504 (1–86400, at most `router.reply_timeout_secs`; default 30).
    pub reply_timeout_secs: u64,
    /// Seconds a client has to send its request line and headers, and again
    /// its body, before it gets 408 and its connection is closed (1–300,
    /// default 10).
    pub client_timeout_secs: u64,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            listen: None,
            reply_timeout_secs: 30,
            client_timeout_secs: 10,
        }
    }
}

impl HttpSection {
    /// The address to listen on, when set and valid.
    pub fn socket(&self) -> Option<SocketAddr> {
        self.listen.as_deref().and_then(|a| a.parse().ok())
    }

    /// How long a service has to answer.
    pub fn reply_timeout(&self) -> Duration {
        Duration::from_secs(self.reply_timeout_secs)
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
        if !(1..=router_reply_timeout.min(86_400)).contains(&self.reply_timeout_secs) {
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
            reply_timeout_secs: 400,
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
}
