//! A load run as the library runs it: stages (one for a plain `load`, several for a
//! scenario), each with its own target, connections, duration, rates and budgets, and
//! what every stage shares. The CLI lowers its flags into a [`Plan`];
//! `scenario::Scenario::stages` merges a scenario file with those flags.

use std::path::PathBuf;
use std::time::Duration;

use super::budget::Budget;
use super::frame_head::FrameReader;
use crate::client::{ConnectOptions, Target};
use crate::retry::Backoff;
use url::Url;

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
    pub fn shard(&self) -> super::shard::Shard {
        self.worker.as_ref().map(|w| w.shard).unwrap_or_default()
    }
}

/// One worker of a run spread over several processes or machines.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerPlan {
    pub shard: super::shard::Shard,
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

/// The client frame sent on the schedule unless a template is given: our contract's
/// ping, answered by a pong with the same id.
pub const DEFAULT_PING: &str = r#"{"type":"ping","id":{id}}"#;

/// How long reconnects wait: 100 ms after the first failure, doubling up to 5 s.
pub const RECONNECT_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(100),
    max: Duration::from_secs(5),
};

#[derive(Debug, Clone)]
pub struct VuConfig {
    /// How each connection is opened.
    pub connect: ConnectOptions,
    /// No frame at all for this long ends the connection as a `timeout` error.
    pub idle_timeout: Duration,
    /// Client messages per second per connection (open model), or none.
    pub send_rate: Option<f64>,
    /// JSON body with `{id}` where the message number goes; default a contract ping.
    pub send_template: String,
    /// Sent once right after each handshake (and each reconnect), before any scheduled
    /// message: `{game_id}` is the game's id (JSON-escaped), `{since}` the last seq
    /// received or `null`.
    pub subscribe: Option<String>,
    /// How frames are read: our contract, or the pointers of another layout.
    pub reader: FrameReader,
    /// Reconnect (with `?since=`) after a disconnect, with this backoff.
    pub reconnect: Option<Backoff>,
    /// Each connection closes itself after this long and resumes with `?since=`
    /// (clients that come and go, as on mobile networks); implies reconnecting.
    pub churn: Option<Duration>,
    /// WebSocket protocol Ping interval per connection (RTT any server answers), or none.
    pub ws_ping: Option<Duration>,
    /// With `--ws-ping auto`: the most pings a second all connections together send;
    /// each stage stretches `ws_ping` to stay within it.
    pub ws_ping_budget: Option<u32>,
}

/// `--ws-ping auto`: a ping every 10 s per connection...
pub const AUTO_PING_EVERY: Duration = Duration::from_secs(10);
/// ...but no more than this many a second over all connections (each connection's
/// interval is stretched): 1,200 `ws_rtt` samples a minute from 200 connections up.
/// A ping and its pong cost a client two to four frames' worth of CPU (two system
/// calls and a wake-up of their own), so at 100 pings a second they were 1 % of a
/// 10,000 x 1/s feed's messages and 3-4 % of the client's CPU (`cargo bench --bench
/// loadgen`). Telling a quiet connection from a dead one does not depend on this
/// rate: the idle check pings a connection that said nothing for `--idle-timeout`.
pub const AUTO_PINGS_PER_SECOND: u32 = 20;

/// The ping interval for `conns` connections within `budget` pings a second.
pub fn ping_interval(every: Duration, conns: usize, budget: Option<u32>) -> Duration {
    match budget {
        Some(per_second) if per_second > 0 => every.max(Duration::from_secs_f64(
            conns as f64 / f64::from(per_second),
        )),
        _ => every,
    }
}

impl Default for VuConfig {
    /// Our contract's defaults: `ts` in µs, pings as the client frame, a small read
    /// buffer, no client traffic, no reconnects, protocol pings on the `auto` budget.
    fn default() -> Self {
        Self {
            connect: ConnectOptions::default(),
            idle_timeout: Duration::from_secs(30),
            send_rate: None,
            send_template: DEFAULT_PING.to_owned(),
            ws_ping: Some(AUTO_PING_EVERY),
            ws_ping_budget: Some(AUTO_PINGS_PER_SECOND),
            subscribe: None,
            reader: FrameReader::Contract,
            reconnect: None,
            churn: None,
        }
    }
}

/// One stream to connect to, and the game it is about (when known).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamTarget {
    pub url: Url,
    pub game: Option<String>,
}

impl From<Url> for StreamTarget {
    fn from(url: Url) -> Self {
        Self { url, game: None }
    }
}
