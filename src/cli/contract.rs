//! `livegames contract validate|schema|asyncapi|record`.

use anyhow::Context;

use super::args::{ContractCommand, RecordArgs, ValidateArgs};
use super::exit::{self, Exit};
use super::runtime::block_on;
use crate::console::{self, note};
use crate::outcome::{Classify, CommandResult, Failure, Verdict, stdout_failure};

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
