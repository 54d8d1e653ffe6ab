//! Which settings a reload cannot change: they shape connections, names,
//! listeners and keys that a running router holds, so a changed one is
//! logged as "needs a restart" and the running value stays.

use super::Config;

impl Config {
    /// The settings (by their config name) that differ between `self`, the
    /// running config, and `new`, and that only a restart applies. What a
    /// reload does change (consumers, `strip_credential`, `identity_headers`, `[policy]`,
    /// `default_auth` and `[[routes]]`, `[limits]`, `[translation]`) is not
    /// listed. The assertion key is compared by file name, not content.
    pub fn restart_only_changes(&self, new: &Config) -> Vec<&'static str> {
        let (a, b) = (&self.auth, &new.auth);
        [
            ("amqp_url", self.amqp_url == new.amqp_url),
            ("namespace", self.namespace == new.namespace),
            ("queue_type", self.queue_type == new.queue_type),
            ("instance", self.instance == new.instance),
            ("metrics_addr", self.metrics_addr == new.metrics_addr),
            (
                "auth.assertion_key_file",
                a.assertion_key_file == b.assertion_key_file
                    && a.ephemeral_assertion_key == b.ephemeral_assertion_key,
            ),
            (
                "auth.assertion_ttl_secs",
                a.assertion_ttl_secs == b.assertion_ttl_secs,
            ),
            ("auth.verifier", a.verifier == b.verifier),
            (
                "auth.registration_audience",
                a.registration_audience == b.registration_audience,
            ),
            ("registry", self.registry == new.registry),
            ("dead_letters", self.dead_letters == new.dead_letters),
            ("router", self.router == new.router),
            ("central_auth", self.central_auth == new.central_auth),
            ("http", self.http == new.http),
            ("trust", self.trust == new.trust),
        ]
        .into_iter()
        .filter_map(|(name, same)| (!same).then_some(name))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_what_only_a_restart_applies_and_nothing_live() {
        let old = Config::default();
        let mut new = old.clone();
        new.router.prefetch += 1;
        new.amqp_url = "amqp://elsewhere".into();
        new.limits.max_message_bytes += 1;
        new.auth.strip_credential = !old.auth.strip_credential;
        new.trust.resync_secs += 1;
        assert_eq!(
            old.restart_only_changes(&new),
            ["amqp_url", "router", "trust"]
        );
        assert!(old.restart_only_changes(&old).is_empty());
    }
}
