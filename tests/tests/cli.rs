//! The `tollgate` binary as users run it: token sign → request round trip,
//! exit codes, config check, the central auth service's users file, the
//! demo on both transports, `bench router` and `bench rpc`.

use std::{
    io::Write as _,
    process::{Command, Output, Stdio},
};

use tollgate_tests::support::{Fixture, TestBus, amqp_url, broker_addr, tollgate_binary};

fn tollgate(args: &[&str]) -> Output {
    Command::new(tollgate_binary())
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run tollgate")
}

/// `tollgate ARGS` with `input` on its standard input.
fn tollgate_with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(tollgate_binary())
        .args(args)
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tollgate");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait for tollgate")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_token_calls_a_service_through_the_bus_from_the_command_line() {
    let fx = Fixture::amqp().await;
    let bus = TestBus::start(&fx).await;
    let orders = bus.run_orders(fx.connect().await, |b| b).await;

    let config = bus.config_path();
    let signed = tokio::task::spawn_blocking(move || {
        tollgate(&[
            "token",
            "sign",
            "--config",
            config.to_str().unwrap(),
            "--consumer",
            "web",
            "--ttl",
            "5m",
        ])
    })
    .await
    .unwrap();
    assert!(
        signed.status.success(),
        "token sign failed: {}",
        stderr(&signed)
    );
    let token = stdout(&signed).trim().to_owned();

    let (url, ns) = (amqp_url(), fx.ns.prefix().to_owned());
    let data = r#"{"customer":{"id":"c-1"},"items":[{"sku":"widget","qty":2}]}"#;
    let args = |token: &str| {
        vec![
            "request".to_owned(),
            "orders.create".into(),
            "--data".into(),
            data.into(),
            "--token".into(),
            token.into(),
            "--amqp".into(),
            url.clone(),
            "--namespace".into(),
            ns.clone(),
            "--timeout".into(),
            "10s".into(),
        ]
    };
    let (ok_args, bad_args) = (args(&token), args("not-a-token"));
    let (ok, refused) = tokio::task::spawn_blocking(move || {
        let run = |a: Vec<String>| tollgate(&a.iter().map(String::as_str).collect::<Vec<_>>());
        (run(ok_args), run(bad_args))
    })
    .await
    .unwrap();
    assert!(ok.status.success(), "request failed: {}", stderr(&ok));
    let reply: serde_json::Value =
        serde_json::from_str(&stdout(&ok)).expect("the reply is printed as JSON");
    assert_eq!(reply["placed_by"], "web", "{reply}");
    assert_eq!(
        refused.status.code(),
        Some(3),
        "a refusal exits 3: {}",
        stderr(&refused)
    );
    assert!(
        stderr(&refused).contains("invalid_token"),
        "{}",
        stderr(&refused)
    );

    // `tollgate services` asks the services to announce themselves and lists them.
    let (url, ns) = (amqp_url(), fx.ns.prefix().to_owned());
    let listing = tokio::task::spawn_blocking(move || {
        tollgate(&[
            "services",
            "--amqp",
            &url,
            "--namespace",
            &ns,
            "--wait",
            "2s",
        ])
    })
    .await
    .unwrap();
    assert!(
        listing.status.success(),
        "services failed: {}",
        stderr(&listing)
    );
    let table = stdout(&listing);
    let row = table
        .lines()
        .find(|l| l.starts_with("orders "))
        .unwrap_or_else(|| panic!("no orders row:\n{table}"));
    assert!(
        row.contains("application/json") && row.contains(" 2 ") && row.contains(" eddsa "),
        "{row}"
    );

    orders.shutdown().await.unwrap();
    bus.stop().await;
    fx.cleanup().await;
}

#[test]
fn config_check_lists_problems_and_exits_non_zero() {
    let dir = std::env::temp_dir().join(format!("tollgate-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "namespace = \"Bad!\"\n[router]\nprefetch = 0\n").unwrap();
    let out = tollgate(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("namespace")
            && err.contains("router.prefetch")
            && err.contains("assertion_key_file"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_demo_runs_in_process_and_every_step_behaves() {
    let out = tollgate(&["demo"]);
    assert!(
        out.status.success(),
        "demo failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let table = stdout(&out);
    for code in [
        "token_expired",
        "invalid_token",
        "token_missing",
        "forbidden",
        "no_route",
        "not_from_bus",
        "out_of_stock",
    ] {
        assert!(
            table.contains(code),
            "the demo table lacks {code}:\n{table}"
        );
    }
    assert!(!table.contains("UNEXPECTED"), "{table}");
}

#[test]
fn the_demo_runs_on_rabbitmq() {
    let out = tollgate(&["demo", "--amqp", &amqp_url()]);
    assert!(
        out.status.success(),
        "demo failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("RabbitMQ"), "{}", stdout(&out));
}

/// Runs `tollgate bench ARGS --json` against the test broker; its JSON
/// lines, after checking that it succeeded and printed `scenarios` in order.
fn bench_lines(args: &[&str], scenarios: &[&str]) -> Vec<serde_json::Value> {
    let url = amqp_url();
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", "--amqp", &url]);
    let out = tollgate(&all);
    assert!(out.status.success(), "bench failed:\n{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l["scenario"].as_str().expect("a scenario name"))
        .collect();
    assert_eq!(names, scenarios);
    lines
}

/// Checks that `line[key]` lists `n` positive numbers, one per round.
fn assert_per_round(line: &serde_json::Value, key: &str, n: usize) {
    let values = line[key].as_array().expect(key);
    assert_eq!(values.len(), n, "{key}: {line}");
    assert!(
        values.iter().all(|v| v.as_f64().is_some_and(|v| v > 0.0)),
        "{key}: {line}"
    );
}

/// Checks that `line[key]` is a positive number.
fn assert_positive(line: &serde_json::Value, key: &str) {
    assert!(line[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {line}");
}

/// `bench router` starts every scenario's gate once and alternates slices of
/// traffic between them, each router slice beside one of the relay: each
/// scenario reports one rate per round, each router scenario one ratio per
/// round, and none loses or refuses a message across its slices.
#[test]
fn bench_router_drives_every_gate_in_every_round_and_loses_nothing() {
    let lines = bench_lines(
        &[
            "router",
            "--duration",
            "300ms",
            "--rounds",
            "2",
            "--window",
            "32",
        ],
        &[
            "raw_relay",
            "router_gateway",
            "router_gateway_ed25519",
            "router_service_mode",
        ],
    );
    // The bench reads the broker's CPU only when it runs on this host.
    let addr = broker_addr();
    let host = addr
        .rsplit_once(':')
        .map_or(addr.as_str(), |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let local_broker = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    for line in &lines {
        assert_per_round(line, "rounds_msgs_per_s", 2);
        assert_eq!(line["failures"], 0, "{line}");
        assert_eq!(line["dead_letters"], 0, "{line}");
        assert_positive(line, "peak_rss_mb");
        if local_broker {
            assert_positive(line, "broker_cpu_us_per_msg");
        }
    }
    assert_eq!(lines[0]["relay_failures"], 0, "{}", lines[0]);
    assert!(lines[0].get("rounds_ratio").is_none(), "{}", lines[0]);
    for line in &lines[1..] {
        assert_per_round(line, "rounds_ratio", 2);
    }
}

/// `bench rpc` keeps every scenario up for the whole run and calls through
/// each in every round beside the relay: no call fails, the fresh-token
/// scenario's pool (sized for every round) does not run out, and each
/// scenario reports its figures per round and against the relay.
#[test]
fn bench_rpc_calls_through_every_scenario_in_every_round_without_a_failure() {
    let lines = bench_lines(
        &[
            "rpc",
            "--scenarios",
            "gateway_cached,gateway_fresh_hs256",
            "--duration",
            "300ms",
            "--warm-up",
            "100ms",
            "--rounds",
            "2",
            "--in-flight",
            "8",
        ],
        &["raw_relay", "gateway_cached", "gateway_fresh_hs256"],
    );
    for line in &lines {
        assert_per_round(line, "rounds_calls_per_s", 2);
        assert_eq!(line["failures"], 0, "{line}");
        assert_eq!(line["token_pool_exhausted"], false, "{line}");
        assert_positive(line, "p50_ms");
        assert_positive(line, "router_peak_rss_mb");
    }
    assert_eq!(lines[0]["relay_failures"], 0, "{}", lines[0]);
    assert!(lines[0].get("rounds_ratio").is_none(), "{}", lines[0]);
    for line in &lines[1..] {
        assert_per_round(line, "rounds_ratio", 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_sign_mints_a_token_for_one_purpose_only() {
    let fx = Fixture::memory().await;
    let bus = TestBus::prepare(&fx, "").await;
    let config = bus.config_path();
    let sign = move |purpose: &'static str| {
        let config = config.clone();
        async move {
            let out = tokio::task::spawn_blocking(move || {
                let config = config.to_str().unwrap();
                tollgate(&[
                    "token",
                    "sign",
                    "--config",
                    config,
                    "--consumer",
                    "orders-svc",
                    "--purpose",
                    purpose,
                ])
            })
            .await
            .unwrap();
            assert!(out.status.success(), "token sign failed: {}", stderr(&out));
            stdout(&out).trim().to_owned()
        }
    };
    let (registration, caller) = (sign("registration").await, sign("caller").await);
    let settings = tollgate_bus::config::Config::load(&bus.config_path())
        .unwrap()
        .router_settings()
        .unwrap();
    let code = |v: &tollgate_auth::Verifier, token: &str| {
        v.verify(token)
            .map(|i| i.consumer.clone())
            .map_err(|e| e.code())
    };
    assert_eq!(
        code(&settings.registration_verifier, &registration),
        Ok("orders-svc".to_owned())
    );
    assert_eq!(
        code(&settings.verifier, &registration),
        Err("claims_invalid")
    );
    assert_eq!(
        code(&settings.verifier, &caller),
        Ok("orders-svc".to_owned())
    );
    assert_eq!(
        code(&settings.registration_verifier, &caller),
        Err("claims_invalid")
    );
    bus.stop().await;
    fx.cleanup().await;
}

#[test]
fn users_add_reads_the_password_from_stdin_and_stores_only_an_argon2id_hash() {
    let dir = std::env::temp_dir().join(format!("tollgate-users-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("users.toml");
    let path = file.to_str().unwrap();
    let password = "a long passphrase for ann";

    let added = tollgate_with_stdin(
        &["users", "add", "ann", "--group", "staff", "--file", path],
        format!("{password}\n").as_bytes(),
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(password), "the password itself was stored");
    let users = tollgate_auth::UsersFile::load(&file).unwrap();
    let ann = users.get("ann").unwrap();
    assert_eq!(ann.groups, ["staff"]);
    assert!(
        ann.password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
    );
    assert!(tollgate_auth::verify_password(password, &ann.password_hash).unwrap());

    let empty = tollgate_with_stdin(&["users", "add", "bob", "--file", path], b"");
    assert_eq!(empty.status.code(), Some(1), "{}", stderr(&empty));
    assert!(stderr(&empty).contains("no password"), "{}", stderr(&empty));
    let bad_name = tollgate_with_stdin(&["users", "add", "Bob!", "--file", path], b"pw\n");
    assert_eq!(bad_name.status.code(), Some(1));

    let disabled = tollgate(&["users", "disable", "ann", "--file", path]);
    assert!(disabled.status.success(), "{}", stderr(&disabled));
    let listed = tollgate(&["users", "list", "--file", path]);
    assert!(stdout(&listed).contains("disabled"), "{}", stdout(&listed));
    let unknown = tollgate(&["users", "disable", "nobody", "--file", path]);
    assert_eq!(unknown.status.code(), Some(1));
    std::fs::remove_dir_all(&dir).ok();
}
