//! The trust commands of the CLI, with the operator's token.

use serde_json::json;
use tollgate_tests::support::{amqp_url, tollgate_binary};

use super::harness::*;

/// `tollgate ARGS --token TOKEN` on the test bus: exit code, stdout, stderr.
async fn tollgate(t: &TrustBus, args: &[&str], token: &str) -> (i32, String, String) {
    let output = tokio::process::Command::new(tollgate_binary())
        .args(args)
        .args(["--token", token, "--amqp", &amqp_url(), "--namespace"])
        .arg(t.bus.names.namespace())
        .env("RUST_LOG", "error")
        .output()
        .await
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_change_trust_state_with_the_operators_token() {
    let t = TrustBus::start().await;
    let (alice, web) = (t.bus.token("alice"), t.bus.token("web"));
    let leaked = t.bus.token_with("web", 300, json!({"jti": "cli-1"}));
    assert!(t.served_everywhere(&leaked).await);

    let (code, out, err) = tollgate(&t, &["revoke", "--jti", "cli-1"], &alice).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("applied"), "{out}");
    t.wait_refused_everywhere(&leaked, "token_revoked").await;

    let (code, _, err) = tollgate(&t, &["revoke", "--consumer", "alice"], &web).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("forbidden"), "{err}");
    assert!(
        t.served_everywhere(&alice).await,
        "the refused revocation changed nothing"
    );

    let (code, out, err) = tollgate(&t, &["consumers", "disable", "web"], &alice).await;
    assert_eq!(code, 0, "{out}{err}");
    t.wait_refused_everywhere(&web, "token_revoked").await;
    let (code, out, _) = tollgate(&t, &["revocations", "list"], &alice).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("cli-1") && out.contains("disable_consumer"),
        "{out}"
    );
    let (code, _, err) = tollgate(&t, &["consumers", "enable", "nobody"], &alice).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("invalid_trust_change"), "{err}");
    t.stop().await;
}
