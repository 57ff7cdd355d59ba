//! `livegames contract validate|schema|asyncapi|record`: the flags of each, and their
//! runs.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::connect::{ConnectArgs, subscribe_message};
use super::exit::{self, Exit};
use super::runtime::block_on;
use super::values::{duration, target};
use crate::client::Target;
use crate::console::{self, note};
use crate::inspect::record::RecordPlan;
use crate::outcome::{Classify, CommandResult, Failure, Verdict, stdout_failure};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ContractCommand {
    /// Check recorded frames (JSON Lines, or a JSON array) against the contract, offline.
    Validate(ValidateArgs),
    /// Print the published JSON Schemas: all frames, `rest`, or one definition on its own
    /// (e.g. `update`, `games_list`; `rest/health` and `frames/health` where both have one).
    Schema {
        /// A frame type, a REST body name, `frames` or `rest`.
        name: Option<String>,
    },
    /// Print the AsyncAPI 3.0 document of the WebSocket API (generated from the schemas).
    Asyncapi,
    /// Record a live stream to a JSON Lines file (one frame per line) for `validate`.
    Record(RecordArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// ws[s]://host:port (records the first live game) or a stream URL.
    #[arg(value_parser = target)]
    pub url: Target,
    /// The file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Stop after this many frames.
    #[arg(long, default_value = "100")]
    pub frames: u64,
    /// Stop after this long.
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub duration: Duration,
    /// Sent once right after the handshake: JSON, or @FILE; {game_id} is filled in.
    #[arg(long, value_name = "JSON|@FILE")]
    pub subscribe: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// The recording; `-` reads standard input.
    pub file: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Count fields the contract does not know as violations (default: allowed, for
    /// forward compatibility).
    #[arg(long)]
    pub strict: bool,
    /// Use frames.schema.json and rest.schema.json from this folder instead of the
    /// built-in schemas.
    #[arg(long, value_name = "DIR")]
    pub schema_dir: Option<PathBuf>,
}

/// How long `contract record` waits for the connection.
const RECORD_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// `contract record` keeps whole frames of any size the contract allows in one read.
const RECORD_READ_BUFFER: usize = 64 * 1024;

impl RecordArgs {
    pub fn lower(&self) -> Result<RecordPlan, Failure> {
        Ok(RecordPlan {
            target: self.url.clone(),
            options: self
                .connect
                .lower(RECORD_CONNECT_TIMEOUT, RECORD_READ_BUFFER)?,
            out: self.out.clone(),
            frames: self.frames,
            duration: self.duration,
            subscribe: subscribe_message(self.subscribe.as_deref())?,
        })
    }
}

pub fn run(command: ContractCommand) -> Exit {
    match command {
        ContractCommand::Validate(args) => exit::finish("contract validate", validate(&args)),
        ContractCommand::Schema { name } => {
            exit::finish("contract schema", schema(name.as_deref()))
        }
        ContractCommand::Asyncapi => exit::finish("contract asyncapi", asyncapi()),
        ContractCommand::Record(args) => exit::finish("contract record", record(&args)),
    }
}

fn validate(args: &ValidateArgs) -> CommandResult {
    use crate::inspect::{schemas, validate};
    let schemas = schemas::load(args.schema_dir.as_deref(), args.strict).usage()?;
    let shown = args.file.display();
    let result = if args.file.as_os_str() == "-" {
        validate::validate(std::io::stdin().lock(), &schemas)
    } else {
        let file = std::fs::File::open(&args.file)
            .with_context(|| format!("cannot read {shown}"))
            .usage()?;
        validate::validate(std::io::BufReader::new(file), &schemas)
    };
    let report = result
        .with_context(|| format!("reading {shown} failed"))
        .usage()?;
    let text = if args.json {
        serde_json::to_string_pretty(&report).failed()? + "\n"
    } else {
        report.render_text()
    };
    print(&text)?;
    Ok(Verdict::from_passed(report.passed()))
}

fn schema(name: Option<&str>) -> CommandResult {
    let text = crate::inspect::schemas::schema_text(name).usage()?;
    print(&(text + "\n"))?;
    Ok(Verdict::Pass)
}

fn asyncapi() -> CommandResult {
    let doc = crate::contract::asyncapi::asyncapi().failed()?;
    print(&(serde_json::to_string_pretty(&doc).failed()? + "\n"))?;
    Ok(Verdict::Pass)
}

fn record(args: &RecordArgs) -> CommandResult {
    let plan = args.lower()?;
    let recorded = block_on(crate::inspect::record::record(&plan))??;
    note!(
        "recorded {} frames from {} to {} ({})",
        recorded.frames,
        recorded.url,
        plan.out.display(),
        recorded.end
    );
    Ok(Verdict::Pass)
}

fn print(text: &str) -> Result<(), Failure> {
    console::print(text).map_err(stdout_failure)
}
