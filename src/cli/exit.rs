//! Exit codes: documented in README "Exit codes" and stable across releases.

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything passed (or the server stopped cleanly).
    Ok = 0,
    /// A check or budget failed, or the server failed while running.
    Failed = 1,
    /// Bad usage: invalid flags or values, unreadable input files.
    Usage = 2,
    /// The target could not be tested at all (unreachable, refused).
    Unreachable = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// Prints a clap error (or help/version) and says how to exit.
pub fn usage_error(e: clap::Error) -> Exit {
    let _ = e.print();
    if e.use_stderr() {
        Exit::Usage
    } else {
        Exit::Ok
    }
}
