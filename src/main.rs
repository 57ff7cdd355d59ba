//! The `livegames` binary: parse the command line, run the library, exit.

use clap::Parser;

/// mimalloc, not glibc's malloc: under connection churn glibc kept freed memory in its
/// arenas and serve's RSS grew without bound (docs/PERFORMANCE.md, the soak). The
/// library leaves the choice to whoever links it; the tests run on the system's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    match livegames::cli::Cli::try_parse() {
        Ok(cli) => livegames::cli::run(cli).into(),
        Err(e) => livegames::cli::exit::usage_error(e).into(),
    }
}
