//! `tollgate keys generate`: the bus's Ed25519 key pair for assertions;
//! `tollgate keys service-secret`: a service's HS256 assertion secret,
//! derived from it.

use std::{fs, path::PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

/// Key commands.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Writes `bus-assertion.pem` (private; routers) and `bus-assertion.pub.pem`
    /// (public; services) into a folder.
    Generate(GenerateArgs),
    /// Prints (or writes) the assertion secret of one service, derived from
    /// the bus key: a service holding it asks routers for HS256 assertions,
    /// ~50 µs cheaper a message than Ed25519 ones. Every router holding the
    /// same bus key derives the same secret.
    ServiceSecret(ServiceSecretArgs),
}

/// Options of `tollgate keys service-secret`.
#[derive(Debug, Args)]
pub(crate) struct ServiceSecretArgs {
    /// The service (the first segment of its routes).
    #[arg(long)]
    service: String,
    /// The bus's private key, as the routers hold it.
    #[arg(long, default_value = "keys/bus-assertion.pem")]
    key: PathBuf,
    /// Write the secret into this file (mode 0600) instead of printing it.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Options of `tollgate keys generate`.
#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// Folder to write into.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
}

impl KeysCommand {
    pub(crate) fn run(self) -> anyhow::Result<()> {
        match self {
            Self::Generate(args) => generate(args),
            Self::ServiceSecret(args) => service_secret(args),
        }
    }
}

fn service_secret(args: ServiceSecretArgs) -> anyhow::Result<()> {
    if !tollgate_bus::registry::Registration::is_valid_service_name(&args.service) {
        bail!("{:?} is not a valid service name", args.service);
    }
    let pem = fs::read(&args.key)
        .with_context(|| format!("cannot read the bus key {}", args.key.display()))?;
    let signer = tollgate_auth::AssertionSigner::from_pem(&pem)
        .with_context(|| format!("{} is not the bus's private key", args.key.display()))?;
    let secret = signer.service_secret(&args.service)?.to_text();
    match args.out {
        Some(path) => {
            write_private(&path, &format!("{secret}\n"))?;
            println!("{}", path.display());
        }
        None => println!("{secret}"),
    }
    Ok(())
}

fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let (private, public) = tollgate_auth::generate_assertion_key()?;
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let private_path = args.out.join("bus-assertion.pem");
    let public_path = args.out.join("bus-assertion.pub.pem");
    for path in [&private_path, &public_path] {
        if path.exists() && !args.force {
            bail!("{} exists; pass --force to overwrite", path.display());
        }
    }
    write_private(&private_path, &private)?;
    fs::write(&public_path, public)
        .with_context(|| format!("writing {}", public_path.display()))?;
    println!("{}\n{}", private_path.display(), public_path.display());
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, pem: &str) -> anyhow::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(pem.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, pem: &str) -> anyhow::Result<()> {
    fs::write(path, pem).with_context(|| format!("writing {}", path.display()))
}
