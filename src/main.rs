//! The `livegames` binary: parse the command line, run the library, exit.

use clap::Parser;

fn main() -> std::process::ExitCode {
    match livegames::cli::Cli::try_parse() {
        Ok(cli) => livegames::cli::run(cli).into(),
        Err(e) => livegames::cli::exit::usage_error(e).into(),
    }
}
