//! The tokio runtime a command runs on: a work-stealing one for most
//! commands, and for a router (and the bench's relay, which stands beside
//! it) the number of threads its config asks for — one thread by default.

use std::{future::Future, num::NonZeroU16};

use anyhow::Context as _;
use tollgate_bus::stack::WORKER_STACK_BYTES;

/// Runs the future `make` builds to completion on a runtime of `threads`
/// threads: one is a current-thread runtime (every task on one thread, no
/// cross-thread wake-ups), more a work-stealing runtime with that many
/// workers. Its threads (the one of a current-thread runtime and the blocking
/// pool's included) have [`WORKER_STACK_BYTES`] of stack for the deep data a
/// delivery may carry.
pub(crate) fn run<F, Fut, T>(threads: NonZeroU16, make: F) -> anyhow::Result<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<T>>,
    T: Send + 'static,
{
    if threads == NonZeroU16::MIN {
        // A current-thread runtime runs its tasks on the thread that
        // calls `block_on`: a thread of our own, with a deep stack.
        let one = std::thread::Builder::new()
            .name("tollgate-runtime".into())
            .stack_size(WORKER_STACK_BYTES)
            .spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .thread_stack_size(WORKER_STACK_BYTES)
                    .enable_all()
                    .build()
                    .context("building the runtime")?
                    .block_on(make())
            })
            .context("starting the runtime's thread")?;
        one.join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    } else {
        work_stealing(Some(threads.get().into()))?.block_on(make())
    }
}

/// A work-stealing runtime with `workers` workers (`None`: one per core).
pub(crate) fn work_stealing(workers: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = workers {
        builder.worker_threads(workers);
    }
    Ok(builder
        .thread_stack_size(WORKER_STACK_BYTES)
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread_name() -> Option<String> {
        std::thread::current().name().map(str::to_owned)
    }

    #[test]
    fn one_thread_runs_every_task_on_the_same_thread() {
        let names = run(NonZeroU16::MIN, || async {
            let spawned = tokio::spawn(async { thread_name() }).await?;
            Ok((thread_name(), spawned))
        })
        .unwrap();
        assert_eq!(names.0.as_deref(), Some("tollgate-runtime"));
        assert_eq!(names.0, names.1);
    }

    #[test]
    fn more_threads_run_on_that_many_workers() {
        let workers = run(NonZeroU16::new(3).unwrap(), || async {
            Ok(tokio::runtime::Handle::current().metrics().num_workers())
        })
        .unwrap();
        assert_eq!(workers, 3);
    }

    #[test]
    fn an_error_of_the_command_is_returned() {
        let err: anyhow::Result<()> = run(NonZeroU16::MIN, || async { anyhow::bail!("refused") });
        assert_eq!(err.unwrap_err().to_string(), "refused");
    }
}
