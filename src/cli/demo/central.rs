//! The demo's central mode: the central auth service (sessions in memory),
//! a user's login, a call with the session on a central-mode route, a
//! logout, and the same session refused at once.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use tollgate_auth::{AssertionVerifier, User, UsersFile, hash_password};
use tollgate_bus::{BusNames, Envelope, Transport, config::Config};
use tollgate_services::{
    CallError, RequestOptions, RunningService, TokenSource,
    central_auth::{self, AuthCore, SessionsAnnouncer},
};

use super::{bus::DemoBus, table::Row, tokens::Tokens};

/// The demo's user, in the group the policy lets place and read orders.
const USER: &str = "ann";
/// Her password (the demo's only; a real one comes from `tollgate users add`).
const PASSWORD: &str = "demo passphrase for ann";
/// The service account of the auth service in `tollgate.example.toml`.
const ACCOUNT: &str = "auth-svc";

/// Starts the central auth service of `config` with sessions in memory.
pub(super) async fn start_auth_service(
    config: &Config,
    tokens: &Tokens,
    bus_key: AssertionVerifier,
    transport: Arc<dyn Transport>,
    names: &BusNames,
) -> anyhow::Result<RunningService> {
    let service = config.central_auth.service.as_str();
    let credential = TokenSource::fixed(tokens.registration(ACCOUNT)?);
    let mut users = UsersFile::default();
    users.upsert(User {
        name: USER.into(),
        password_hash: hash_password(PASSWORD)?,
        groups: vec!["frontend".into()],
        scopes: vec!["orders.write".into()],
        disabled: false,
    });
    let announcer = SessionsAnnouncer::new(
        Arc::clone(&transport),
        names.clone(),
        service,
        credential.clone(),
    );
    let core = AuthCore::in_memory(users, Some(announcer))?;
    let running = central_auth::service(Arc::new(core), service, credential, bus_key)?
        .run(transport, names.clone())
        .await?;
    Ok(running)
}

/// Login, a central-mode call, logout, the same call refused.
pub(super) async fn play(bus: &DemoBus, timeout: Duration) -> anyhow::Result<Vec<Row>> {
    let web = RequestOptions::with_token(bus.tokens.valid("web", json!({}))?).timeout(timeout);
    let login = json!({"user": USER, "password": PASSWORD});
    let (mut row, reply) = call(bus, "auth.login", "web", &web, &login, None).await;
    row.scenario = "user login (central auth)";
    let session = reply
        .as_ref()
        .and_then(|r| r.get("token"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !session.is_empty() {
        row.detail = format!(
            "session {}… (256 random bits, stored hashed)",
            &session[..8]
        );
    }
    let mut rows = vec![row];
    let as_ann = RequestOptions::with_token(session.clone()).timeout(timeout);
    let get = json!({"order_id": "ord-000001"});
    let who = format!("{USER} (session)");
    let (mut row, _) = call(bus, "orders.get", &who, &as_ann, &get, None).await;
    row.scenario = "session token, central mode";
    rows.push(row);
    let (mut row, _) = call(
        bus,
        "auth.logout",
        "web",
        &web,
        &json!({"token": session}),
        None,
    )
    .await;
    row.scenario = "logout";
    rows.push(row);
    let (mut row, _) = call(
        bus,
        "orders.get",
        &who,
        &as_ann,
        &get,
        Some("invalid_token"),
    )
    .await;
    row.scenario = "same session after logout";
    rows.push(row);
    Ok(rows)
}

/// One call; the row (scenario filled in by the caller) and the JSON reply.
async fn call(
    bus: &DemoBus,
    route: &str,
    who: &str,
    options: &RequestOptions,
    body: &Value,
    expect: Option<&str>,
) -> (Row, Option<Value>) {
    let payload = serde_json::to_vec(body).unwrap_or_default();
    let result = bus
        .caller
        .request_raw(route, Envelope::new(payload), options)
        .await;
    let (outcome, code, detail, reply) = match result {
        Ok(reply) => (
            "delivered",
            None,
            String::from_utf8_lossy(&reply.payload).into_owned(),
            serde_json::from_slice(&reply.payload).ok(),
        ),
        Err(CallError::Rejected {
            code,
            stage,
            message,
        }) => ("refused", Some(code), format!("{message} [{stage}]"), None),
        Err(other) => (
            "failed",
            Some(other.code().to_owned()),
            other.to_string(),
            None,
        ),
    };
    let row = Row {
        scenario: "",
        sent: format!("{route} as {who}"),
        outcome,
        as_expected: code.as_deref() == expect,
        code: code.unwrap_or_else(|| "-".into()),
        detail,
    };
    (row, reply)
}
