//! CPU time per message of the processes a bench drives: the gate (router
//! or relay), the bench itself (publisher and sink) and, when it runs on
//! this host, the broker. Throughput on a shared 2-core machine moves with
//! whatever else runs; the CPU a process spent per message moves far less,
//! and it says what the router costs beyond the relay, in its own process
//! and in the broker's (which handles every header of every message).
//!
//! The broker's figure is the CPU of every local RabbitMQ node (`beam.smp`
//! processes started with `-s rabbit`). RabbitMQ's own start
//! script runs the Erlang schedulers without busy-waiting (`+sbwt none`);
//! a node started with busy-waiting on counts its spinning too.

use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat`'s times: Linux's `USER_HZ`,
/// 100 on every architecture it exports times to user space on.
const TICKS_PER_S: u64 = 100;

/// The processes whose CPU time a measurement reads: the bench's own, the
/// gate's and the local broker's.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Parties {
    /// The gate process (`None`: the scenario has none of its own).
    gate: Option<u32>,
    /// The broker runs on this host (its URL names a loopback address).
    local_broker: bool,
}

/// CPU time each party had spent at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Reading {
    gate: Option<Duration>,
    bench: Option<Duration>,
    broker: Option<Duration>,
}

/// Microseconds of CPU per message, per party, over one window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct PerMessage {
    /// The gate process's (`None`: no gate, or `/proc` could not tell).
    pub(crate) gate_us: Option<f64>,
    /// The bench's own: its publisher and its sink.
    pub(crate) bench_us: Option<f64>,
    /// The broker's (`None`: not on this host).
    pub(crate) broker_us: Option<f64>,
}

impl Parties {
    /// The bench and `gate`.
    pub(crate) fn with_gate(gate: Option<u32>) -> Self {
        Self {
            gate,
            local_broker: false,
        }
    }

    /// Also the broker at `amqp_url`, when that is on this host.
    pub(crate) fn with_broker_at(mut self, amqp_url: &str) -> Self {
        self.local_broker = is_loopback(amqp_url);
        self
    }

    /// What every party has spent so far.
    pub(crate) fn read(&self) -> Reading {
        Reading {
            gate: self.gate.and_then(process_cpu),
            bench: process_cpu(std::process::id()),
            broker: self.local_broker.then(rabbitmq_cpu).flatten(),
        }
    }
}

impl Reading {
    /// CPU per message between `self` and the later reading `end`, over
    /// `messages` (all `None` when no message was counted).
    pub(crate) fn per_message(&self, end: &Reading, messages: u64) -> PerMessage {
        let per = |start: Option<Duration>, end: Option<Duration>| {
            let spent = end?.checked_sub(start?)?;
            (messages > 0).then(|| spent.as_secs_f64() * 1e6 / messages as f64)
        };
        PerMessage {
            gate_us: per(self.gate, end.gate),
            bench_us: per(self.bench, end.bench),
            broker_us: per(self.broker, end.broker),
        }
    }
}

/// Whether `amqp_url`'s host is this one (`localhost`, `127.x.x.x`, `::1`).
fn is_loopback(amqp_url: &str) -> bool {
    use std::str::FromStr as _;
    let Ok(uri) = tollgate_wire::AMQPUri::from_str(amqp_url) else {
        return false;
    };
    let host = uri
        .authority
        .host
        .trim_start_matches('[')
        .trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// CPU time of every RabbitMQ node on this host (`None`: none found).
fn rabbitmq_cpu() -> Option<Duration> {
    let mut total: Option<Duration> = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if is_rabbitmq_node(pid)
            && let Some(cpu) = process_cpu(pid)
        {
            total = Some(total.unwrap_or_default() + cpu);
        }
    }
    total
}

/// Whether process `pid` is an Erlang VM running a RabbitMQ node: started
/// with `-s rabbit` (as RabbitMQ's start script does), which its command
/// line tools (`rabbitmqctl`, also `beam.smp`) are not.
fn is_rabbitmq_node(pid: u32) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    comm.trim_end() == "beam.smp"
        && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| starts_rabbit(&cmd))
}

/// Whether a `/proc/<pid>/cmdline` (arguments separated by NUL bytes) holds
/// the arguments `-s rabbit`.
fn starts_rabbit(cmdline: &[u8]) -> bool {
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    args.windows(2).any(|w| w == [&b"-s"[..], &b"rabbit"[..]])
}

/// User and system CPU time process `pid` has used, all its threads, living
/// and ended (`None` where `/proc` cannot tell).
pub(crate) fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    cpu_of_stat(&stat)
}

/// `utime + stime` of a `/proc/<pid>/stat` line. The command name (field 2)
/// is in parentheses and may hold spaces and parentheses itself, so fields
/// are counted after its last `)`: the state is field 3, utime 14, stime 15.
fn cpu_of_stat(stat: &str) -> Option<Duration> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / TICKS_PER_S))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_time_past_a_name_with_parentheses() {
        let stat = "4242 (tokio (worker) x) S 1 4242 4242 0 -1 4194560 \
                    900 0 0 0 250 50 0 0 20 0 3 0 123 456 789";
        assert_eq!(cpu_of_stat(stat), Some(Duration::from_secs(3)));
        assert_eq!(cpu_of_stat("garbage"), None);
    }

    #[test]
    fn this_process_s_cpu_time_grows_while_it_works() {
        let started = std::time::Instant::now();
        let mut spin = 0u64;
        // A tick is 10 ms of CPU: work until one more is counted.
        while process_cpu(std::process::id()).is_none_or(|t| t.is_zero()) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no CPU time counted"
            );
            for i in 0..100_000u64 {
                spin = std::hint::black_box(spin.wrapping_add(i));
            }
        }
    }

    #[test]
    fn only_a_broker_on_this_host_is_read() {
        for local in [
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            "amqp://localhost",
            "amqps://u:p@[::1]:5671/vh",
        ] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in [
            "amqp://rabbit.internal:5672",
            "amqp://10.0.0.5",
            "not a url",
        ] {
            assert!(!is_loopback(remote), "{remote}");
        }
        let remote = Parties::with_gate(None).with_broker_at("amqp://rabbit.internal");
        assert_eq!(remote.read().broker, None);
    }

    #[test]
    fn a_rabbitmq_node_is_told_from_its_command_line_tools() {
        let node = b"/usr/lib/erlang/erts-13.1.5/bin/beam.smp\0-W\0w\0--\0-noshell\0\
                     -s\0rabbit\0boot\0-boot\0start_sasl\0";
        assert!(starts_rabbit(node));
        let ctl = b"/usr/lib/erlang/erts-13.1.5/bin/beam.smp\0--\0-noshell\0-s\0\
                    elixir\0start_cli\0-extra\0/usr/lib/rabbitmq/bin/rabbitmqctl\0\
                    -s\0rabbit@localhost\0";
        assert!(!starts_rabbit(ctl));
        assert!(!is_rabbitmq_node(std::process::id()));
    }

    #[test]
    fn spent_time_is_divided_over_the_messages() {
        let at = |s| Some(Duration::from_millis(s));
        let start = Reading {
            gate: at(1_000),
            bench: None,
            broker: at(5_000),
        };
        let end = Reading {
            gate: at(1_300),
            bench: at(600),
            broker: at(7_000),
        };
        let per = start.per_message(&end, 10_000);
        assert_eq!(per.gate_us, Some(30.0));
        assert_eq!(per.bench_us, None);
        assert_eq!(per.broker_us, Some(200.0));
        assert_eq!(start.per_message(&end, 0), PerMessage::default());
    }
}
