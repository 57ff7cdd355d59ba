//! `livegames load` and `livegames report merge`: flags lowered to a plan, signals,
//! the embedded server, the run.

use std::io::IsTerminal;

use tokio_util::sync::CancellationToken;

use super::args::{LoadArgs, MergeArgs};
use super::embedded::EmbeddedServe;
use super::runtime::{block_on, cancel_on_signal};
use crate::load::runner;
use crate::outcome::CommandResult;

pub fn run(args: LoadArgs) -> CommandResult {
    let progress_bar = !args.quiet && !args.json && std::io::stderr().is_terminal();
    let plan = args.lower(progress_bar)?;
    block_on(async move {
        // Ctrl-C stops the run early; what was measured is still reported.
        let stop = CancellationToken::new();
        let _signals = cancel_on_signal(stop.clone())?;
        runner::run(&plan, &EmbeddedServe, &stop, &mut std::io::stdout()).await
    })?
}

pub fn merge(args: &MergeArgs) -> CommandResult {
    runner::merge(&args.lower()?, &mut std::io::stdout())
}
