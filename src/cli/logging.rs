//! Where the binary's log lines go and what they look like: stderr (stdout
//! stays machine-readable), as text or JSON, filtered by a default per
//! command with `RUST_LOG` directives layered on top.

use clap::ValueEnum;
use tollgate_bus::events;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum LogFormat {
    /// One human-readable line per event; colours only at a terminal.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`,
    /// `span`, `spans`), for log shippers.
    Json,
}

/// The filter: `default_level`, the per-message access target off, then
/// every directive of `RUST_LOG` (a directive for the same target replaces
/// the default one, so `RUST_LOG=tollgate::access=info` adds access lines
/// and keeps the rest; `RUST_LOG=warn` lowers the default level).
/// Directives that do not parse are skipped.
fn filter(default_level: &str, rust_log: Option<&str>) -> EnvFilter {
    let mut directives = format!("{default_level},{}=off", events::ACCESS_TARGET);
    if let Some(extra) = rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        directives.push(',');
        directives.push_str(extra);
    }
    EnvFilter::builder().parse_lossy(directives)
}

/// Lines waiting for the logging thread at most; past it a worker that logs waits.
const LOG_QUEUE_LINES: usize = 16_384;

/// Logs to stderr in `format`, filtered as [`filter`] says. Lines are
/// written by a background thread, so a router's audit line never blocks a
/// worker on stderr; the returned guard flushes what is left when dropped.
pub(crate) fn init(
    default_level: &str,
    format: LogFormat,
) -> tracing_appender::non_blocking::WorkerGuard {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = filter(default_level, rust_log.as_deref());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        // Never drop a line (an audit line is a record): a full buffer makes
        // the logging thread, not the message, wait.
        .lossy(false)
        // The queue's slots are allocated up front: the default 128,000
        // lines held 4 MiB of every router's memory; 16,384 lines (0.5 MiB)
        // still take a burst of access lines while stderr is slow.
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder
            // Colours only for a person at a terminal, not in a log file.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    guard
}

#[cfg(test)]
mod tests {
    use tracing::{Level, subscriber::with_default};
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Whether an event at `level` on `target` passes the filter.
    fn passes(filter: EnvFilter, level: Level, target: &'static str) -> bool {
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let layer = Flag(std::sync::Arc::clone(&seen));
        with_default(
            tracing_subscriber::registry().with(filter).with(layer),
            || match (level, target) {
                (Level::INFO, events::ACCESS_TARGET) => {
                    tracing::info!(target: "tollgate::access", "access")
                }
                (Level::INFO, _) => tracing::info!("info"),
                (_, _) => tracing::debug!("debug"),
            },
        );
        seen.load(std::sync::atomic::Ordering::SeqCst)
    }

    struct Flag(std::sync::Arc<std::sync::atomic::AtomicBool>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Flag {
        fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn access_lines_are_off_at_the_default_level() {
        assert!(passes(filter("info", None), Level::INFO, "other"));
        assert!(!passes(
            filter("info", None),
            Level::INFO,
            events::ACCESS_TARGET
        ));
    }

    #[test]
    fn rust_log_turns_access_lines_on_and_keeps_the_default_level() {
        let on = Some("tollgate::access=info");
        assert!(passes(
            filter("info", on),
            Level::INFO,
            events::ACCESS_TARGET
        ));
        assert!(passes(filter("info", on), Level::INFO, "other"));
    }

    #[test]
    fn rust_log_replaces_the_default_level() {
        assert!(!passes(filter("info", Some("warn")), Level::INFO, "other"));
        assert!(passes(filter("warn", Some("debug")), Level::DEBUG, "other"));
        assert!(passes(filter("info", Some("")), Level::INFO, "other"));
    }
}
