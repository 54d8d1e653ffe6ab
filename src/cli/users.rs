//! `tollgate users`: the central auth service's users file.

use std::{
    io::Read as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use tollgate_auth::{User, UsersFile, hash_password};

/// `tollgate users …`.
#[derive(Debug, Subcommand)]
pub(crate) enum UsersCommand {
    /// Adds a user (or sets a new password), reading the password from
    /// standard input (its first line).
    Add(AddArgs),
    /// Disables a user: no new login, and every session ends at its next use
    /// (`auth.disable_user` on the bus also empties the routers' caches at once).
    Disable(NameArgs),
    /// Enables a disabled user again.
    Enable(NameArgs),
    /// Lists the users (names, groups, scopes, disabled).
    List(FileArgs),
}

/// Where the users file is.
#[derive(Debug, Args)]
pub(crate) struct FileArgs {
    /// The users file; default: `[central_auth] users_file` of `--config`.
    #[arg(long)]
    file: Option<PathBuf>,
    /// The configuration naming the users file.
    #[arg(long, short, default_value = "tollgate.toml")]
    config: PathBuf,
}

/// One user.
#[derive(Debug, Args)]
pub(crate) struct NameArgs {
    /// The user's name.
    name: String,
    #[command(flatten)]
    file: FileArgs,
}

/// `users add`.
#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// The user's name (a-z, 0-9, `.`, `-`, `_`, `@`).
    name: String,
    /// A group (repeat for more).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// A scope (repeat for more).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    #[command(flatten)]
    file: FileArgs,
}

impl UsersCommand {
    pub(crate) fn run(self) -> anyhow::Result<()> {
        match self {
            Self::Add(args) => add(args),
            Self::Disable(args) => set_disabled(&args, true),
            Self::Enable(args) => set_disabled(&args, false),
            Self::List(args) => list(&args),
        }
    }
}

impl FileArgs {
    fn path(&self) -> anyhow::Result<PathBuf> {
        if let Some(file) = &self.file {
            return Ok(file.clone());
        }
        let config = super::serve::load(&self.config)?;
        let Some(file) = &config.central_auth.users_file else {
            bail!(
                "{} has no [central_auth] users_file; give --file",
                self.config.display()
            );
        };
        Ok(config.resolve(file))
    }
}

fn add(args: AddArgs) -> anyhow::Result<()> {
    if !User::is_valid_name(&args.name) {
        bail!(
            "invalid user name `{}`: 1–64 of a-z, 0-9, . - _ @",
            args.name
        );
    }
    let mut input = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut input)
        .context("cannot read the password from standard input")?;
    let password = input.lines().next().unwrap_or_default();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    let password_hash = hash_password(password)?;
    let path = args.file.path()?;
    let mut file = load(&path)?;
    file.upsert(User {
        name: args.name.clone(),
        password_hash,
        groups: args.groups,
        scopes: args.scopes,
        disabled: false,
    });
    file.save(&path)?;
    eprintln!("user `{}` saved in {}", args.name, path.display());
    Ok(())
}

fn set_disabled(args: &NameArgs, disabled: bool) -> anyhow::Result<()> {
    let path = args.file.path()?;
    let mut file = load(&path)?;
    if !file.set_disabled(&args.name, disabled) {
        bail!("no user `{}` in {}", args.name, path.display());
    }
    file.save(&path)?;
    let state = if disabled { "disabled" } else { "enabled" };
    eprintln!("user `{}` {state}", args.name);
    Ok(())
}

fn list(args: &FileArgs) -> anyhow::Result<()> {
    let file = load(&args.path()?)?;
    for u in &file.users {
        let state = if u.disabled { "disabled" } else { "enabled" };
        println!(
            "{:<24} {state:<8} groups={} scopes={}",
            u.name,
            u.groups.join(","),
            u.scopes.join(",")
        );
    }
    Ok(())
}

fn load(path: &Path) -> anyhow::Result<UsersFile> {
    UsersFile::load(path).with_context(|| format!("cannot load {}", path.display()))
}
