//! The central auth service's users: a TOML file of names, argon2id password
//! hashes, groups, scopes and a `disabled` flag (`tollgate users add NAME`
//! writes it).
//!
//! ```toml
//! [[users]]
//! name = "ann"
//! password_hash = "$argon2id$v=19$m=19456,t=2,p=1$…"
//! groups = ["staff"]
//! scopes = ["orders.write"]
//! disabled = false
//! ```

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{Identity, error::LoadError, password};

/// One user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Login name: 1–64 characters of a-z, 0-9, `.`, `-`, `_` and `@`.
    pub name: String,
    /// The password's argon2id hash (PHC string).
    pub password_hash: String,
    /// Groups, as the access policy sees them.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Scopes, as the access policy sees them.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// A disabled user cannot log in, and has no live session.
    #[serde(default)]
    pub disabled: bool,
}

/// The users file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersFile {
    /// Every user.
    #[serde(default)]
    pub users: Vec<User>,
}

// === User ===

impl User {
    /// Whether `name` is a valid login name.
    pub fn is_valid_name(name: &str) -> bool {
        (1..=64).contains(&name.len())
            && name.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'.' | b'-' | b'_' | b'@')
            })
    }

    /// The identity a session of this user carries (`consumer` = `subject` =
    /// the user's name), expiring at `expires_at`.
    pub fn identity(&self, expires_at: u64) -> Identity {
        let mut identity = Identity::new(self.name.as_str())
            .with_subject(self.name.as_str())
            .with_groups(self.groups.iter().cloned())
            .with_scopes(self.scopes.iter().cloned());
        identity.expires_at = Some(expires_at);
        identity
    }
}

// === UsersFile ===

impl UsersFile {
    /// Reads and checks `path`; a missing file is an empty one (the first
    /// `users add` creates it).
    ///
    /// Errors when the file cannot be read or parsed, a name is invalid or
    /// repeated, or a hash is not argon2id at the minimum parameters.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(LoadError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let file: Self = toml::from_str(&text).map_err(|source| LoadError::Toml {
            path: path.to_path_buf(),
            source,
        })?;
        file.check()?;
        Ok(file)
    }

    /// Writes the file atomically (a temporary file renamed over it), readable
    /// by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), LoadError> {
        let io = |source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let text = toml::to_string_pretty(self).map_err(|e| LoadError::Invalid(e.to_string()))?;
        let tmp = temp_path(path);
        write_private(&tmp, text.as_bytes()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// The user called `name`.
    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// Adds `user`, or replaces the one of the same name.
    pub fn upsert(&mut self, user: User) {
        match self.users.iter_mut().find(|u| u.name == user.name) {
            Some(existing) => *existing = user,
            None => self.users.push(user),
        }
    }

    /// Sets `name`'s `disabled` flag; false when there is no such user.
    pub fn set_disabled(&mut self, name: &str, disabled: bool) -> bool {
        self.users
            .iter_mut()
            .find(|u| u.name == name)
            .map(|u| u.disabled = disabled)
            .is_some()
    }

    fn check(&self) -> Result<(), LoadError> {
        let mut seen = HashSet::new();
        for user in &self.users {
            if !User::is_valid_name(&user.name) {
                return Err(LoadError::Invalid(format!(
                    "invalid user name `{}`",
                    user.name
                )));
            }
            if !seen.insert(user.name.as_str()) {
                return Err(LoadError::Invalid(format!("user `{}` twice", user.name)));
            }
            password::check_hash(&user.password_hash)
                .map_err(|e| LoadError::Invalid(format!("user `{}`: {e}", user.name)))?;
        }
        Ok(())
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> User {
        User {
            name: name.into(),
            password_hash: password::hash_password("pw").unwrap(),
            groups: vec!["staff".into()],
            scopes: vec![],
            disabled: false,
        }
    }

    #[test]
    fn saves_loads_and_replaces_users() {
        let dir = std::env::temp_dir().join(format!("tollgate-users-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users.toml");
        assert_eq!(UsersFile::load(&path).unwrap(), UsersFile::default());
        let mut file = UsersFile::default();
        file.upsert(user("ann"));
        file.upsert(user("bob"));
        file.upsert(User {
            groups: vec![],
            ..user("ann")
        });
        assert!(file.set_disabled("bob", true));
        assert!(!file.set_disabled("carl", true));
        file.save(&path).unwrap();
        let loaded = UsersFile::load(&path).unwrap();
        assert_eq!(loaded, file);
        assert!(loaded.get("ann").unwrap().groups.is_empty());
        assert!(loaded.get("bob").unwrap().disabled);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn refuses_bad_names_repeats_and_weak_hashes() {
        let bad = |text: &str| {
            let file: UsersFile = toml::from_str(text).unwrap();
            file.check().unwrap_err()
        };
        let hash = password::hash_password("pw").unwrap();
        bad(&format!(
            "[[users]]\nname = \"Ann\"\npassword_hash = \"{hash}\"\n"
        ));
        bad(&format!(
            "[[users]]\nname = \"a\"\npassword_hash = \"{hash}\"\n[[users]]\nname = \"a\"\npassword_hash = \"{hash}\"\n"
        ));
        bad("[[users]]\nname = \"a\"\npassword_hash = \"plain\"\n");
    }
}
