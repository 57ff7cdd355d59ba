//! `livegames report merge`: its flags, lowered into a [`MergePlan`], and the run.

use std::path::PathBuf;

use clap::Args;

use crate::load::plan::budget;
use crate::load::results::merge::MergeOptions;
use crate::load::runner::{self, MergePlan};
use crate::outcome::{Classify, CommandResult, Failure};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ReportCommand {
    /// Merge the report directories of several runs (e.g. one per machine) into one report.
    Merge(MergeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// Report directories written by `livegames load --report DIR`.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where to write the merged report.
    #[arg(long)]
    pub report: PathBuf,
    /// Budgets to check on the merged figures (repeatable).
    #[arg(long = "budget", value_name = "EXPR")]
    pub budgets: Vec<String>,
    /// Print the merged summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// How many shards the run had (`load --shard I/N`): a shard without a report
    /// fails the verdict [default: what the workers' reports say].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub shards: Option<u64>,
    /// Judge what the workers that reported measured: a missing or failed shard is a
    /// warning, not a failure.
    #[arg(long)]
    pub allow_partial: bool,
}

impl MergeArgs {
    pub fn lower(&self) -> Result<MergePlan, Failure> {
        Ok(MergePlan {
            dirs: self.dirs.clone(),
            report_dir: self.report.clone(),
            budgets: budget::parse_all(&self.budgets).usage()?,
            json: self.json,
            options: MergeOptions {
                shards: self.shards.map(|n| n as usize),
                allow_partial: self.allow_partial,
            },
        })
    }
}

pub fn merge(args: &MergeArgs) -> CommandResult {
    runner::merge(&args.lower()?, &mut std::io::stdout())
}
