//! Test support and conformance suites for Tollgate's integration tests.
//!
//! Every test gets its own [`support::Namespace`]: a random prefix for each
//! exchange and queue, deleted at the end, so tests run in parallel on one
//! shared RabbitMQ.

// This crate is test code: a failed expectation should panic loudly.
#![allow(clippy::unwrap_used)]

pub mod conformance;
pub mod support;

/// Instantiates each `async fn case(fx: &Fixture)` of the calling test file
/// twice, as `memory::case` and `amqp::case`: the same assertions on the
/// in-process transport and on RabbitMQ.
#[macro_export]
macro_rules! on_both_transports {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fx = $crate::support::Fixture::memory().await;
                    super::$case(&fx).await;
                    fx.cleanup().await;
                }
            )*
        }
        mod amqp {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fx = $crate::support::Fixture::amqp().await;
                    super::$case(&fx).await;
                    fx.cleanup().await;
                }
            )*
        }
    };
}
