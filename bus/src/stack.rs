//! Deep stacks for the threads that parse AMQP frames.
//!
//! lapin parses (and drops) header tables recursively on its own I/O thread,
//! which std gives a 2 MiB stack. A header table nested 26,000 levels deep
//! fits in one 128 KiB frame and overflows that stack, aborting the whole
//! process — a single hostile message in a queue would crash every consumer
//! in turn. std sizes threads it spawns by `RUST_MIN_STACK`, read at the first
//! spawn, so a process must have it set from the start: [`ensure_deep_stack`]
//! re-executes the program with it set (Unix `exec`: same pid, same
//! arguments) when it is missing.

/// Stack size, in bytes, given to threads std spawns: enough to parse and
/// drop the deepest table one RabbitMQ frame (128 KiB) can carry. It is
/// address space, committed only as far as it is used.
pub const DEEP_STACK_BYTES: usize = 512 * 1024 * 1024;

/// Stack size for the tokio worker threads that receive lapin's deliveries
/// (dropping a deep table recurses there too).
pub const WORKER_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Re-executes the current program with `RUST_MIN_STACK` set unless it is set
/// already. Call it first thing in `main`, before any thread exists. Returns
/// (instead of re-executing) on non-Unix systems or if `exec` fails, after
/// logging why to stderr.
pub fn ensure_deep_stack() {
    if std::env::var_os("RUST_MIN_STACK").is_some() {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let Ok(program) = std::env::current_exe() else {
            return;
        };
        let error = std::process::Command::new(program)
            .args(std::env::args_os().skip(1))
            .env("RUST_MIN_STACK", DEEP_STACK_BYTES.to_string())
            .exec();
        eprintln!(
            "warning: cannot re-execute with a deep stack ({error}); a hostile header table could crash this process"
        );
    }
}
