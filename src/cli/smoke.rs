//! `livegames smoke`: its flags, the optional embedded server, the checks, the report.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::connect::ConnectArgs;
use super::embedded::EmbeddedServe;
use super::runtime::block_on;
use super::values::{count, nonzero_duration, rate, target};
use crate::client::Target;
use crate::client::local::LocalServers;
use crate::console::{self, note};
use crate::contract::HEARTBEAT_INTERVAL_SECS;
use crate::outcome::{Classify, CommandResult, Failure, Verdict, stdout_failure};
use crate::smoke::config::{DEFAULT_MAX_SKEW, DEFAULT_MESSAGES, DEFAULT_TIMEOUT};
use crate::smoke::{SmokeConfig, SmokeReport, render};
use crate::units::show_duration;

#[derive(Debug, Clone, Args)]
pub struct SmokeArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The server: http[s]://host:port (ws[s]:// works too). None: an embedded server.
    #[arg(long, env = "LIVEGAMES_URL", value_parser = target)]
    pub url: Option<Target>,
    /// The game to stream [default: the first live one the server lists].
    #[arg(long)]
    pub game: Option<String>,
    /// Frames to receive after the snapshot.
    #[arg(long, default_value_t = DEFAULT_MESSAGES, value_parser = count)]
    pub messages: usize,
    /// How long any one check may wait.
    #[arg(long, default_value = show_duration(DEFAULT_TIMEOUT), value_parser = nonzero_duration)]
    pub timeout: Duration,
    /// How far a frame's ts may be from this machine's clock.
    #[arg(long, default_value = show_duration(DEFAULT_MAX_SKEW), value_parser = nonzero_duration)]
    pub max_skew: Duration,
    /// The server's heartbeat interval (the contract's is 5s).
    #[arg(long, default_value = show_duration(Duration::from_secs(HEARTBEAT_INTERVAL_SECS)),
          value_parser = nonzero_duration)]
    pub heartbeat: Duration,
    /// Checks to run: names, prefixes (ws.*), `default`, `all`; comma-separated.
    #[arg(long, default_value = "default", value_parser = crate::smoke::Selection::parse)]
    pub checks: crate::smoke::Selection,
    /// Bearer token for the admin checks (admin.faults).
    #[arg(long, env = "LIVEGAMES_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Count fields the contract does not know as violations.
    #[arg(long)]
    pub strict: bool,
    /// Advertised ws_url/timeline_url may point at another host or port than --url
    /// (the server means to send clients elsewhere).
    #[arg(long)]
    pub advertised_elsewhere_ok: bool,
    /// Use frames.schema.json and rest.schema.json from this folder.
    #[arg(long, value_name = "DIR")]
    pub schema_dir: Option<PathBuf>,
    /// Print the report as JSON instead of the checklist.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as JUnit XML.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Message rate of the embedded server (ticks per second per live game).
    #[arg(long, default_value = "10", value_parser = rate)]
    pub rate: f64,
}

impl SmokeArgs {
    /// The checks to run against `target` (the `--url`, or an embedded server).
    pub fn lower(&self, target: Target) -> Result<SmokeConfig, Failure> {
        Ok(SmokeConfig {
            game: self.game.clone(),
            messages: self.messages,
            timeout: self.timeout,
            max_skew: self.max_skew,
            heartbeat: self.heartbeat,
            checks: self.checks.clone(),
            admin_token: self.admin_token.clone(),
            advertised_elsewhere_ok: self.advertised_elsewhere_ok,
            connect: self
                .connect
                .lower(self.timeout, crate::smoke::READ_BUFFER)?,
            ..SmokeConfig::new(target)
        })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    /// Every flag's default, lowered, is what the library's smoke config holds.
    #[test]
    fn every_smoke_default_is_the_configs() {
        let args = match Cli::try_parse_from(["livegames", "smoke"]).unwrap().command {
            Command::Smoke(a) => *a,
            _ => unreachable!(),
        };
        let target = Target::parse("http://127.0.0.1:1").unwrap();
        let lowered = format!("{:#?}", args.lower(target.clone()).unwrap());
        let default = format!("{:#?}", SmokeConfig::new(target));
        assert_eq!(lowered, default);
    }
}
