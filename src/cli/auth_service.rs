//! `tollgate auth-service`: runs the central auth service (`[central_auth]`
//! of the config) until SIGTERM or Ctrl-C.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use clap::Args;
use tollgate_bus::{AmqpConfig, AmqpTransport, Transport, config::Config};
use tollgate_services::TokenSource;

use super::serve::{load, redact, terminated};

/// Options of `tollgate auth-service`.
#[derive(Debug, Args)]
pub(crate) struct AuthServiceArgs {
    /// The configuration file (the bus's: `namespace`, `amqp_url`,
    /// consumers for JWTs, and `[central_auth]`).
    #[arg(long, short, default_value = "tollgate.toml")]
    config: PathBuf,
    /// Longest graceful stop after SIGTERM or Ctrl-C, in seconds.
    #[arg(long, env = "TOLLGATE_SHUTDOWN_TIMEOUT_SECS", default_value_t = 20)]
    shutdown_timeout_secs: u64,
}

impl AuthServiceArgs {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let config = load(&self.config)?;
        config
            .validate_central()
            .map_err(|problems| anyhow::anyhow!(super::config::listing(&self.config, &problems)))?;
        let credential = credential(&config)?;
        let amqp = AmqpConfig::new(&config.amqp_url).with_connection_name(format!(
            "tollgate-auth-service-{}",
            config.central_auth.service
        ));
        let transport: Arc<dyn Transport> =
            Arc::new(AmqpTransport::connect(amqp).await.with_context(|| {
                format!("cannot reach RabbitMQ at {}", redact(&config.amqp_url))
            })?);
        let mut running =
            tollgate_services::central_auth::run(&config, Arc::clone(&transport), credential)
                .await
                .context("cannot start the central auth service")?;
        tracing::info!(service = %config.central_auth.service, "Central auth service running.");
        tokio::select! {
            () = terminated() => {}
            ended = running.wait() => {
                transport.close().await.ok();
                ended.context("the central auth service stopped consuming")?;
                bail!("the central auth service stopped: the transport was closed");
            }
        }
        let bound = Duration::from_secs(self.shutdown_timeout_secs);
        tokio::time::timeout(bound, running.shutdown())
            .await
            .context("the graceful shutdown took too long")??;
        transport.close().await.ok();
        Ok(())
    }
}

/// The service account's registration token: `TOLLGATE_SERVICE_TOKEN`, or
/// `[central_auth] token_file` (re-read at every heartbeat).
fn credential(config: &Config) -> anyhow::Result<TokenSource> {
    if let Ok(token) = std::env::var("TOLLGATE_SERVICE_TOKEN") {
        return Ok(TokenSource::fixed(token.trim()));
    }
    let Some(file) = &config.central_auth.token_file else {
        bail!(
            "give the service account's token: TOLLGATE_SERVICE_TOKEN or [central_auth] token_file"
        );
    };
    let path = config.resolve(file);
    read_token(&path)?;
    Ok(TokenSource::from_fn(move || match read_token(&path) {
        Ok(token) => Some(token),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "Cannot read the service token.");
            None
        }
    }))
}

fn read_token(path: &std::path::Path) -> anyhow::Result<String> {
    let token = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    let token = token.trim();
    if token.is_empty() {
        bail!("the token file {} is empty", path.display());
    }
    Ok(token.to_owned())
}
