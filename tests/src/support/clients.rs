//! The callers and the service written in other languages (`clients/`), run
//! as their users run them: `clients/setup` prepares them (a virtualenv, `npm
//! ci`), then each program runs against a bus the test started, and the test
//! reads what it printed.

use std::{
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    sync::OnceLock,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::Value;

use super::{TestBus, amqp_url};

/// The language of a client program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// `clients/python`, run with its virtualenv's interpreter.
    Python,
    /// `clients/node`, run with `node`.
    Node,
}

/// The project's `clients/` folder.
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients")
}

impl Language {
    fn name(self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::Node => "node",
        }
    }

    /// Runs `clients/setup <language>` once per test process.
    ///
    /// # Panics
    /// When the setup fails (its message says why: python3 or node missing,
    /// the registry unreachable).
    fn prepare(self) {
        static PYTHON: OnceLock<()> = OnceLock::new();
        static NODE: OnceLock<()> = OnceLock::new();
        let once = match self {
            Self::Python => &PYTHON,
            Self::Node => &NODE,
        };
        once.get_or_init(|| {
            let status = Command::new(clients_dir().join("setup"))
                .arg(self.name())
                .status()
                .unwrap_or_else(|e| panic!("cannot run clients/setup: {e}"));
            assert!(
                status.success(),
                "clients/setup {} failed (see its message above)",
                self.name()
            );
        });
    }

    /// The language's interpreter (the virtualenv's for Python), prepared
    /// first: for a test's own script (`-c` / `-e`).
    pub fn interpreter(self) -> Command {
        self.prepare();
        match self {
            Self::Python => Command::new(clients_dir().join("python/.venv/bin/python")),
            Self::Node => Command::new("node"),
        }
    }

    /// A command running `program` (a file under `clients/<language>/`),
    /// the language prepared first.
    pub fn command(self, program: &str) -> Command {
        self.prepare();
        let dir = clients_dir().join(self.name());
        let mut command = match self {
            Self::Python => Command::new(dir.join(".venv/bin/python")),
            Self::Node => Command::new("node"),
        };
        command.arg(dir.join(program));
        command
    }
}

/// The arguments every client takes to reach `bus` as `consumer`, signing
/// its own tokens with the consumer's HS256 key.
pub fn bus_args(bus: &TestBus, consumer: &str) -> Vec<String> {
    let key = bus.key(consumer);
    let secret = key.secret.as_ref().expect("the test bus's keys are HS256");
    vec![
        "--amqp".into(),
        amqp_url(),
        "--namespace".into(),
        bus.names.namespace().into(),
        "--consumer".into(),
        consumer.into(),
        "--kid".into(),
        key.kid.clone(),
        "--secret-base64".into(),
        STANDARD.encode(secret),
    ]
}

/// Runs `command` to its end (off the async runtime), prints its output and
/// parses each line it printed as JSON.
///
/// # Panics
/// When it cannot start, exits unsuccessfully, or prints a line that is not JSON.
pub async fn run_to_end(mut command: Command) -> Vec<Value> {
    let shown = format!("{command:?}");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the blocking task")
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{shown} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // Shown with `--nocapture` (README quotes it).
    println!("{stdout}");
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

/// A client program running in the background, killed if the test ends early.
pub struct Running {
    child: Child,
    stdout: std::io::BufReader<ChildStdout>,
}

impl Running {
    /// Starts `command` with its standard output piped.
    ///
    /// # Panics
    /// When it cannot start.
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let stdout = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
        Self { child, stdout }
    }

    /// The next line it prints, as JSON (blocks the calling thread: the
    /// program prints as it goes; `None` once it closed its output).
    ///
    /// # Panics
    /// When the line is not JSON.
    pub fn next_line(&mut self) -> Option<Value> {
        let mut line = String::new();
        match std::io::BufRead::read_line(&mut self.stdout, &mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(
                serde_json::from_str(line.trim_end())
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}")),
            ),
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    ///
    /// # Panics
    /// When the signal cannot be sent.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "cannot signal {pid}");
        self.child.wait().expect("wait for the client")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}
