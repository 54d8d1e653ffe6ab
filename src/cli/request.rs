//! `tollgate request` and `tollgate publish`: call a route through the bus.

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde_json::Value;
use tollgate_bus::Envelope;
use tollgate_services::{CallError, Caller, RequestOptions};

use super::{
    bench::parse_duration,
    connect::BusArgs,
    exit::{Exit, REFUSED, TIMEOUT, UNREACHABLE},
};

/// What to send.
#[derive(Debug, Args)]
pub(crate) struct MessageArgs {
    /// The route, `service.method`.
    route: String,
    /// The body, as JSON.
    #[arg(long, default_value = "{}")]
    data: String,
    /// Bearer token (`tollgate token sign …`); none calls anonymously.
    #[arg(long, env = "TOLLGATE_TOKEN")]
    token: Option<String>,
    /// Schema version the body is written in (the router translates).
    #[arg(long)]
    schema_version: Option<String>,
    #[command(flatten)]
    bus: BusArgs,
}

/// Options of `tollgate request`.
#[derive(Debug, Args)]
pub(crate) struct RequestArgs {
    #[command(flatten)]
    message: MessageArgs,
    /// How long to wait for the reply.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
}

impl MessageArgs {
    fn options(&self) -> RequestOptions {
        let mut options = match &self.token {
            Some(token) => RequestOptions::with_token(token.clone()),
            None => RequestOptions::default(),
        };
        if let Some(version) = &self.schema_version {
            options = options.schema_version(version.clone());
        }
        options
    }

    fn body(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.data)
            .with_context(|| format!("--data is not JSON: {}", self.data))
    }

    async fn caller(&self) -> anyhow::Result<Caller> {
        let transport = self.bus.connect("tollgate-cli").await?;
        Caller::connect(transport, self.bus.names())
            .await
            .map_err(|e| call_error(e).into())
    }
}

impl RequestArgs {
    /// Prints the reply (pretty JSON when it is JSON); exit 3 on a refusal, 4 on a timeout.
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let m = &self.message;
        let body = serde_json::to_vec(&m.body()?)?;
        let caller = m.caller().await?;
        let options = m.options().timeout(self.timeout);
        let reply = caller
            .request_raw(&m.route, Envelope::new(body), &options)
            .await
            .map_err(call_error)?;
        match serde_json::from_slice::<Value>(&reply.payload) {
            Ok(json) => println!("{}", serde_json::to_string_pretty(&json)?),
            Err(_) => println!("{}", String::from_utf8_lossy(&reply.payload)),
        }
        Ok(())
    }
}

/// `tollgate publish`: fire and forget.
impl MessageArgs {
    /// Publishes without waiting for a reply; returns once the broker confirmed.
    pub(crate) async fn publish(self) -> anyhow::Result<()> {
        let body = self.body()?;
        let caller = self.caller().await?;
        caller
            .publish(&self.route, &body, &self.options())
            .await
            .map_err(call_error)?;
        println!("published to {}", self.route);
        Ok(())
    }
}

/// Maps a caller error to its exit code and one clear line.
pub(super) fn call_error(e: CallError) -> Exit {
    match e {
        CallError::Rejected {
            code,
            stage,
            message,
        } => Exit::new(REFUSED, format!("refused: {code} at {stage}: {message}")),
        CallError::Timeout { after } => Exit::new(TIMEOUT, format!("no reply within {after:?}")),
        CallError::Transport(e) => Exit::new(UNREACHABLE, format!("cannot send: {e}")),
        other => Exit::new(super::exit::FAILED, other.to_string()),
    }
}
