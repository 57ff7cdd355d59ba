//! Planning: a load run as the library runs it, before anything connects.
//!
//! In: flags and a scenario file (lowered by the CLI). Out: a [`Plan`] of stages (one
//! for a plain `load`, several for a scenario), each with its own target, connections,
//! duration, rates and [`budget`]s, what every stage shares, and this worker's
//! [`shard`] of the run.

pub mod budget;
pub mod scenario;
pub mod shard;

use std::path::PathBuf;
use std::time::Duration;

use crate::client::Target;
use crate::load::session::VuConfig;
use budget::Budget;
use shard::Shard;

/// A whole `livegames load` run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub stages: Vec<StagePlan>,
    /// From a scenario file: each stage gets its own report folder, and the run a
    /// `scenario.json` and an overall `junit.xml`.
    pub scenario: bool,
    /// Where the report goes.
    pub report_dir: PathBuf,
    /// Where per-second figures are streamed during the run (`--out influxdb=`).
    pub live_out: Option<LiveOut>,
    /// What every WebSocket stage's users share (connect options, timestamps, pings,
    /// the send template); a stage sets its rates, reconnects and churn on top.
    pub vu: VuConfig,
    pub output: Output,
    /// This process as one worker of a sharded run (`--shard`/`--shards`), or None.
    pub worker: Option<WorkerPlan>,
    /// Wait for this instant before the first stage starts (`--start-at`), so the
    /// workers' measurement windows line up.
    pub start_at: Option<std::time::SystemTime>,
}

impl Plan {
    /// Which of each stage's connections are this process's.
    pub fn shard(&self) -> Shard {
        self.worker.as_ref().map(|w| w.shard).unwrap_or_default()
    }
}

/// One worker of a run spread over several processes or machines.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerPlan {
    pub shard: Shard,
    /// This worker's name in its report (default: the host name, which in a
    /// Kubernetes pod is the pod's name).
    pub name: String,
    /// The run every worker belongs to; `report merge` refuses to mix runs.
    pub run_id: Option<String>,
}

/// `--out influxdb=URL`: where the per-second figures go, and their tags.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveOut {
    pub target: crate::influx::InfluxTarget,
    pub run_id: String,
    pub worker: String,
}

/// How a run talks to the person (or CI log) watching it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Output {
    /// The summary as JSON on stdout instead of the table.
    pub json: bool,
    /// No progress display and no start line.
    pub quiet: bool,
    /// A live progress bar (on a terminal); otherwise a start line for logs.
    pub progress_bar: bool,
}

/// One stage: a plain `load` is a single stage; a scenario has several.
#[derive(Debug, Clone, PartialEq)]
pub struct StagePlan {
    pub label: String,
    /// None: an embedded server for this stage.
    pub target: Option<Target>,
    /// Games to spread connections over; empty: the ones the target lists.
    pub games: Vec<String>,
    pub conns: usize,
    pub duration: Duration,
    /// Connections open evenly over this time.
    pub ramp: Duration,
    /// The embedded server's frames per second per live game.
    pub rate: f64,
    pub send_rate: Option<f64>,
    pub reconnect: bool,
    pub churn: Option<Duration>,
    /// An HTTP stage: the paths its users GET (each starting with '/').
    pub http: Option<Vec<String>>,
    pub budgets: Vec<Budget>,
}

/// A stage's ramp when the scenario does not give one.
pub const DEFAULT_RAMP: Duration = Duration::from_secs(1);

/// What an HTTP stage's users GET when no paths are given: our server's REST API.
pub const DEFAULT_HTTP_PATHS: [&str; 3] = ["/api/live/games", "/api/nfl/scores", "/api/nhl/scores"];

impl Default for StagePlan {
    /// `livegames load` with no flags: 10 connections for 10 s, opened over a second,
    /// against an embedded server sending 10 frames a second per game.
    fn default() -> Self {
        let conns = 10;
        Self {
            label: format!("{conns} connections"),
            target: None,
            games: Vec::new(),
            conns,
            duration: Duration::from_secs(10),
            ramp: DEFAULT_RAMP,
            rate: 10.0,
            send_rate: None,
            reconnect: false,
            churn: None,
            http: None,
            budgets: Vec::new(),
        }
    }
}

impl StagePlan {
    /// The first HTTP path that is not a path, for a usage error.
    pub fn bad_http_path(&self) -> Option<&str> {
        self.http
            .iter()
            .flatten()
            .find(|p| !p.starts_with('/'))
            .map(String::as_str)
    }
}
