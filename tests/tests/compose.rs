//! docker-compose.yml refers only to things that exist: build contexts and the
//! Dockerfile, bind-mounted files, binaries the image installs, named volumes,
//! services it depends on, broker users of deploy/rabbitmq/definitions.json,
//! and a router config that validates. No Docker engine needed.

// Test code: a failed expectation should panic loudly.
#![allow(clippy::unwrap_used)]

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use tollgate_bus::config::Config;
use yaml_rust2::{Yaml, YamlLoader};

// === Reading the repository ===

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the repository root")
        .to_path_buf()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn compose() -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read("docker-compose.yml"))
        .unwrap_or_else(|e| panic!("docker-compose.yml is not YAML: {e}"));
    assert_eq!(docs.len(), 1, "docker-compose.yml holds one document");
    docs.remove(0)
}

fn services(doc: &Yaml) -> Vec<(String, &Yaml)> {
    let services = doc["services"]
        .as_hash()
        .expect("docker-compose.yml has a `services` mapping");
    services
        .iter()
        .map(|(k, v)| (k.as_str().expect("service names are strings").to_owned(), v))
        .collect()
}

/// A list of strings (exec form); a plain string is refused, since its
/// splitting depends on a shell.
fn strings(node: &Yaml, what: &str) -> Vec<String> {
    match node {
        Yaml::BadValue | Yaml::Null => Vec::new(),
        Yaml::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .unwrap_or_else(|| panic!("{what}: {i:?} is not a string"))
                    .to_owned()
            })
            .collect(),
        other => panic!("{what}: use the list form, not {other:?}"),
    }
}

/// Example programs of `tollgate-services`: `examples/NAME.rs` or `examples/NAME/main.rs`.
fn examples() -> BTreeSet<String> {
    let dir = repo().join("services/examples");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter_map(|path| {
            let is_example =
                path.extension().is_some_and(|e| e == "rs") || path.join("main.rs").is_file();
            let stem = path.file_stem()?.to_str()?.to_owned();
            is_example.then_some(stem)
        })
        .collect()
}

/// What the Dockerfile's last stage installs in /usr/local/bin, and its entrypoint.
struct Image {
    binaries: BTreeSet<String>,
    entrypoint: String,
    built_examples: BTreeSet<String>,
}

fn image(dockerfile: &Path) -> Image {
    let text = std::fs::read_to_string(dockerfile).unwrap();
    let last_stage = text.rsplit("\nFROM ").next().unwrap();
    let binaries = last_stage
        .lines()
        .filter(|l| l.starts_with("COPY "))
        .filter_map(|l| l.split_whitespace().last()?.strip_prefix("/usr/local/bin/"))
        .map(str::to_owned)
        .collect();
    let entrypoint = last_stage
        .lines()
        .find_map(|l| l.strip_prefix("ENTRYPOINT "))
        .expect("the image has an ENTRYPOINT");
    let entrypoint: Vec<String> = serde_json::from_str(entrypoint).expect("exec-form ENTRYPOINT");
    let words: Vec<&str> = text.split_whitespace().collect();
    let built_examples = words
        .windows(2)
        .filter(|w| w[0] == "--example")
        .map(|w| w[1].to_owned())
        .collect();
    Image {
        binaries,
        entrypoint: entrypoint[0].clone(),
        built_examples,
    }
}

/// A short-syntax volume `SOURCE:TARGET[:MODE]`.
struct Mount {
    source: String,
    target: String,
    read_only: bool,
}

impl Mount {
    fn parse(spec: &str) -> Mount {
        let parts: Vec<&str> = spec.split(':').collect();
        assert!(
            (2..=3).contains(&parts.len()),
            "volume `{spec}` is not SOURCE:TARGET[:MODE]"
        );
        Mount {
            source: parts[0].to_owned(),
            target: parts[1].to_owned(),
            read_only: parts.get(2) == Some(&"ro"),
        }
    }

    fn is_bind(&self) -> bool {
        self.source.starts_with('.') || self.source.starts_with('/')
    }
}

fn mounts(service: &Yaml, name: &str) -> Vec<Mount> {
    strings(&service["volumes"], &format!("{name}.volumes"))
        .iter()
        .map(|s| Mount::parse(s))
        .collect()
}

fn definitions() -> serde_json::Value {
    serde_json::from_str(&read("deploy/rabbitmq/definitions.json")).unwrap()
}

/// `(user, password, host)` of an `amqp://user:password@host:port/vhost` URL.
fn credentials(url: &str) -> (String, String, String) {
    let rest = url.strip_prefix("amqp://").expect("an amqp:// URL");
    let (userinfo, rest) = rest.split_once('@').expect("the URL names a user");
    let (user, password) = userinfo.split_once(':').expect("the URL has a password");
    let host = rest.split([':', '/']).next().unwrap();
    (user.to_owned(), password.to_owned(), host.to_owned())
}

fn compose_config() -> Config {
    Config::from_toml(&read("deploy/tollgate.compose.toml"), repo().join("deploy"))
        .unwrap_or_else(|e| panic!("deploy/tollgate.compose.toml does not parse: {e}"))
}

// === Tests ===

#[test]
fn every_service_refers_to_files_binaries_volumes_and_services_that_exist() {
    let doc = compose();
    let services = services(&doc);
    let names: BTreeSet<&str> = services.iter().map(|(n, _)| n.as_str()).collect();
    let declared_volumes: BTreeSet<String> = doc["volumes"]
        .as_hash()
        .map(|h| {
            h.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let examples = examples();
    assert!(!services.is_empty());

    for (name, service) in &services {
        let build = &service["build"];
        let image = if build.is_badvalue() {
            let image = service["image"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: neither `build` nor `image`"));
            assert!(image.contains(':'), "{name}: pin the image's tag: {image}");
            None
        } else {
            let context = repo().join(build["context"].as_str().unwrap_or("."));
            assert!(
                context.is_dir(),
                "{name}: no build context {}",
                context.display()
            );
            let dockerfile = context.join(build["dockerfile"].as_str().unwrap_or("Dockerfile"));
            assert!(dockerfile.is_file(), "{name}: no {}", dockerfile.display());
            Some(image(&dockerfile))
        };

        let mounts = mounts(service, name);
        for m in &mounts {
            if m.is_bind() {
                let host = repo().join(&m.source);
                assert!(host.exists(), "{name}: bind mount of missing {}", m.source);
            } else {
                assert!(
                    declared_volumes.contains(&m.source),
                    "{name}: volume `{}` is not declared under `volumes:`",
                    m.source
                );
            }
        }

        let depends_on: Vec<String> = match &service["depends_on"] {
            Yaml::Hash(h) => h.keys().map(|k| k.as_str().unwrap().to_owned()).collect(),
            other => strings(other, &format!("{name}.depends_on")),
        };
        for dependency in &depends_on {
            assert!(
                names.contains(dependency.as_str()),
                "{name}: depends on unknown `{dependency}`"
            );
            let condition = &service["depends_on"][dependency.as_str()]["condition"];
            if let Some(condition) = condition.as_str() {
                assert!(
                    [
                        "service_started",
                        "service_healthy",
                        "service_completed_successfully"
                    ]
                    .contains(&condition),
                    "{name}: unknown condition {condition}"
                );
                if condition == "service_healthy" {
                    let target = &services.iter().find(|(n, _)| n == dependency).unwrap().1;
                    assert!(
                        !target["healthcheck"].is_badvalue(),
                        "{dependency} has no healthcheck"
                    );
                }
            }
        }

        let Some(image) = image else { continue };
        for example in &image.built_examples {
            assert!(
                examples.contains(example),
                "the Dockerfile builds missing example `{example}`"
            );
        }
        let entrypoint = strings(&service["entrypoint"], &format!("{name}.entrypoint"));
        let command = strings(&service["command"], &format!("{name}.command"));
        let (program, args) = match entrypoint.split_first() {
            Some((program, rest)) => (program.clone(), [rest, &command].concat()),
            None => (image.entrypoint.clone(), command.clone()),
        };
        if program == "/bin/sh" {
            // A script, which must come from a bind mount of a file in the repository.
            let script = &args[0];
            let mount = mounts
                .iter()
                .find(|m| &m.target == script)
                .unwrap_or_else(|| {
                    panic!("{name}: /bin/sh runs {script}, which no bind mount provides")
                });
            assert!(
                repo().join(&mount.source).is_file(),
                "{name}: {} is no file",
                mount.source
            );
        } else {
            assert!(
                image.binaries.contains(&program),
                "{name}: runs `{program}`, which the Dockerfile does not install ({:?})",
                image.binaries
            );
            if program == "tollgate" {
                let subcommand = &args[0];
                assert!(
                    repo().join(format!("src/cli/{subcommand}.rs")).is_file(),
                    "{name}: `tollgate {subcommand}` has no src/cli/{subcommand}.rs"
                );
            } else {
                assert!(
                    examples.contains(&program),
                    "{name}: `{program}` is no example of services/examples"
                );
            }
        }
        // Every absolute path the program is given lies in one of its mounts.
        for path in args.iter().filter(|a| a.starts_with('/')) {
            assert!(
                mounts
                    .iter()
                    .any(|m| path == &m.target || path.starts_with(&format!("{}/", m.target))),
                "{name}: {path} is in none of its volumes"
            );
        }
    }
}

#[test]
fn every_program_logs_in_to_the_broker_as_a_user_of_the_definitions_file() {
    let doc = compose();
    let definitions = definitions();
    let users = definitions["users"].as_array().unwrap();
    let services = services(&doc);
    let names: BTreeSet<&str> = services.iter().map(|(n, _)| n.as_str()).collect();
    let mut logins = BTreeMap::new();
    for (name, service) in &services {
        let Some(url) = service["environment"]["TOLLGATE_AMQP_URL"].as_str() else {
            continue;
        };
        let (user, password, host) = credentials(url);
        assert!(
            names.contains(host.as_str()),
            "{name}: broker host `{host}` is no service"
        );
        let known = users
            .iter()
            .find(|u| u["name"] == user.as_str())
            .unwrap_or_else(|| panic!("{name}: user {user} is not in definitions.json"));
        assert_eq!(
            known["password"],
            password.as_str(),
            "{name}: password of {user}"
        );
        let granted = definitions["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["user"] == user.as_str());
        assert!(granted, "{user} has no permissions in definitions.json");
        assert_ne!(user, "guest", "{name} logs in as guest");
        logins.insert(name.clone(), user);
    }
    // The router and each service: one user each.
    assert_eq!(
        logins.get("router").map(String::as_str),
        Some("tollgate-router")
    );
    let distinct: BTreeSet<_> = logins.values().collect();
    assert_eq!(
        distinct.len(),
        logins.len(),
        "two programs share a broker user: {logins:?}"
    );
    let (config_user, _, _) = credentials(&compose_config().amqp_url);
    assert_eq!(config_user, "tollgate-router");
}

#[test]
fn the_compose_router_config_validates_and_matches_the_example() {
    let mut config = compose_config();
    assert_eq!(
        config.namespace, "tollgate",
        "the broker permissions name `tollgate`"
    );
    assert_eq!(
        config.auth.assertion_key_file.as_deref(),
        Some(Path::new("/keys/bus-assertion.pem")),
        "setup writes the key to the `bus-key` volume, mounted at /keys"
    );
    // The key exists only once `setup` ran; validate with a fresh one instead.
    let dir = std::env::temp_dir().join(format!(
        "tollgate-compose-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (private, _) = tollgate_auth::generate_assertion_key().unwrap();
    std::fs::write(dir.join("bus-assertion.pem"), private).unwrap();
    config.auth.assertion_key_file = Some(dir.join("bus-assertion.pem"));
    let valid = config.validate();
    std::fs::remove_dir_all(&dir).ok();
    valid.unwrap_or_else(|p| panic!("deploy/tollgate.compose.toml is invalid: {p:#?}"));

    let example = Config::from_toml(&read("tollgate.example.toml"), repo()).unwrap();
    assert_eq!(
        config.auth.consumers, example.auth.consumers,
        "consumers drifted"
    );
    assert_eq!(config.policy, example.policy, "policy drifted");
    assert_eq!(
        config.registry.grants, example.registry.grants,
        "grants drifted"
    );
    assert_eq!(
        config.translation.mappings, example.translation.mappings,
        "mappings drifted"
    );
}

#[test]
fn setup_signs_a_token_for_each_service_account_into_that_service_alone() {
    let doc = compose();
    let services = services(&doc);
    let config = compose_config();
    let service = |name: &str| services.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
    let setup = service("setup").expect("a `setup` service");
    let accounts = strings(&setup["command"], "setup.command");
    assert!(!accounts.is_empty(), "setup signs no token");
    let setup_mounts = mounts(setup, "setup");

    for account in &accounts {
        assert!(
            config.auth.consumers.iter().any(|c| &c.name == account),
            "setup signs for `{account}`, no consumer of the compose config"
        );
        let target = format!("/tokens/{account}");
        let volume = &setup_mounts
            .iter()
            .find(|m| m.target == target && !m.is_bind() && !m.read_only)
            .unwrap_or_else(|| panic!("setup writes {target}, which no writable volume holds"))
            .source;
        // The services that mount this account's volume may register only as
        // what the account is granted.
        let users: Vec<&str> = services
            .iter()
            .filter(|(n, _)| n != "setup")
            .filter(|(n, s)| mounts(s, n).iter().any(|m| &m.source == volume))
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(
            users.len(),
            1,
            "{volume} (token of {account}) is mounted by {users:?}"
        );
        let grant = config
            .registry
            .grants
            .iter()
            .find(|g| &g.consumer == account)
            .unwrap_or_else(|| panic!("{account} has no registry grant"));
        assert!(
            grant.services.iter().any(|s| s == users[0] || s == "*"),
            "{} runs with the token of {account}, which may register only {:?}",
            users[0],
            grant.services
        );
    }
    // The bus's private key goes to setup and the router only.
    let with_private_key: Vec<&str> = services
        .iter()
        .filter(|(n, s)| mounts(s, n).iter().any(|m| m.source == "bus-key"))
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(with_private_key, ["setup", "router"]);
}

// === Monitoring: Prometheus and Grafana ===

fn yaml_file(path: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read(path))
        .unwrap_or_else(|e| panic!("{path} is not YAML: {e}"));
    docs.remove(0)
}

fn service<'a>(doc: &'a Yaml, name: &str) -> &'a Yaml {
    let found = &doc["services"][name];
    assert!(
        !found.is_badvalue(),
        "docker-compose.yml has no `{name}` service"
    );
    found
}

/// The bind mount of `source` in `service`, with its target.
fn bind_target(service: &Yaml, name: &str, source: &str) -> String {
    let mount = mounts(service, name)
        .into_iter()
        .find(|m| m.source == source)
        .unwrap_or_else(|| panic!("{name} does not mount {source}"));
    assert!(mount.read_only, "{name}: mount {source} read-only");
    mount.target
}

/// The metric names the router defines: every `"tollgate_…"` literal of
/// bus/src/events.rs.
fn exported_metrics() -> BTreeSet<String> {
    let source = read("bus/src/events.rs");
    source
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.starts_with("tollgate_") && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

/// The metric names a PromQL expression reads: identifiers outside quoted
/// label values that start with `tollgate_`, without a histogram's
/// `_bucket`/`_sum`/`_count` suffix when the rest is a known metric.
fn queried_metrics(expr: &str, known: &BTreeSet<String>) -> Vec<String> {
    let unquoted: String = expr.split('"').step_by(2).collect::<Vec<_>>().join(" ");
    unquoted
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| word.starts_with("tollgate_"))
        .map(|word| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    word.strip_suffix(suffix)
                        .filter(|base| known.contains(*base))
                })
                .unwrap_or(word)
                .to_owned()
        })
        .collect()
}

#[test]
fn prometheus_scrapes_the_router_where_it_serves_metrics() {
    let doc = compose();
    let prometheus = service(&doc, "prometheus");
    let config = bind_target(
        prometheus,
        "prometheus",
        "./deploy/prometheus/prometheus.yml",
    );
    let command = strings(&prometheus["command"], "prometheus.command");
    assert!(
        command.contains(&format!("--config.file={config}")),
        "prometheus reads its mounted config: {command:?}"
    );
    let scrape = yaml_file("deploy/prometheus/prometheus.yml");
    let jobs = scrape["scrape_configs"].as_vec().expect("scrape_configs");
    let router = jobs
        .iter()
        .find(|j| j["job_name"].as_str() == Some("tollgate-router"))
        .expect("a tollgate-router job");
    assert_eq!(router["metrics_path"].as_str(), Some("/metrics"));
    let port = compose_config()
        .metrics_socket()
        .expect("the compose router serves metrics")
        .port();
    let targets = strings(&router["static_configs"][0]["targets"], "targets");
    assert_eq!(targets, vec![format!("router:{port}")]);
    assert!(!service(&doc, "router").is_badvalue());
}

#[test]
fn grafana_is_provisioned_with_prometheus_and_the_router_dashboard() {
    let doc = compose();
    let grafana = service(&doc, "grafana");
    let provisioning = bind_target(grafana, "grafana", "./deploy/grafana/provisioning");
    assert_eq!(provisioning, "/etc/grafana/provisioning");
    let dashboards = bind_target(grafana, "grafana", "./deploy/grafana/dashboards");

    let providers = yaml_file("deploy/grafana/provisioning/dashboards/tollgate.yml");
    assert_eq!(
        providers["providers"][0]["options"]["path"].as_str(),
        Some(dashboards.as_str()),
        "the provider loads the mounted dashboards"
    );
    let datasources = yaml_file("deploy/grafana/provisioning/datasources/prometheus.yml");
    let source = &datasources["datasources"][0];
    assert_eq!(source["type"].as_str(), Some("prometheus"));
    let url = source["url"].as_str().unwrap();
    let host = url.trim_start_matches("http://").split(':').next().unwrap();
    assert!(
        !service(&doc, host).is_badvalue(),
        "data source host {host}"
    );
    assert!(
        strings(&service(&doc, host)["ports"], "ports")
            .iter()
            .any(|p| p.ends_with(&format!(":{}", url.rsplit(':').next().unwrap()))),
        "the data source port is Prometheus's"
    );
    let uid = source["uid"].as_str().unwrap();

    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/dashboards/tollgate-router.json")).unwrap();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(!panels.is_empty());
    for panel in panels {
        assert_eq!(panel["datasource"]["uid"], uid, "{}", panel["title"]);
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{} queries nothing", panel["title"]);
    }
}

#[test]
fn the_dashboard_queries_only_metrics_the_router_exports_and_all_of_them() {
    let exported = exported_metrics();
    assert!(exported.contains("tollgate_messages_total"), "{exported:?}");
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/dashboards/tollgate-router.json")).unwrap();
    let mut queried = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().expect("a PromQL expr");
            let names = queried_metrics(expr, &exported);
            assert!(
                !names.is_empty(),
                "{}: no tollgate metric in {expr}",
                panel["title"]
            );
            for name in names {
                assert!(
                    exported.contains(&name),
                    "{}: `{name}` is not exported by the router ({exported:?})",
                    panel["title"]
                );
                queried.insert(name);
            }
        }
    }
    // The skew gauge is the service SDK's, not the router's.
    let router_metrics: BTreeSet<String> = exported
        .into_iter()
        .filter(|m| m != tollgate_bus::events::CLOCK_SKEW_SECONDS)
        .collect();
    let missing: Vec<_> = router_metrics.difference(&queried).collect();
    assert!(missing.is_empty(), "no panel shows {missing:?}");
}

#[test]
fn metric_names_are_read_out_of_promql() {
    let known: BTreeSet<String> = ["tollgate_stage_seconds".to_owned()].into();
    assert_eq!(
        queried_metrics(
            r#"histogram_quantile(0.99, sum by (le) (rate(tollgate_stage_seconds_bucket{stage="tollgate_x"}[5m])))"#,
            &known
        ),
        vec!["tollgate_stage_seconds"]
    );
    assert_eq!(
        queried_metrics("rate(tollgate_nope_bucket[1m])", &known),
        vec!["tollgate_nope_bucket"]
    );
}
