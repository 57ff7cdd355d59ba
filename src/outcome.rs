//! How a command ends: a [`Verdict`] when it could judge what it was asked to, a
//! [`Failure`] when it could not. `cli::exit` turns both into the documented exit
//! codes and prints a failure once, with its causes; nothing else decides an exit code.

use std::fmt::Display;

/// What a command that judges something (load budgets, smoke checks, a recording's
/// validity) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Everything held (exit 0).
    Pass,
    /// A check or budget failed; the command has already said which (exit 1).
    Fail,
}

impl Verdict {
    pub fn from_passed(passed: bool) -> Self {
        if passed { Verdict::Pass } else { Verdict::Fail }
    }
}

/// Why a command could not give a verdict. Each variant is one exit code; the error
/// inside carries the message and its causes.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad flags or values, unreadable input files (exit 2).
    #[error(transparent)]
    Usage(anyhow::Error),
    /// The target could not be tested at all: refused, unresolvable, silent (exit 3).
    #[error(transparent)]
    Unreachable(anyhow::Error),
    /// Anything else that went wrong while running (exit 1).
    #[error(transparent)]
    Failed(anyhow::Error),
}

impl Failure {
    pub fn usage(message: impl Display) -> Self {
        Failure::Usage(anyhow::Error::msg(message.to_string()))
    }

    pub fn unreachable(message: impl Display) -> Self {
        Failure::Unreachable(anyhow::Error::msg(message.to_string()))
    }

    pub fn failed(message: impl Display) -> Self {
        Failure::Failed(anyhow::Error::msg(message.to_string()))
    }

    /// The error with its chain of causes.
    pub fn error(&self) -> &anyhow::Error {
        match self {
            Failure::Usage(e) | Failure::Unreachable(e) | Failure::Failed(e) => e,
        }
    }
}

/// Sorts an error into a [`Failure`] where it happens, so the exit code is decided by
/// the code that knows what went wrong: `read(path).context(..).usage()?`.
pub trait Classify<T> {
    fn usage(self) -> Result<T, Failure>;
    fn unreachable(self) -> Result<T, Failure>;
    fn failed(self) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> Classify<T> for Result<T, E> {
    fn usage(self) -> Result<T, Failure> {
        self.map_err(|e| Failure::Usage(e.into()))
    }

    fn unreachable(self) -> Result<T, Failure> {
        self.map_err(|e| Failure::Unreachable(e.into()))
    }

    fn failed(self) -> Result<T, Failure> {
        self.map_err(|e| Failure::Failed(e.into()))
    }
}

/// A write to standard output that failed: the reader went away (`| head -1`, which
/// `cli::exit` turns into a quiet exit 0) or the disk is full.
pub fn stdout_failure(error: std::io::Error) -> Failure {
    Failure::Failed(anyhow::Error::new(error).context("writing to standard output"))
}

/// What a command returns.
pub type CommandResult = Result<Verdict, Failure>;

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn errors_are_sorted_where_they_happen_and_keep_their_causes() {
        let missing: Result<(), std::io::Error> = Err(std::io::ErrorKind::NotFound.into());
        let failure = missing.context("--scenario x.toml").usage().unwrap_err();
        assert!(matches!(failure, Failure::Usage(_)));
        assert_eq!(
            format!("{:#}", failure.error()),
            "--scenario x.toml: entity not found"
        );
        assert_eq!(Verdict::from_passed(false), Verdict::Fail);
    }
}
