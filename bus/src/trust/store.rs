//! The trust state in Redis: one key per entry, `<prefix><entry key>`
//! holding the [`TrustEntry`] as JSON and expiring (`EXAT`) when the entry
//! stops mattering, so Redis itself keeps the set bounded.
//!
//! The connection ([`crate::redis_connection`]) is made on first use: a
//! command on a broken connection fails (`trust_store_unavailable`) and the
//! manager reconnects in the background.

use redis::{AsyncCommands, aio::ConnectionManager};
use tokio::sync::OnceCell;
use tollgate_auth::{TrustEntry, TrustState};

use crate::redis_connection;

/// Keys read per `SCAN` step.
const SCAN_COUNT: usize = 500;

/// Why Redis could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("trust store unavailable: {0}")]
pub struct TrustStoreError(#[from] redis::RedisError);

/// The trust state's durable copy.
pub struct TrustStore {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    prefix: String,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl TrustStore {
    /// A store at `url` whose keys start with `prefix`; connects on first use.
    /// Errors only when the URL is invalid.
    pub fn new(url: &str, prefix: impl Into<String>) -> Result<Self, TrustStoreError> {
        Ok(Self {
            client: redis::Client::open(url)?,
            connection: OnceCell::new(),
            prefix: prefix.into(),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, TrustStoreError> {
        let manager = self
            .connection
            .get_or_try_init(|| redis_connection::connect(self.client.clone(), 2))
            .await?;
        Ok(manager.clone())
    }

    fn key(&self, entry: &TrustEntry) -> String {
        format!("{}{}", self.prefix, entry.change.key())
    }

    /// Writes `entry` (an undo deletes its key), expiring with it.
    pub async fn write(&self, entry: &TrustEntry) -> Result<(), TrustStoreError> {
        let mut conn = self.connection().await?;
        let key = self.key(entry);
        if entry.change.is_undo() {
            let _: u64 = conn.del(&key).await?;
            return Ok(());
        }
        let json = serde_json::to_string(entry).unwrap_or_default();
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(json);
        if let Some(at) = entry.expires_at {
            set.arg("EXAT").arg(at);
        }
        set.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    /// Every entry in force at `now`. An entry that does not parse (written
    /// by a newer router) is skipped and logged.
    pub async fn load(&self, now: u64) -> Result<TrustState, TrustStoreError> {
        let mut conn = self.connection().await?;
        let pattern = format!("{}*", escape_glob(&self.prefix));
        let mut cursor: u64 = 0;
        let mut keys: Vec<String> = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut conn)
                .await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut entries = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(SCAN_COUNT) {
            // A key that expired between SCAN and MGET reads as nil.
            let values: Vec<Option<String>> = conn.mget(chunk).await?;
            for (key, value) in chunk.iter().zip(values) {
                let Some(value) = value else { continue };
                match serde_json::from_str::<TrustEntry>(&value) {
                    Ok(entry) => entries.push(entry),
                    Err(e) => {
                        tracing::warn!(key = %key, error = %e, "Unreadable trust entry skipped.")
                    }
                }
            }
        }
        Ok(TrustState::from_entries(entries, now))
    }
}

/// `text` with Redis glob characters escaped, for a `MATCH` pattern.
fn escape_glob(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_in_the_prefix_are_escaped() {
        assert_eq!(escape_glob("tollgate:trust:ns:"), "tollgate:trust:ns:");
        assert_eq!(escape_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
