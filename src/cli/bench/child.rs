//! A child `tollgate` process of a bench (the router, the baseline relay):
//! this same binary with other arguments, its log in a file, its peak memory
//! read from `/proc`, killed if the bench ends early.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use anyhow::{Context as _, anyhow, bail};
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    process::{Child, ChildStdout, Command},
};

/// How long a child may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A running child process; dropping it kills the process.
pub(crate) struct ChildProcess {
    name: &'static str,
    child: Child,
    log: PathBuf,
    stdout: Option<Lines<BufReader<ChildStdout>>>,
}

impl ChildProcess {
    /// Starts `tollgate <args>` as `name`, with stderr (its log) appended to
    /// `log` and stdout piped when `pipe_stdout`. The child's environment
    /// holds no `TOLLGATE_*` override and no `RUST_LOG`, so it runs on its
    /// arguments and config file alone, at its default log level.
    pub(crate) fn spawn(
        name: &'static str,
        args: &[OsString],
        log: &Path,
        pipe_stdout: bool,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding the tollgate binary")?;
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("creating the log file {}", log.display()))?;
        let mut command = Command::new(exe);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(if pipe_stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(log_file)
            .env_remove("RUST_LOG")
            .kill_on_drop(true);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("TOLLGATE_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting the {name} process"))?;
        let stdout = child.stdout.take().map(|out| BufReader::new(out).lines());
        Ok(Self {
            name,
            child,
            log: log.to_owned(),
            stdout,
        })
    }

    /// The next line the child writes to stdout, waiting at most `within`.
    pub(crate) async fn next_line(&mut self, within: Duration) -> anyhow::Result<String> {
        let name = self.name;
        let lines = self
            .stdout
            .as_mut()
            .ok_or_else(|| anyhow!("the {name} process's stdout is not piped"))?;
        match tokio::time::timeout(within, lines.next_line()).await {
            Ok(Ok(Some(line))) => Ok(line),
            Ok(Ok(None)) => Err(self.failure("closed its output")),
            Ok(Err(e)) => Err(anyhow!(e).context(format!("reading the {name} process's output"))),
            Err(_) => Err(self.failure(&format!("wrote nothing within {within:?}"))),
        }
    }

    /// Errors (with the end of its log) when the child has exited.
    pub(crate) fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.failure(&format!("exited ({status})"))),
            Err(e) => Err(anyhow!(e).context(format!("checking the {} process", self.name))),
        }
    }

    /// The child's process id (`None` once it was reaped).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The child's peak resident memory in MB (`VmHWM` of `/proc/<pid>/status`),
    /// `None` where `/proc` cannot tell.
    pub(crate) fn peak_rss_mb(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        vm_hwm_kb(&status).map(|kb| kb as f64 / 1024.0)
    }

    /// Sends SIGTERM and waits for the child to finish; kills it when it has
    /// not stopped within 10 s. Errors when it exits unsuccessfully.
    pub(crate) async fn terminate(&mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let sent = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await
                .context("running kill -TERM")?;
            if !sent.success() {
                tracing::warn!(process = self.name, pid, "kill -TERM failed.");
            }
        }
        let status: ExitStatus = match tokio::time::timeout(STOP_GRACE, self.child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                self.child.kill().await.ok();
                bail!(self.failure("did not stop within 10 s of SIGTERM"));
            }
        };
        if !status.success() {
            bail!(self.failure(&format!("stopped with {status}")));
        }
        Ok(())
    }

    /// An error naming the child, with the last lines of its log.
    fn failure(&self, what: &str) -> anyhow::Error {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        anyhow!(
            "the {} process {what}; its log ({}) ends with:\n{}",
            self.name,
            self.log.display(),
            tail.join("\n")
        )
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait()
            && let Err(e) = self.child.start_kill()
        {
            tracing::warn!(process = self.name, error = %e, "Cannot kill a bench child process.");
        }
    }
}

/// The `VmHWM` (peak resident set) line of a `/proc/<pid>/status` text, in kB.
fn vm_hwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::vm_hwm_kb;

    #[test]
    fn reads_the_peak_resident_set_from_proc_status() {
        let status =
            "Name:\ttollgate\nVmPeak:\t  900000 kB\nVmHWM:\t   41236 kB\nVmRSS:\t 40000 kB\n";
        assert_eq!(vm_hwm_kb(status), Some(41236));
        assert_eq!(vm_hwm_kb("Name:\tx\n"), None);
    }
}
