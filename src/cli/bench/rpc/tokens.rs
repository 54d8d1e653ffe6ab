//! The tokens callers present: one token on every call, or a pool of
//! distinct tokens (distinct `jti`), signed before anything is timed, handed
//! out one per call so that the router's verifier never sees one twice.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use tollgate_auth::Issuer;

use crate::cli::bench::keys;

/// Where the calls of one scenario run take their tokens from.
#[derive(Clone)]
pub(crate) enum Tokens {
    /// The same token on every call.
    Fixed(Arc<str>),
    /// The next unused token of a pool; none once the pool is spent.
    Fresh {
        pool: Arc<[String]>,
        next: Arc<AtomicUsize>,
    },
}

impl Tokens {
    /// A pass over `pool`, for one scenario's whole run: its router keeps
    /// what it verified, so no token may come round again.
    pub(crate) fn fresh(pool: &Arc<[String]>) -> Self {
        Self::Fresh {
            pool: Arc::clone(pool),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The token for the next call; `None` when the pool is spent.
    pub(crate) fn next(&self) -> Option<String> {
        match self {
            Self::Fixed(token) => Some(token.to_string()),
            Self::Fresh { pool, next } => pool.get(next.fetch_add(1, Ordering::Relaxed)).cloned(),
        }
    }
}

/// How many tokens one scenario can spend at most in `slices` slices: in
/// each, calls at one in flight for `duration` plus calls at full load for
/// `warm_up + duration`, at rates above what this bench reaches on one
/// broker.
pub(crate) fn pool_size(duration: Duration, warm_up: Duration, slices: usize) -> usize {
    const IDLE_CALLS_PER_S: f64 = 2_500.0;
    const LOADED_CALLS_PER_S: f64 = 6_000.0;
    let calls = duration.as_secs_f64() * IDLE_CALLS_PER_S
        + (warm_up + duration).as_secs_f64() * LOADED_CALLS_PER_S;
    (calls * slices as f64).ceil() as usize
}

/// `size` distinct tokens of `consumer`, signed on every core.
pub(crate) async fn sign_pool(
    issuer: &Arc<Issuer>,
    consumer: &'static str,
    size: usize,
) -> anyhow::Result<Arc<[String]>> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let count = size / workers + usize::from(worker < size % workers);
        let issuer = Arc::clone(issuer);
        tasks.push(tokio::task::spawn_blocking(move || {
            (0..count)
                .map(|_| keys::token(&issuer, consumer))
                .collect::<anyhow::Result<Vec<_>>>()
        }));
    }
    let mut pool = Vec::with_capacity(size);
    for task in tasks {
        pool.extend(task.await.context("a signing task")??);
    }
    Ok(pool.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_pass_hands_out_each_token_once() {
        let pool: Arc<[String]> = vec!["a".to_owned(), "b".to_owned()].into();
        let tokens = Tokens::fresh(&pool);
        assert_eq!(tokens.next().as_deref(), Some("a"));
        assert_eq!(tokens.clone().next().as_deref(), Some("b"));
        assert_eq!(tokens.next(), None);
        let fixed = Tokens::Fixed("t".into());
        assert_eq!(
            (fixed.next(), fixed.next()),
            (Some("t".into()), Some("t".into()))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_signed_pool_holds_distinct_tokens() {
        let issuer = Arc::new(keys::BenchKeys::generate().unwrap().issuer().unwrap());
        let pool = sign_pool(&issuer, keys::CALLER_EDDSA, 101).await.unwrap();
        let mut distinct: Vec<&String> = pool.iter().collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 101);
        assert_eq!(pool_size(Duration::from_secs(1), Duration::ZERO, 1), 8_500);
        assert_eq!(pool_size(Duration::from_secs(1), Duration::ZERO, 3), 25_500);
    }
}
