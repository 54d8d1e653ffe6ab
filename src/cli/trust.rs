//! `tollgate revoke`, `tollgate revocations …` and `tollgate consumers …`:
//! change the bus's trust state through the router's own routes
//! (`tollgate.trust.*`) with the operator's token; the policy decides who may.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::{ArgGroup, Args, Subcommand};
use serde_json::Value;
use tollgate_auth::{Algorithm, CredentialSpec, TrustChange};
use tollgate_bus::trust::{CONSUMERS_METHOD, LIST_METHOD, REVOKE_METHOD, TRUST_SERVICE};
use tollgate_services::{Caller, RequestOptions};

use super::{bench::parse_duration, connect::BusArgs, request::call_error};

/// Who asks, and where.
#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    /// The operator's bearer token; the policy must allow it `tollgate.trust.*`.
    #[arg(long, env = "TOLLGATE_TOKEN")]
    token: Option<String>,
    /// How long to wait for the router's answer.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    bus: BusArgs,
}

/// Options of `tollgate revoke`: exactly one of `--jti`, `--subject`,
/// `--consumer`, `--issued-before` (which `--consumer` may narrow).
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["jti", "subject", "consumer", "issued_before"]).multiple(true)))]
pub(crate) struct RevokeArgs {
    /// Revoke the token with this `jti`.
    #[arg(long, conflicts_with_all = ["subject", "consumer", "issued_before"])]
    jti: Option<String>,
    /// Revoke every token of this subject (`sub`).
    #[arg(long, conflicts_with_all = ["consumer", "issued_before"])]
    subject: Option<String>,
    /// Revoke every token of this consumer (until `tollgate revocations
    /// lift`), or, with `--issued-before`, those issued before it.
    #[arg(long)]
    consumer: Option<String>,
    /// Revoke the tokens issued before this time (seconds since the epoch).
    #[arg(long)]
    issued_before: Option<u64>,
    /// With `--jti` or `--subject`: when its tokens expire (seconds since the
    /// epoch), so the entry can go then; default the longest token lifetime.
    #[arg(long, conflicts_with_all = ["consumer", "issued_before"])]
    until: Option<u64>,
    #[command(flatten)]
    admin: AdminArgs,
}

/// `tollgate revocations …`.
#[derive(Debug, Subcommand)]
pub(crate) enum RevocationsCommand {
    /// Lists the revocations and consumer changes in force.
    List(AdminArgs),
    /// Lifts `tollgate revoke --consumer NAME`.
    Lift {
        /// The consumer.
        consumer: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// `tollgate consumers …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConsumersCommand {
    /// Refuses a consumer's tokens on every router until enabled.
    Disable {
        /// The consumer.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Enables a consumer (also one its config disables).
    Enable {
        /// The consumer.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Adds a key to a consumer (a rotation's first step).
    AddCredential(AddCredentialArgs),
    /// Removes a consumer's key (a rotation's last step).
    RemoveCredential {
        /// The consumer.
        name: String,
        /// The key id.
        #[arg(long)]
        kid: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// Options of `tollgate consumers add-credential`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("key").required(true).args(["secret_base64", "public_key_file"])))]
pub(crate) struct AddCredentialArgs {
    /// The consumer.
    name: String,
    /// The new key's id (tokens name it in their header).
    #[arg(long)]
    kid: String,
    /// The one algorithm accepted for it (`HS256`, `RS256`, `ES256`, `EdDSA`, …).
    #[arg(long)]
    algorithm: Algorithm,
    /// An HMAC secret, base64 (stored in Redis as given).
    #[arg(long)]
    secret_base64: Option<String>,
    /// A PEM public key file, sent inline.
    #[arg(long)]
    public_key_file: Option<PathBuf>,
    #[command(flatten)]
    admin: AdminArgs,
}

impl RevokeArgs {
    /// Sends the revocation; prints the entry taken.
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let change = match (self.jti, self.subject, self.consumer, self.issued_before) {
            (Some(jti), ..) => TrustChange::RevokeToken {
                jti,
                until: self.until,
            },
            (None, Some(subject), ..) => TrustChange::RevokeSubject {
                subject,
                until: self.until,
            },
            (None, None, consumer, Some(before)) => {
                TrustChange::RevokeIssuedBefore { consumer, before }
            }
            (None, None, Some(consumer), None) => TrustChange::RevokeConsumer { consumer },
            (None, None, None, None) => anyhow::bail!("say what to revoke"),
        };
        self.admin.send(REVOKE_METHOD, &change).await
    }
}

impl RevocationsCommand {
    /// Runs the subcommand.
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        match self {
            Self::List(admin) => admin.send(LIST_METHOD, &serde_json::json!({})).await,
            Self::Lift { consumer, admin } => {
                let change = TrustChange::ReinstateConsumer { consumer };
                admin.send(REVOKE_METHOD, &change).await
            }
        }
    }
}

impl ConsumersCommand {
    /// Runs the subcommand.
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let (change, admin) = match self {
            Self::Disable { name, admin } => {
                (TrustChange::DisableConsumer { consumer: name }, admin)
            }
            Self::Enable { name, admin } => (TrustChange::EnableConsumer { consumer: name }, admin),
            Self::RemoveCredential { name, kid, admin } => (
                TrustChange::RemoveCredential {
                    consumer: Some(name),
                    kid,
                },
                admin,
            ),
            Self::AddCredential(args) => {
                let public_key = match &args.public_key_file {
                    Some(path) => Some(
                        std::fs::read_to_string(path)
                            .with_context(|| format!("reading {}", path.display()))?,
                    ),
                    None => None,
                };
                let credential = CredentialSpec {
                    kid: Some(args.kid),
                    algorithm: Some(args.algorithm),
                    secret_base64: args.secret_base64,
                    public_key,
                    ..CredentialSpec::default()
                };
                let change = TrustChange::AddCredential {
                    consumer: args.name,
                    credential,
                };
                (change, args.admin)
            }
        };
        admin.send(CONSUMERS_METHOD, &change).await
    }
}

impl AdminArgs {
    /// Sends `body` to `tollgate.<method>` and prints the answer as JSON; a
    /// refusal exits 3 (`forbidden`, `invalid_trust_change`,
    /// `trust_store_unavailable`, …).
    async fn send(self, method: &str, body: &impl serde::Serialize) -> anyhow::Result<()> {
        let transport = self.bus.connect("tollgate-cli").await?;
        let caller = Caller::connect(transport, self.bus.names())
            .await
            .map_err(call_error)?;
        let mut options = match self.token {
            Some(token) => RequestOptions::with_token(token),
            None => RequestOptions::default(),
        };
        options = options.timeout(self.timeout);
        let route = format!("{TRUST_SERVICE}.{method}");
        let reply: Value = caller
            .request(&route, body, &options)
            .await
            .map_err(call_error)?;
        println!("{}", serde_json::to_string_pretty(&reply)?);
        Ok(())
    }
}
