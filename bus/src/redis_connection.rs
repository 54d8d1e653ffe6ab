//! How Tollgate's programs talk to Redis (the router's trust store, the
//! central auth service's sessions): one redis-rs `ConnectionManager` per
//! store, with the same bounds everywhere.
//!
//! A command on a broken connection fails after at most
//! [`COMMAND_TIMEOUT`] per attempt, and the manager reconnects in the
//! background, so a restarted Redis is used again without restarting the
//! program.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Bound on one Redis command, and on one attempt to connect.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest pause between two attempts to reconnect, in milliseconds.
const MAX_RECONNECT_DELAY_MS: u64 = 1_000;

/// A connection manager on `client`, which tries `retries` more times when
/// connecting (or reconnecting) fails, backing off up to a second between
/// attempts.
///
/// # Errors
///
/// When Redis cannot be reached within those attempts.
pub async fn connect(
    client: redis::Client,
    retries: usize,
) -> Result<ConnectionManager, redis::RedisError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(COMMAND_TIMEOUT)
        .set_response_timeout(COMMAND_TIMEOUT)
        .set_number_of_retries(retries)
        .set_max_delay(MAX_RECONNECT_DELAY_MS);
    ConnectionManager::new_with_config(client, config).await
}
