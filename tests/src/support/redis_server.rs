//! Redis for the central auth tests: the shared one (`TOLLGATE_REDIS_URL`,
//! never flushed: each test writes under its own key prefix and deletes it),
//! or a private `redis-server` on a free port that a test may stop and start.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use super::wait_until;

/// The shared Redis every test may use (`TOLLGATE_REDIS_URL`, default local).
pub fn redis_url() -> String {
    std::env::var("TOLLGATE_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A `redis-server` of one test, without persistence, on a port of its own.
pub struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts one on a free port and waits until it answers.
    ///
    /// # Panics
    /// When `redis-server` is not installed (`scripts/test` installs it) or
    /// does not answer within 10 s.
    pub async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut redis = Self { port, child: None };
        redis.restart().await;
        redis
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it (SIGKILL: a crash) and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Starts it again on the same port (empty: it keeps nothing).
    pub async fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test installs it)");
        self.child = Some(child);
        let url = self.url();
        wait_until(
            "the private redis-server to answer",
            Duration::from_secs(10),
            async || ping(&url).await,
        )
        .await;
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether Redis at `url` answers PING.
pub(super) async fn ping(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .is_ok()
}

/// Deletes every key under `prefix` on the Redis at `url`.
pub async fn delete_prefix(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
}
