//! The command line: one file per command (`serve`, `load`, `smoke`, `contract`,
//! `report`) with its flags, their lowering into the library's config, and its run;
//! [`connect`] holds the connection flags the client commands share and `values`
//! the value parsers. Every command returns a `CommandResult`; [`exit::finish`] turns
//! it into the exit code.

pub mod connect;
pub mod contract;
mod embedded;
pub mod exit;
pub mod load;
pub mod report;
mod runtime;
pub mod serve;
pub mod smoke;
pub mod telemetry;
mod values;

use clap::{Parser, Subcommand};

use contract::ContractCommand;
use exit::Exit;
use load::LoadArgs;
use report::ReportCommand;
use serve::ServeArgs;
use smoke::SmokeArgs;

/// Live sports and market data over WebSockets: a reference server, a load
/// generator and a contract checker.
#[derive(Debug, Parser)]
#[command(name = "livegames", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the live games server (with mock ESPN, Kalshi and API-SPORTS upstreams).
    Serve(Box<ServeArgs>),
    /// Load-test a live games server over WebSockets (an embedded one without a URL).
    Load(Box<LoadArgs>),
    /// Work with load reports.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Check a running server (an embedded one without --url) against the message contract.
    Smoke(Box<SmokeArgs>),
    /// Work with the message contract offline: validate recordings, print schemas.
    #[command(subcommand)]
    Contract(ContractCommand),
}

/// Runs a parsed command line to completion.
pub fn run(cli: Cli) -> Exit {
    runtime::reserve_standard_fds();
    match cli.command {
        Command::Serve(args) => exit::finish("serve", serve::run(*args)),
        Command::Load(args) => exit::finish("load", load::run(*args)),
        Command::Report(ReportCommand::Merge(args)) => {
            exit::finish("report merge", report::merge(&args))
        }
        Command::Smoke(args) => exit::finish("smoke", smoke::run(*args)),
        Command::Contract(command) => contract::run(command),
    }
}
