//! The example configuration parses and validates; bad configurations list
//! every problem at once.

use std::path::PathBuf;

use tollgate_bus::config::Config;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the repository root")
        .to_path_buf()
}

#[test]
fn the_example_config_parses_and_validates_once_the_key_exists() {
    let dir = std::env::temp_dir().join(format!(
        "tollgate-example-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    let text = std::fs::read_to_string(repo_root().join("tollgate.example.toml")).unwrap();
    let config = Config::from_toml(&text, &dir).unwrap();
    let problems = config.validate().unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.field == "auth.assertion_key_file"),
        "{problems:?}"
    );
    let (private, _) = tollgate_auth::generate_assertion_key().unwrap();
    std::fs::write(dir.join("keys/bus-assertion.pem"), private).unwrap();
    config
        .validate()
        .unwrap_or_else(|p| panic!("example config invalid: {p:#?}"));
    assert_eq!(config.namespace, "tollgate");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
namespace = "Bad Name!"
amqp_url = "http://nope"
metrics_addr = "not an address"
[router]
prefetch = 0
[registry]
grants = [{ consumer = "ghost", services = ["a.b"] }]
[[routes]]
pattern = "orders.**"
auth = "gateway"
[[translation.mappings]]
service = "x"
from = "1"
to = "1"
request = [{ op = "rename", from = "bad", to = "/y" }]
"#;
    let problems = Config::from_toml(text, ".")
        .unwrap()
        .validate()
        .unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    for expected in [
        "namespace",
        "amqp_url",
        "metrics_addr",
        "router.prefetch",
        "routes",
        "auth.assertion_key_file",
        "registry.grants[0]",
        "translation.mappings",
    ] {
        assert!(
            fields.contains(&expected),
            "missing a problem for {expected}: {problems:#?}"
        );
    }
}

#[test]
fn held_calls_default_to_half_the_prefetch_and_must_stay_below_it() {
    let config = |router: &str| Config::from_toml(&format!("[router]\n{router}"), ".").unwrap();
    assert_eq!(config("prefetch = 64").router.hold_calls(), 32);
    assert_eq!(config("prefetch = 1").router.hold_calls(), 0);
    assert_eq!(config("hold_calls = 0").router.hold_calls(), 0);
    let problems = config("prefetch = 16\nhold_calls = 16")
        .validate()
        .unwrap_err();
    assert!(
        problems.iter().any(|p| p.field == "router.hold_calls"),
        "{problems:#?}"
    );
    let fine = config("prefetch = 16\nhold_calls = 15").validate();
    let fields: Vec<String> = fine
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.field)
        .collect();
    assert!(
        !fields.iter().any(|f| f == "router.hold_calls"),
        "{fields:?}"
    );
}

#[test]
fn a_router_runs_on_one_thread_unless_told_and_on_at_most_64() {
    let config = |router: &str| Config::from_toml(&format!("[router]\n{router}"), ".").unwrap();
    assert_eq!(config("").router.threads, 1);
    assert_eq!(config("threads = 4").router.threads, 4);
    let fields = |router: &str| -> Vec<String> {
        config(router)
            .validate()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.field)
            .collect()
    };
    for bad in ["threads = 0", "threads = 65"] {
        assert!(fields(bad).iter().any(|f| f == "router.threads"), "{bad}");
    }
    for fine in ["threads = 1", "threads = 64"] {
        assert!(
            !fields(fine).iter().any(|f| f == "router.threads"),
            "{fine}"
        );
    }
}

#[test]
fn unknown_fields_are_refused() {
    let err = Config::from_toml("namespace = \"a\"\nnamspace_typo = 1\n", ".").unwrap_err();
    assert!(err.message.contains("namspace_typo"), "{err}");
}

#[test]
fn token_age_and_required_claims_are_checked_at_load() {
    let problems = Config::from_toml(
        "[auth]\nephemeral_assertion_key = true\n[auth.verifier]\nmax_token_age_secs = 0\n",
        ".",
    )
    .unwrap()
    .validate()
    .unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.field == "auth.verifier.max_token_age_secs"),
        "{problems:?}"
    );
    let unknown = Config::from_toml("[auth.verifier]\nrequired_claims = [\"tenant\"]\n", ".")
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("unknown variant `tenant`"), "{unknown}");
    let fine = Config::from_toml(
        "[auth]\nephemeral_assertion_key = true\n[auth.verifier]\nmax_token_age_secs = 600\nrequired_claims = [\"jti\", \"sub\"]\n",
        ".",
    )
    .unwrap();
    fine.validate().unwrap();
}

#[test]
fn amqp_url_takes_a_node_list_and_a_bad_one_is_reported_without_its_password() {
    let field_problems = |url: &str| -> Vec<String> {
        let text = format!("amqp_url = \"{url}\"\n");
        let config = Config::from_toml(&text, ".").unwrap();
        match config.validate() {
            Ok(_) => Vec::new(),
            Err(problems) => problems
                .into_iter()
                .filter(|p| p.field == "amqp_url")
                .map(|p| p.message)
                .collect(),
        }
    };
    let good = "amqp://u:pw1@h1:5701/%2f,amqp://u:pw1@h2:5702/%2f";
    assert_eq!(field_problems(good), Vec::<String>::new());
    let bad = field_problems("amqp://u:pw1@h1:5701/%2f,,amqp://u:pw1@h2:5702/%2f");
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(bad[0].contains("#2"), "{bad:?}");
    let bad = field_problems("amqp://u:pw1@h1:5701/%2f,ftp://u:pw1@h2/%2f");
    assert!(bad[0].contains("ftp://u:***@h2/%2f"), "{bad:?}");
    assert!(!bad[0].contains("pw1"), "{bad:?}");
}
