//! Exit codes of the `tollgate` binary (0 is success), documented in README.

use std::fmt;

/// Any other error: bad configuration, unreadable file, invalid arguments to a subcommand.
pub(crate) const FAILED: u8 = 1;
/// The bus refused the request (an error reply); the code is printed.
pub(crate) const REFUSED: u8 = 3;
/// No reply within the timeout.
pub(crate) const TIMEOUT: u8 = 4;
/// The broker could not be reached or the message could not be sent.
pub(crate) const UNREACHABLE: u8 = 5;

/// An error that chooses the process's exit code.
#[derive(Debug)]
pub(crate) struct Exit {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Exit {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// The exit code for `error`, printing it as one clear line.
pub(crate) fn report(error: &anyhow::Error) -> u8 {
    match error.downcast_ref::<Exit>() {
        Some(exit) => {
            eprintln!("error: {}", exit.message);
            exit.code
        }
        None => {
            eprintln!("error: {error:#}");
            FAILED
        }
    }
}
