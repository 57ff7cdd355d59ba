//! Exit codes: documented in README "Exit codes" and stable across releases. This is
//! the one place where a command's result becomes an exit code and where a failure is
//! printed.

use std::process::ExitCode;

use crate::console::note;
use crate::outcome::{CommandResult, Failure, Verdict};
use crate::text::printable;

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

/// The exit code of `livegames COMMAND`'s result; a failure is printed once, as
/// `livegames COMMAND: what: why: ...`. A reader that closed standard output early
/// (`| head -1`) is not an error: the command ends quietly with 0, as `cat` would.
pub fn finish(command: &str, result: CommandResult) -> Exit {
    let failure = match result {
        Ok(Verdict::Pass) => return Exit::Ok,
        Ok(Verdict::Fail) => return Exit::Failed,
        Err(failure) => failure,
    };
    if is_closed_stdout(failure.error()) {
        return Exit::Ok;
    }
    // The causes may quote a peer (a close reason, a body): shown, never obeyed.
    let message = format!("{:#}", failure.error());
    note!("livegames {command}: {}", printable(&message));
    match failure {
        Failure::Usage(_) => Exit::Usage,
        Failure::Unreachable(_) => Exit::Unreachable,
        Failure::Failed(_) => Exit::Failed,
    }
}

fn is_closed_stdout(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Classify;
    use anyhow::Context;

    #[test]
    fn each_result_has_its_code() {
        assert_eq!(finish("t", Ok(Verdict::Pass)), Exit::Ok);
        assert_eq!(finish("t", Ok(Verdict::Fail)), Exit::Failed);
        assert_eq!(finish("t", Err(Failure::usage("bad"))), Exit::Usage);
        assert_eq!(
            finish("t", Err(Failure::unreachable("x"))),
            Exit::Unreachable
        );
        assert_eq!(finish("t", Err(Failure::failed("x"))), Exit::Failed);
    }

    #[test]
    fn a_closed_stdout_ends_quietly_with_0() {
        let pipe: Result<(), std::io::Error> = Err(std::io::ErrorKind::BrokenPipe.into());
        let failure = pipe.context("writing the report").failed().unwrap_err();
        assert_eq!(finish("t", Err(failure)), Exit::Ok);
    }
}
