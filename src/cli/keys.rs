//! `tollgate keys generate`: the bus's Ed25519 key pair for assertions.

use std::{fs, path::PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

/// Key commands.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Writes `bus-assertion.pem` (private; routers) and `bus-assertion.pub.pem`
    /// (public; services) into a folder.
    Generate(GenerateArgs),
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
        let Self::Generate(args) = self;
        let (private, public) = tollgate_auth::generate_assertion_key()?;
        fs::create_dir_all(&args.out)
            .with_context(|| format!("creating {}", args.out.display()))?;
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
