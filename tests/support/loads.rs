//! Running `load` in-process against a test's server, and reading its verdicts.

use std::time::Duration;

use livegames::load::LoadConfig;
use livegames::load::plan::shard::Share;
use livegames::load::results::checks::RunCheck;
use livegames::load::results::summary::LoadSummary;
use livegames::load::session::VuConfig;
use tokio_util::sync::CancellationToken;

/// `conns` users on `url` for `run_for`, no ramp, no budgets, no report files.
pub async fn load_with(url: String, conns: usize, run_for: Duration, vu: VuConfig) -> LoadSummary {
    let config = LoadConfig {
        targets: vec![url::Url::parse(&url).unwrap().into()],
        share: Share::whole(conns),
        clock_probe: None,
        duration: run_for,
        ramp: Duration::ZERO,
        vu,
        budgets: Vec::new(),
        out: None,
    };
    livegames::load::run(config, CancellationToken::new(), |_| {}).await
}

/// The run check named `name`.
pub fn check<'a>(summary: &'a LoadSummary, name: &str) -> &'a RunCheck {
    summary
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check in {:?}", summary.checks))
}
