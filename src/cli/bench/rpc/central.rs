//! The central auth service of the `central_*` scenarios: run in the bench
//! process beside the echo service (sessions in memory, one user), and the
//! caller's login, whose session every measured call presents.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use tollgate_auth::{User, UsersFile, hash_password};
use tollgate_bus::Transport;
use tollgate_services::{
    Caller, RequestOptions, RunningService, TokenSource,
    central_auth::{self, AuthCore, LoginReply, LoginRequest},
};

use crate::cli::bench::{
    bench_bus::{AUTH, BenchBus},
    router_config::BENCH_USERS,
};

/// The bench's user.
const USER: &str = "bench-user";
/// Her password (made up for the run; nothing else knows it).
const PASSWORD: &str = "a passphrase only this bench run uses";

/// Starts the central auth service on `transport`, registering with `registration_token`.
pub(super) async fn start(
    bus: &BenchBus,
    registration_token: &str,
    transport: Arc<dyn Transport>,
) -> anyhow::Result<RunningService> {
    let mut users = UsersFile::default();
    users.upsert(User {
        name: USER.into(),
        password_hash: hash_password(PASSWORD)?,
        groups: vec![BENCH_USERS.into()],
        scopes: Vec::new(),
        disabled: false,
    });
    let core = AuthCore::in_memory(users, None)?;
    let credential = TokenSource::fixed(registration_token.to_owned());
    Ok(
        central_auth::service(Arc::new(core), AUTH, credential, bus.bus_key()?)?
            .run(transport, bus.names.clone())
            .await?,
    )
}

/// Logs the bench's user in (calling `auth.login` with the caller's `token`)
/// and returns the session token.
pub(super) async fn login(caller: &Caller, token: &str) -> anyhow::Result<String> {
    let options = RequestOptions::with_token(token).timeout(Duration::from_secs(10));
    let request = LoginRequest {
        user: USER.into(),
        password: PASSWORD.into(),
        source: None,
    };
    let reply: LoginReply = caller
        .request(&format!("{AUTH}.login"), &request, &options)
        .await
        .context("logging in to the central auth service")?;
    Ok(reply.token)
}
