//! `livegames smoke`: flags, the optional embedded server, the checks, the report.

use std::io::IsTerminal;

use anyhow::Context;

use super::args::SmokeArgs;
use super::embedded::EmbeddedServe;
use super::runtime::block_on;
use crate::client::local::LocalServers;
use crate::console::{self, note};
use crate::outcome::{Classify, CommandResult, Failure, Verdict, stdout_failure};
use crate::smoke::{SmokeReport, render};

pub fn run(args: SmokeArgs) -> CommandResult {
    let schemas = crate::inspect::schemas::load(args.schema_dir.as_deref(), args.strict).usage()?;
    let report = block_on(async {
        let (target, embedded) = match &args.url {
            Some(target) => (target.clone(), None),
            None => {
                let server = EmbeddedServe.start(args.rate).await?;
                note!(
                    "(no --url: checking an embedded livegames serve at {})",
                    server.target.origin()
                );
                (server.target.clone(), Some(server))
            }
        };
        let report = crate::smoke::run(&args.lower(target)?, &schemas).await;
        if let Some(server) = embedded {
            server.stop().await;
        }
        Ok::<_, Failure>(report)
    })??;
    print(&args, &report)?;
    if let Some(path) = &args.junit {
        std::fs::write(path, render::junit(&report))
            .with_context(|| format!("cannot write {}", path.display()))
            .usage()?;
    }
    match &report.unreachable {
        Some(why) => Err(Failure::unreachable(format!(
            "cannot reach {}: {why}",
            report.target
        ))),
        None => Ok(Verdict::from_passed(report.passed)),
    }
}

fn print(args: &SmokeArgs, report: &SmokeReport) -> Result<(), Failure> {
    let text = if args.json {
        format!("{}\n", render::json(report))
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        render::text(report, render::Palette::new(colour))
    };
    console::print(&text).map_err(stdout_failure)
}
