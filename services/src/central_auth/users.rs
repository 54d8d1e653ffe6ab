//! The users file as the service reads it: reloaded when it changes (so
//! `tollgate users add` and `users disable` take effect without a restart).

use std::{path::PathBuf, sync::Arc, time::SystemTime};

use parking_lot::RwLock;
use tollgate_auth::{LoadError, UsersFile};

/// The users, from a file or fixed.
#[derive(Debug)]
pub struct Users {
    path: Option<PathBuf>,
    loaded: RwLock<(Option<SystemTime>, Arc<UsersFile>)>,
}

impl Users {
    /// Users read from `path` (reloaded when its modification time changes).
    ///
    /// Errors when the file cannot be read or checked now.
    pub fn from_file(path: PathBuf) -> Result<Self, LoadError> {
        let file = UsersFile::load(&path)?;
        let modified = modified_of(&path);
        Ok(Self {
            path: Some(path),
            loaded: RwLock::new((modified, Arc::new(file))),
        })
    }

    /// Fixed users (tests, the demo).
    pub fn fixed(file: UsersFile) -> Self {
        Self {
            path: None,
            loaded: RwLock::new((None, Arc::new(file))),
        }
    }

    /// The users now; a changed file is read again (a file that no longer
    /// loads is logged and the last good one kept).
    pub fn current(&self) -> Arc<UsersFile> {
        let Some(path) = &self.path else {
            return Arc::clone(&self.loaded.read().1);
        };
        let now = modified_of(path);
        {
            let loaded = self.loaded.read();
            if loaded.0 == now {
                return Arc::clone(&loaded.1);
            }
        }
        match UsersFile::load(path) {
            Ok(file) => {
                let file = Arc::new(file);
                *self.loaded.write() = (now, Arc::clone(&file));
                tracing::info!(users = file.users.len(), "Users file reloaded.");
                file
            }
            Err(e) => {
                tracing::error!(error = %e, "Cannot reload the users file; keeping the last one.");
                Arc::clone(&self.loaded.read().1)
            }
        }
    }

    /// Changes the users with `edit` and writes the file (when there is one).
    pub fn update(&self, edit: impl FnOnce(&mut UsersFile)) -> Result<(), LoadError> {
        let mut file = (*self.current()).clone();
        edit(&mut file);
        if let Some(path) = &self.path {
            file.save(path)?;
        }
        let stamp = self.path.as_deref().and_then(modified_of);
        *self.loaded.write() = (stamp, Arc::new(file));
        Ok(())
    }
}

fn modified_of(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
