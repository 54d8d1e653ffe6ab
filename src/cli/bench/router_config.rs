//! The config file of a bench bus's router: the bus, its callers (each
//! allowed every route), the service account (which may register the
//! bench's services) and where its keys are.

use tollgate_bus::{BusNames, QueueKind};

use super::{
    bench_bus::{AUTH, AuthMode, ECHO, SINK},
    keys::{self, BenchKeys, ConsumerKey, SERVICE_ACCOUNT},
};

/// What a router config is made of.
pub(crate) struct RouterPlan<'a> {
    /// The bus's namespace and queue type.
    pub(crate) names: &'a BusNames,
    /// The broker.
    pub(crate) amqp_url: &'a str,
    /// Where the router serves its Prometheus metrics.
    pub(crate) metrics_addr: &'a str,
    /// The router's `default_auth`.
    pub(crate) mode: AuthMode,
    /// The router's prefetch.
    pub(crate) prefetch: u16,
    /// The router's `hold_calls` (`None`: its default).
    pub(crate) hold_calls: Option<u16>,
    /// The router's `threads`.
    pub(crate) threads: u16,
    /// The consumers' keys.
    pub(crate) keys: &'a BenchKeys,
    /// Where the router serves its HTTP entry; none when `None`.
    pub(crate) http_addr: Option<&'a str>,
}

/// The file of `consumer`'s public key, in the config's folder.
pub(crate) fn public_key_file(consumer: &str) -> String {
    format!("{consumer}.pub.pem")
}

/// `kind` as the config and the command line write it.
pub(crate) fn queue_type_name(kind: QueueKind) -> &'static str {
    match kind {
        QueueKind::Classic => "classic",
        QueueKind::Quorum => "quorum",
    }
}

/// A TOML basic string (JSON's escapes are TOML's).
fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// The router's config (TOML); key files are named relative to its folder.
pub(crate) fn router_toml(plan: &RouterPlan<'_>) -> String {
    let mode = match plan.mode {
        AuthMode::Gateway | AuthMode::Central { .. } => "gateway",
        AuthMode::Service => "service",
    };
    let queue_type = queue_type_name(plan.names.queue_type());
    let mut toml = format!(
        "amqp_url = {}\nnamespace = {}\nqueue_type = \"{queue_type}\"\n\
         instance = \"bench-router\"\nmetrics_addr = {}\ndefault_auth = \"{mode}\"\n\n\
         [router]\nprefetch = {}\nthreads = {}\n{}\n[auth]\nassertion_key_file = \"bus-assertion.pem\"\n",
        quoted(plan.amqp_url),
        quoted(plan.names.namespace()),
        quoted(plan.metrics_addr),
        plan.prefetch,
        plan.threads,
        plan.hold_calls
            .map(|hold| format!("hold_calls = {hold}\n"))
            .unwrap_or_default(),
    );

    let mut callers = Vec::new();
    for consumer in &plan.keys.consumers {
        let key = match &consumer.key {
            ConsumerKey::Secret(secret) => format!("secret = {}", quoted(secret)),
            ConsumerKey::Pair(_) => {
                format!(
                    "public_key_file = {}",
                    quoted(&public_key_file(consumer.name))
                )
            }
        };
        toml.push_str(&format!(
            "\n[[auth.consumers]]\nname = {}\n[[auth.consumers.credentials]]\nkid = {}\n\
             algorithm = \"{}\"\n{key}\n",
            quoted(consumer.name),
            quoted(&keys::kid(consumer.name)),
            consumer.algorithm.as_str(),
        ));
        if consumer.name != SERVICE_ACCOUNT {
            callers.push(quoted(consumer.name));
        }
    }
    toml.push_str(&format!(
        "\n[[policy.rules]]\nname = \"bench-callers\"\nroutes = [\"#\"]\nconsumers = [{}]\n\n\
         [[policy.rules]]\nname = \"bench-users\"\nroutes = [\"{ECHO}.*\"]\ngroups = [\"{BENCH_USERS}\"]\n\n\
         [registry]\ngrants = [{{ consumer = {}, services = [{}, {}, {}] }}]\n",
        callers.join(", "),
        quoted(SERVICE_ACCOUNT),
        quoted(ECHO),
        quoted(SINK),
        quoted(AUTH),
    ));
    if let AuthMode::Central { cache_ttl_ms } = plan.mode {
        toml.push_str(&format!(
            "\n[[routes]]\npattern = \"{ECHO}.*\"\nauth = \"central\"\n\n\
             [central_auth]\nservice = \"{AUTH}\"\ncache_ttl_ms = {cache_ttl_ms}\n"
        ));
    }
    if let Some(addr) = plan.http_addr {
        toml.push_str(&format!("\n[http]\nlisten = {}\n", quoted(addr)));
    }
    toml
}

/// The group of the users the central auth service logs in (the policy lets
/// them call the echo service).
pub(crate) const BENCH_USERS: &str = "bench-users";

#[cfg(test)]
mod tests {
    use tollgate_bus::config::Config;

    use super::*;

    #[test]
    fn the_config_parses_with_every_consumer_and_quotes_what_it_must() {
        let keys = BenchKeys::generate().unwrap();
        let names = BusNames::new("bench-1234abcd").with_queue_type(QueueKind::Quorum);
        let plan = RouterPlan {
            names: &names,
            amqp_url: "amqp://user:p\"w@127.0.0.1:5672/%2f",
            metrics_addr: "127.0.0.1:9464",
            mode: AuthMode::Service,
            prefetch: 64,
            hold_calls: Some(0),
            threads: 3,
            keys: &keys,
            http_addr: Some("127.0.0.1:8080"),
        };
        let text = router_toml(&plan);
        let config = Config::from_toml(&text, "/nowhere").unwrap();
        assert_eq!(config.bus_names(), names);
        assert_eq!(config.amqp_url, plan.amqp_url);
        assert_eq!(config.metrics_addr.as_deref(), Some("127.0.0.1:9464"));
        assert_eq!(config.router.prefetch, 64);
        assert_eq!(config.router.hold_calls(), 0);
        assert_eq!(config.router.threads, 3);
        assert_eq!(config.http.listen.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(config.auth.consumers.len(), keys.consumers.len());
        assert!(text.contains("default_auth = \"service\""));
        assert!(text.contains("public_key_file = \"caller-rs256.pub.pem\""));
    }
}
