//! Deep stacks for the threads that parse AMQP frames.
//!
//! Nested data is parsed and dropped recursively: header tables (the AMQP
//! client, `tollgate-wire`, refuses tables nested past 128 levels before
//! parsing them, but a table built in process is not checked), and payloads
//! in the codecs' decoders. One 128 KiB frame can nest 26,000 levels, enough
//! to overflow a 2 MiB stack and abort the whole process — a single hostile
//! message in a queue would crash every consumer in turn. std sizes threads
//! it spawns by `RUST_MIN_STACK`, read at the first spawn, so a process must
//! have it set from the start: [`ensure_deep_stack`]
//! re-executes the program with it set (Unix `exec`: same pid, same
//! arguments) when it is missing.

/// Stack size, in bytes, given to threads std spawns: enough to parse and
/// drop the deepest table one RabbitMQ frame (128 KiB) can carry. It is
/// address space, committed only as far as it is used.
pub const DEEP_STACK_BYTES: usize = 512 * 1024 * 1024;

/// Stack size for the tokio worker threads, where deliveries are parsed,
/// decoded and dropped.
pub const WORKER_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Re-executes the current program with `RUST_MIN_STACK` set to
/// [`DEEP_STACK_BYTES`] unless it already asks for at least that much (a
/// smaller value, such as the 2 MiB std uses anyway, or one that is not a
/// number, is replaced). Call it first thing in `main`, before any thread
/// exists. Returns (instead of re-executing) on non-Unix systems or if `exec`
/// fails, after logging why to stderr.
pub fn ensure_deep_stack() {
    if !needs_deep_stack(std::env::var_os("RUST_MIN_STACK").as_deref()) {
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

/// Whether a process whose `RUST_MIN_STACK` is `value` must be re-executed:
/// unless the value is a number of bytes of at least [`DEEP_STACK_BYTES`],
/// read as std reads it (a plain decimal `usize`; std falls back to 2 MiB
/// for anything else, whitespace included).
pub fn needs_deep_stack(value: Option<&std::ffi::OsStr>) -> bool {
    let bytes = value
        .and_then(std::ffi::OsStr::to_str)
        .and_then(|v| v.parse::<usize>().ok());
    bytes.is_none_or(|bytes| bytes < DEEP_STACK_BYTES)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    fn needs(value: &str) -> bool {
        needs_deep_stack(Some(OsStr::new(value)))
    }

    #[test]
    fn a_missing_small_or_unreadable_value_needs_the_deep_stack() {
        assert!(needs_deep_stack(None));
        assert!(needs("2097152"), "2 MiB, std's default, is not enough");
        assert!(needs(&(DEEP_STACK_BYTES - 1).to_string()));
        assert!(needs(""));
        assert!(needs("512M"));
        assert!(needs("-1"));
        assert!(needs("99999999999999999999999999"));
        assert!(
            needs(&format!(" {DEEP_STACK_BYTES}")),
            "std ignores a value with spaces"
        );
    }

    #[test]
    fn a_value_of_at_least_the_deep_stack_is_kept() {
        assert!(!needs(&DEEP_STACK_BYTES.to_string()));
        assert!(!needs(&(2 * DEEP_STACK_BYTES).to_string()));
    }
}
