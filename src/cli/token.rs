//! `tollgate token sign`: a token for a consumer, signed with its own key.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context as _, anyhow};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Map, Value};
use tollgate_auth::Issuer;
use tollgate_bus::config::TokenPurpose;

use super::bench::parse_duration;

/// Token commands.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Prints a JWT for `--consumer`, signed with the consumer's newest signing key.
    Sign(SignArgs),
}

/// Options of `tollgate token sign`.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The router configuration holding the consumer and its key.
    #[arg(long, short, default_value = "tollgate.toml")]
    config: PathBuf,
    /// Consumer name.
    #[arg(long)]
    consumer: String,
    /// Lifetime (`30s`, `15m`, `2h` is `120m`).
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    ttl: Duration,
    /// What the token is for: `caller` (calls routes) or `registration` (a service
    /// account registering its service). Sets `aud` to match the router's config.
    #[arg(long, value_enum, default_value_t = Purpose::Caller)]
    purpose: Purpose,
    /// Extra claim `name=value`; the value is JSON if it parses, else a string. Repeatable.
    #[arg(long = "claim", value_parser = parse_claim)]
    claims: Vec<(String, Value)>,
}

/// `--purpose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Purpose {
    /// A caller's token.
    Caller,
    /// A service account's registration token.
    Registration,
}

impl From<Purpose> for TokenPurpose {
    fn from(purpose: Purpose) -> Self {
        match purpose {
            Purpose::Caller => Self::Caller,
            Purpose::Registration => Self::Registration,
        }
    }
}

fn parse_claim(s: &str) -> Result<(String, Value), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not name=value"))?;
    if name.is_empty() {
        return Err(format!("`{s}` has an empty claim name"));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((name.to_owned(), value))
}

impl TokenCommand {
    pub(crate) fn run(self) -> anyhow::Result<()> {
        let Self::Sign(args) = self;
        let config = super::serve::load(&args.config)?;
        let store = config
            .consumers()
            .map_err(|problems| anyhow!(super::config::listing(&args.config, &problems)))?;
        let mut issuer = Issuer::new(Arc::new(store))
            .with_consumer_claim(config.auth.verifier.consumer_claim.clone());
        if let Some(audience) = config.audience_for(args.purpose.into()) {
            issuer = issuer.with_audience(audience);
        }
        let claims: Map<String, Value> = args.claims.into_iter().collect();
        let token = issuer
            .sign(&args.consumer, args.ttl, claims)
            .with_context(|| format!("cannot sign a token for `{}`", args.consumer))?;
        println!("{token}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::parse_claim;

    #[test]
    fn claims_are_json_when_they_parse() {
        assert_eq!(
            parse_claim("scope=orders.read"),
            Ok(("scope".into(), json!("orders.read")))
        );
        assert_eq!(parse_claim("n=3"), Ok(("n".into(), json!(3))));
        assert_eq!(
            parse_claim("aud=[\"a\",\"b\"]"),
            Ok(("aud".into(), json!(["a", "b"])))
        );
        assert!(parse_claim("novalue").is_err());
        assert!(parse_claim("=x").is_err());
    }
}
