//! Flags of each subcommand, and their lowering into the library's configs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use anyhow::Context;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::client::target::{
    DEFAULT_MAX_MESSAGE, DEFAULT_READ_BUFFER, parse_byte_size, parse_header,
};
use crate::client::{ConnectOptions, Target, tls};
use crate::console::note;
use crate::feeds::mock::FaultSpec;
use crate::inspect::record::RecordPlan;
use crate::load::budget::{self, Budget};
use crate::load::frame_head::{FrameReader, FrameShape, TsSpec, TsUnit};
use crate::load::merge::MergeOptions;
use crate::load::plan::{DEFAULT_PING, LiveOut, VuConfig, WorkerPlan};
use crate::load::runner::MergePlan;
use crate::load::scenario::{self, FlagDefaults, Scenario};
use crate::load::shard::{Shard, start_instant};
use crate::load::{Output, Plan, StagePlan};
use crate::outcome::{Classify, Failure};
use crate::serve::ServeConfig;
use crate::smoke::SmokeConfig;
use crate::telemetry::LogFormat;

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 500ms, 5s, 2m)"))
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a positive number, got {v}")),
        Err(e) => Err(format!("{e}")),
    }
}

fn rate(s: &str) -> Result<f64, String> {
    let v = positive_f64(s)?;
    if v > 1000.0 {
        return Err(format!("at most 1000 ticks per second per game, got {v}"));
    }
    Ok(v)
}

/// An upstream URL for `serve` (kept as given, without a trailing slash).
fn url(s: &str) -> Result<String, String> {
    Target::parse(s).map_err(|e| e.to_string())?;
    Ok(s.trim_end_matches('/').to_owned())
}

/// The server (or stream) a client command tests.
fn target(s: &str) -> Result<Target, String> {
    Target::parse(s).map_err(|e| e.to_string())
}

fn header(s: &str) -> Result<(HeaderName, HeaderValue), String> {
    parse_header(s)
}

fn byte_size(s: &str) -> Result<usize, String> {
    parse_byte_size(s)
}

/// How a client command connects: the same flags on `load`, `smoke` and
/// `contract record`, lowered into one `ConnectOptions`.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Header for the WebSocket handshake and every HTTP request, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = header)]
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// WebSocket subprotocol to offer (repeatable); the server must pick one of them.
    #[arg(long = "subprotocol", value_name = "NAME")]
    pub subprotocols: Vec<String>,
    /// Trust this CA (a PEM file) besides the platform's roots.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Do not verify TLS certificates (said on the terminal and in the report).
    #[arg(long)]
    pub insecure: bool,
    /// Largest WebSocket message accepted; a larger one ends its connection (error
    /// message_too_large) [default: 1MiB].
    #[arg(long, value_parser = byte_size)]
    pub max_message: Option<usize>,
}

impl ConnectArgs {
    /// These flags with a scenario file's: the flags win, headers add up.
    fn with_scenario(&self, scenario: &Scenario) -> ConnectArgs {
        ConnectArgs {
            headers: scenario
                .headers
                .iter()
                .chain(&self.headers)
                .cloned()
                .collect(),
            subprotocols: if self.subprotocols.is_empty() {
                scenario.subprotocols.clone()
            } else {
                self.subprotocols.clone()
            },
            cacert: self.cacert.clone().or_else(|| scenario.cacert.clone()),
            insecure: self.insecure || scenario.insecure,
            max_message: self.max_message.or(scenario.max_message),
        }
    }

    /// The options every connection of the command uses.
    pub fn lower(
        &self,
        connect_timeout: Duration,
        read_buffer: usize,
    ) -> Result<ConnectOptions, Failure> {
        if self.insecure && self.cacert.is_some() {
            return Err(Failure::usage(
                "--insecure verifies nothing, so --cacert would have no effect: give one of them",
            ));
        }
        let tls = match (&self.cacert, self.insecure) {
            (None, false) => None,
            (cacert, insecure) => Some(tls::client_config(cacert.as_deref(), insecure).usage()?),
        };
        if self.insecure {
            note!("livegames: warning: --insecure: TLS certificates are not verified");
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        Ok(ConnectOptions {
            connect_timeout,
            read_buffer,
            max_message: Some(self.max_message.unwrap_or(DEFAULT_MAX_MESSAGE)),
            headers,
            subprotocols: self.subprotocols.clone(),
            tls,
            insecure: self.insecure,
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LIVEGAMES_ADDR", default_value = "127.0.0.1:8000")]
    pub addr: SocketAddr,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Replay speed of the mock upstreams (60 plays a game in about two minutes).
    #[arg(long, default_value = "1", value_parser = positive_f64)]
    pub speed: f64,
    /// Market ticks per second per live game: the stream's message rate.
    #[arg(long, default_value = "2", value_parser = rate)]
    pub rate: f64,
    /// ESPN site API host [default: the built-in mock].
    #[arg(long, value_parser = url)]
    pub espn_url: Option<String>,
    /// Kalshi trade API v2 base, e.g. https://api.elections.kalshi.com/trade-api/v2 [default: the built-in mock].
    #[arg(long, value_parser = url)]
    pub kalshi_url: Option<String>,
    /// Kalshi WebSocket URL [default: derived from --kalshi-url].
    #[arg(long, value_parser = url)]
    pub kalshi_ws_url: Option<String>,
    /// API-SPORTS base with a {sport} placeholder, e.g. https://v1.{sport}.api-sports.io [default: the built-in mock].
    #[arg(long)]
    pub apisports_url: Option<String>,
    /// API-SPORTS key (needed with --apisports-url; the mock's key is used otherwise).
    #[arg(long, env = "APISPORTS_KEY", hide_env_values = true)]
    pub apisports_key: Option<String>,
    /// Serve the mock upstreams on their own address instead of under /mock.
    #[arg(long)]
    pub mock_addr: Option<SocketAddr>,
    /// Read recordings from this folder (laid out like mock-feeds/) instead of the built-in ones.
    #[arg(long)]
    pub mock_feeds: Option<PathBuf>,
    /// Game map joining NBA, ESPN and Kalshi ids [default: the recordings' games.json].
    #[arg(long)]
    pub games_map: Option<PathBuf>,
    /// Most concurrent WebSocket clients; more get 503 with Retry-After.
    #[arg(long, default_value = "20000", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_conns: u32,
    /// Most open client connections of any kind (HTTP and WebSocket); at the limit the
    /// longest-waiting connection without a request makes room, else 503
    /// [default: --max-conns + 1024, within the open-files limit].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_open: Option<u32>,
    /// Time a client gets to send a complete request head, from connecting or from
    /// the head's first byte.
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub header_timeout: Duration,
    /// An HTTP connection with no request in progress is closed after this long.
    #[arg(long, default_value = "60s", value_parser = duration)]
    pub idle_timeout: Duration,
    /// Frames a client may fall behind before it is closed with 4008.
    #[arg(long, default_value = "1024", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub send_queue: u32,
    /// History kept per game for ?since= and the timeline, in MiB.
    #[arg(long, default_value = "32", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub history_mib: u32,
    /// Longest silence on a stream before a heartbeat.
    #[arg(long, default_value = "5s", value_parser = duration)]
    pub heartbeat: Duration,
    /// How often the ESPN scoreboard is polled.
    #[arg(long, default_value = "1s", value_parser = duration)]
    pub espn_poll: Duration,
    /// Timeout of each upstream request.
    #[arg(long, default_value = "2s", value_parser = duration)]
    pub upstream_timeout: Duration,
    /// A source with no good answer for this long is stale.
    #[arg(long, default_value = "5s", value_parser = duration)]
    pub stale_after: Duration,
    /// A source with no good answer for this long is down (its fields become null).
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub down_after: Duration,
    /// Longest wait between retries of a failing upstream.
    #[arg(long, default_value = "5s", value_parser = duration)]
    pub retry_max: Duration,
    /// A client write that takes longer marks the client as slow (close 4008).
    #[arg(long, default_value = "5s", value_parser = duration)]
    pub write_timeout: Duration,
    /// The base URL clients reach this server by (e.g. https://live.example.com),
    /// advertised in ws_url and timeline_url; default: the address the request reached.
    #[arg(long, value_name = "URL", value_parser = crate::serve::advertise::parse_public_url)]
    pub public_url: Option<url::Url>,
    /// A proxy in front sets Forwarded / X-Forwarded-Proto / X-Forwarded-Host:
    /// advertised URLs follow them. Only with a proxy that overwrites those headers.
    #[arg(long)]
    pub trust_proxy: bool,
    /// Client frames per second each WebSocket may send (bursts of twice that); the
    /// first frame over gets a rate_limited error, a client that goes on is closed
    /// with 1008. 0 turns the limit off.
    #[arg(long, default_value_t = crate::serve::config::DEFAULT_CLIENT_RATE)]
    pub client_rate: u32,
    /// Bearer token for /admin; the admin API is off without one.
    #[arg(long, env = "LIVEGAMES_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Fault to inject at start: SOURCE=MODE[:DURATION], e.g. espn=down:30s (repeatable).
    #[arg(long = "fault", value_name = "SOURCE=MODE[:DURATION]")]
    pub faults: Vec<FaultSpec>,
    /// How long scores stay cached.
    #[arg(long, default_value = "15s", value_parser = duration)]
    pub scores_ttl: Duration,
    /// API-SPORTS requests allowed per UTC day (client-side quota).
    #[arg(long, default_value = "100")]
    pub apisports_daily_quota: u32,
    /// API-SPORTS requests allowed per minute (client-side quota).
    #[arg(long, default_value = "10")]
    pub apisports_minute_quota: u32,
    /// Write live points, source health and scores to InfluxDB: http://host:8086/DB
    /// (1.x; user and password in the URL or LIVEGAMES_INFLUXDB_USER/_PASSWORD) or
    /// http://host:8086?org=ORG&bucket=BUCKET (2.x; token in LIVEGAMES_INFLUXDB_TOKEN).
    #[arg(long, env = "LIVEGAMES_INFLUXDB", value_name = "URL")]
    pub influxdb: Option<String>,
    /// Lines per InfluxDB write request.
    #[arg(long, default_value = "5000", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub influxdb_batch: u32,
    /// The longest a line waits before it is written.
    #[arg(long, default_value = "1s", value_parser = duration)]
    pub influxdb_flush: Duration,
    /// Lines held while InfluxDB is unreachable; past this the oldest are dropped.
    #[arg(long, default_value = "100000", value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub influxdb_queue: u32,
    /// How long shutdown waits for clients to get their close frame.
    #[arg(long, default_value = "5s", value_parser = duration)]
    pub shutdown_grace: Duration,
}

/// `--ws-ping`: `auto`, a duration, or `0s` for none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WsPing {
    Auto,
    Every(Duration),
    Off,
}

impl WsPing {
    fn every(self) -> Option<Duration> {
        match self {
            WsPing::Auto => Some(crate::load::plan::AUTO_PING_EVERY),
            WsPing::Every(d) => Some(d),
            WsPing::Off => None,
        }
    }

    fn budget(self) -> Option<u32> {
        (self == WsPing::Auto).then_some(crate::load::plan::AUTO_PINGS_PER_SECOND)
    }
}

fn ws_ping(s: &str) -> Result<WsPing, String> {
    if s == "auto" {
        return Ok(WsPing::Auto);
    }
    let d = duration(s).map_err(|e| format!("{e}; or auto"))?;
    Ok(if d.is_zero() {
        WsPing::Off
    } else {
        WsPing::Every(d)
    })
}

/// This machine's name (Linux), for `--worker`'s default.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "worker".into())
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{flag}: {message}")]
pub struct LowerError {
    pub flag: &'static str,
    pub message: String,
}

impl ServeArgs {
    /// Builds the server config, checking relations between flags.
    pub fn lower(&self) -> Result<ServeConfig, LowerError> {
        if self.down_after < self.stale_after {
            return Err(LowerError {
                flag: "--down-after",
                message: format!(
                    "must not be shorter than --stale-after ({:?})",
                    self.stale_after
                ),
            });
        }
        for (flag, value) in [
            ("--header-timeout", self.header_timeout),
            ("--idle-timeout", self.idle_timeout),
        ] {
            if value < Duration::from_millis(100) {
                return Err(LowerError {
                    flag,
                    message: format!("must be at least 100ms, got {value:?}"),
                });
            }
        }
        if self.heartbeat < Duration::from_millis(500) {
            return Err(LowerError {
                flag: "--heartbeat",
                message: "must be at least 500ms".into(),
            });
        }
        if let Some(url) = &self.apisports_url
            && self.apisports_key.is_none()
        {
            tracing::warn!(%url, "--apisports-url without a key: the scores endpoints will answer 503 no_api_key");
        }
        let defaults = ServeConfig::default();
        let influxdb = match self.influxdb.as_deref().filter(|u| !u.is_empty()) {
            Some(raw) => Some(
                crate::influx::parse(raw, |name| std::env::var(name).ok()).map_err(|message| {
                    LowerError {
                        flag: "--influxdb",
                        message,
                    }
                })?,
            ),
            None => None,
        };
        if self.influxdb_flush < Duration::from_millis(10) {
            return Err(LowerError {
                flag: "--influxdb-flush",
                message: "must be at least 10ms".into(),
            });
        }
        Ok(ServeConfig {
            speed: self.speed,
            rate: self.rate,
            espn_url: self.espn_url.clone(),
            kalshi_url: self.kalshi_url.clone(),
            kalshi_ws_url: self.kalshi_ws_url.clone(),
            apisports_url: self.apisports_url.clone(),
            apisports_key: self.apisports_key.clone(),
            mock_addr: self.mock_addr,
            mock_feeds: self.mock_feeds.clone(),
            games_map: self.games_map.clone(),
            max_conns: self.max_conns as usize,
            max_open: self.max_open.map(|n| n as usize),
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            send_queue: self.send_queue as usize,
            history_bytes: self.history_mib as usize * 1024 * 1024,
            heartbeat: self.heartbeat,
            espn_poll: self.espn_poll,
            upstream_timeout: self.upstream_timeout,
            stale_after: self.stale_after,
            down_after: self.down_after,
            retry_max: self.retry_max,
            ws: crate::serve::WsSettings {
                write_timeout: self.write_timeout,
                inbound: crate::serve::inbound::InboundRate::per_second(self.client_rate),
                ..defaults.ws
            },
            admin_token: self.admin_token.clone().filter(|t| !t.is_empty()),
            advertise: crate::serve::advertise::Advertise {
                public_url: self.public_url.clone(),
                trust_proxy: self.trust_proxy,
            },
            faults: self.faults.clone(),
            scores: crate::serve::scores::ScoresConfig {
                ttl: self.scores_ttl,
                daily_quota: self.apisports_daily_quota,
                per_minute_quota: self.apisports_minute_quota,
                ..defaults.scores
            },
            influxdb,
            influx: crate::influx::WriterConfig {
                batch_lines: self.influxdb_batch as usize,
                flush_every: self.influxdb_flush,
                queue_lines: self.influxdb_queue as usize,
                ..defaults.influx.clone()
            },
            shutdown_grace: self.shutdown_grace,
            ..defaults
        })
    }
}

/// Arguments of a subcommand that is not built yet, taken whole so the message about
/// it is what the user sees rather than a flag error.
fn messages(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=100_000).contains(&n) => Ok(n),
        Ok(n) => Err(format!("must be 1..=100000, got {n}")),
        Err(e) => Err(e.to_string()),
    }
}

fn nonzero_duration(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d)
}

fn checks(s: &str) -> Result<crate::smoke::Selection, String> {
    crate::smoke::Selection::parse(s)
}

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
    #[arg(long, default_value = "20", value_parser = messages)]
    pub messages: usize,
    /// How long any one check may wait.
    #[arg(long, default_value = "30s", value_parser = nonzero_duration)]
    pub timeout: Duration,
    /// How far a frame's ts may be from this machine's clock.
    #[arg(long, default_value = "2s", value_parser = nonzero_duration)]
    pub max_skew: Duration,
    /// The server's heartbeat interval (the contract's is 5s).
    #[arg(long, default_value = "5s", value_parser = nonzero_duration)]
    pub heartbeat: Duration,
    /// Checks to run: names, prefixes (ws.*), `default`, `all`; comma-separated.
    #[arg(long, default_value = "default", value_parser = checks)]
    pub checks: crate::smoke::Selection,
    /// Bearer token for the admin checks (admin.faults).
    #[arg(long, env = "LIVEGAMES_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Count fields the contract does not know as violations.
    #[arg(long)]
    pub strict: bool,
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
            connect: self
                .connect
                .lower(self.timeout, crate::smoke::READ_BUFFER)?,
            ..SmokeConfig::new(target)
        })
    }
}

fn conns(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=100_000).contains(&n) => Ok(n),
        Ok(n) => Err(format!("must be 1..=100000, got {n}")),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Target: ws[s]://host:port (our layout), or a URL with {game_id} (filled from
    /// --games or the target's /api/live/games), or one stream URL. None: an embedded server.
    #[arg(value_parser = target)]
    pub url: Option<Target>,
    /// Concurrent WebSocket connections.
    #[arg(long, default_value = "10", value_parser = conns)]
    pub conns: usize,
    /// How long to run.
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub duration: Duration,
    /// Open the connections evenly over this time (0s: all at once).
    #[arg(long, default_value = "1s", value_parser = duration)]
    pub ramp: Duration,
    /// Message rate of the embedded server (ticks per second per live game).
    #[arg(long, default_value = "10", value_parser = rate)]
    pub rate: f64,
    /// Game ids to spread connections over (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub games: Vec<String>,
    /// Client messages per second per connection, on a fixed (open-model) schedule.
    #[arg(long, value_parser = positive_f64)]
    pub send_rate: Option<f64>,
    /// File with the JSON body to send ({id} is replaced by the message number); default a ping.
    #[arg(long)]
    pub send_template: Option<PathBuf>,
    /// JSON pointer of each frame's send time [default: /ts].
    #[arg(long, value_name = "POINTER")]
    pub ts_field: Option<String>,
    /// Unit of that time [default: us].
    #[arg(long, value_enum)]
    pub ts_unit: Option<TsUnit>,
    /// JSON pointer of each frame's sequence number; `none`: do not check loss and
    /// order [default: /seq].
    #[arg(long, value_name = "POINTER|none")]
    pub seq_field: Option<String>,
    /// JSON pointer where a reply echoes the {id} of a --send-template message (any
    /// frame); default: the `id` of our contract's pong frames.
    #[arg(long, value_name = "POINTER")]
    pub pong_match: Option<String>,
    /// Sent once right after each handshake and reconnect, before anything else: JSON,
    /// or @FILE; {game_id} and {since} (the last seq, or null) are filled in.
    #[arg(long, value_name = "JSON|@FILE")]
    pub subscribe: Option<String>,
    /// Reconnect after a disconnect, resuming with ?since=.
    #[arg(long)]
    pub reconnect: bool,
    /// Each connection closes itself after this long and resumes with ?since= (measures resumes).
    #[arg(long, value_parser = duration)]
    pub churn: Option<Duration>,
    /// Budget such as p99<250ms, connect_p99<1s, errors<1%, lost=0 (repeatable).
    #[arg(long = "budget", value_name = "EXPR")]
    pub budgets: Vec<String>,
    /// Where to write report.json [default: reports/<timestamp>/].
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// No progress display and no progress lines on stderr (with --json: only the
    /// JSON on stdout).
    #[arg(long)]
    pub quiet: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Stream the per-second figures while the run goes: influxdb=URL (InfluxDB 1.x
    /// http://host:8086/DB or 2.x http://host:8086?org=O&bucket=B, credentials as for
    /// serve --influxdb), tagged with --run-id and --worker, for a live Grafana panel.
    #[arg(long, value_name = "influxdb=URL")]
    pub out: Option<String>,
    /// The run's id, in --out and in the report (`report merge` refuses to mix runs)
    /// [default: the report folder's name].
    #[arg(long)]
    pub run_id: Option<String>,
    /// This worker's name, in --out and in the report [default: the host name].
    #[arg(long)]
    pub worker: Option<String>,
    /// This process is shard I of N of one run (0-based): it opens every Nth of the
    /// run's --conns, so N workers together open exactly --conns.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// The run has N shards; this worker's index is JOB_COMPLETION_INDEX (set by a
    /// Kubernetes Indexed Job), unless --shard gives it.
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Start measuring at this instant (RFC 3339, e.g. 2026-12-02T20:00:00Z, or +30s
    /// from now), so the workers of a sharded run line up; the report says how late
    /// this worker really started.
    #[arg(long, value_name = "TIME|+DURATION")]
    pub start_at: Option<String>,
    /// HTTP load instead of WebSockets: --conns users GET --paths in turn (via goose).
    #[arg(long, conflicts_with_all = ["scenario", "send_rate", "reconnect", "churn"])]
    pub http: bool,
    /// Paths for --http (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "/api/live/games,/api/nfl/scores,/api/nhl/scores",
        requires = "http"
    )]
    pub paths: Vec<String>,
    /// WebSocket protocol Ping per connection (RTT any server answers): `auto` (every
    /// 10 s, stretched so all connections together send at most 20 a second), a
    /// duration, or 0s (off). With pings on, a connection quiet for --idle-timeout is
    /// pinged before it counts as failed.
    #[arg(long, default_value = "auto", value_parser = ws_ping)]
    pub ws_ping: WsPing,
    /// Scenario file (TOML) with stages and budgets; see scenarios/.
    #[arg(long, conflicts_with_all = ["conns", "duration", "ramp", "rate", "games", "send_rate", "reconnect", "churn"])]
    pub scenario: Option<PathBuf>,
    /// Give up a connection attempt after this long.
    #[arg(long, default_value = "5s", value_parser = duration)]
    pub connect_timeout: Duration,
    /// A connection with no frame for this long counts as failed (`idle_timeout`); with
    /// --ws-ping on it is pinged first, and fails only if not even a pong comes within
    /// a third of this.
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub idle_timeout: Duration,
}

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

impl LoadArgs {
    /// The run these flags (and `--scenario`) describe. `progress_bar`: whether a live
    /// display can be shown (stderr is a terminal).
    pub fn lower(&self, progress_bar: bool) -> Result<Plan, Failure> {
        let budgets = budget::parse_all(&self.budgets).usage()?;
        let scenario = self.scenario.as_deref().map(read_scenario).transpose()?;
        let stages = match &scenario {
            None => vec![self.single_stage(budgets)],
            Some(scenario) => scenario.stages(&FlagDefaults {
                target: self.url.clone(),
                rate: self.rate,
                paths: self.paths.clone(),
                budgets,
            }),
        };
        if let Some((stage, bad)) = stages
            .iter()
            .find_map(|s| s.bad_http_path().map(|bad| (s, bad)))
        {
            return Err(Failure::usage(format!(
                "{}: HTTP path {bad:?} must start with '/'",
                stage.label
            )));
        }
        let connect = match &scenario {
            Some(scenario) => self.connect.with_scenario(scenario),
            None => self.connect.clone(),
        };
        let file = scenario.as_ref();
        let report_dir = self.report.clone().unwrap_or_else(default_report_dir);
        let live_out = self.live_out(&report_dir)?;
        let worker = self.worker_plan(&stages)?;
        Ok(Plan {
            stages,
            scenario: scenario.is_some(),
            report_dir,
            live_out,
            vu: VuConfig {
                connect: connect.lower(self.connect_timeout, DEFAULT_READ_BUFFER)?,
                idle_timeout: self.idle_timeout,
                send_template: self.send_template(file)?,
                subscribe: self.subscribe(file)?,
                reader: FrameReader::new(&self.frame_shape(file)).usage()?,
                ws_ping: self.ws_ping.every(),
                ws_ping_budget: self.ws_ping.budget(),
                ..VuConfig::default()
            },
            output: Output {
                json: self.json,
                quiet: self.quiet,
                progress_bar,
            },
            worker,
            start_at: self
                .start_at
                .as_deref()
                .map(|at| start_instant(at, std::time::SystemTime::now()))
                .transpose()
                .usage()?,
        })
    }

    /// `--shard`/`--shards` (and JOB_COMPLETION_INDEX): this process as one worker of
    /// a run; every stage must leave each shard a connection.
    fn worker_plan(&self, stages: &[StagePlan]) -> Result<Option<WorkerPlan>, Failure> {
        let shard = Shard::resolve(self.shard.as_deref(), self.shards, |name| {
            std::env::var(name).ok()
        })
        .usage()?;
        let Some(shard) = shard else {
            return Ok(None);
        };
        for stage in stages {
            let what = if stages.len() == 1 {
                "--conns".to_owned()
            } else {
                format!("stage {:?}: conns", stage.label)
            };
            shard.check_conns(&what, stage.conns).usage()?;
        }
        Ok(Some(WorkerPlan {
            shard,
            name: self.worker.clone().unwrap_or_else(host_name),
            run_id: self.run_id.clone(),
        }))
    }

    /// `--out influxdb=URL` with the run's tags; only InfluxDB is spoken.
    fn live_out(&self, report_dir: &std::path::Path) -> Result<Option<LiveOut>, Failure> {
        let Some(spec) = self.out.as_deref() else {
            return Ok(None);
        };
        let Some(url) = spec.strip_prefix("influxdb=") else {
            return Err(Failure::usage(format!(
                "--out {spec:?}: the one output is influxdb=URL (e.g. influxdb=http://localhost:8086/k6)"
            )));
        };
        let target = crate::influx::parse(url, |name| std::env::var(name).ok())
            .map_err(|e| Failure::usage(format!("--out: {e}")))?;
        let run_id = self.run_id.clone().unwrap_or_else(|| {
            report_dir
                .file_name()
                .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned())
        });
        let worker = self.worker.clone().unwrap_or_else(host_name);
        Ok(Some(LiveOut {
            target,
            run_id,
            worker,
        }))
    }

    fn single_stage(&self, budgets: Vec<Budget>) -> StagePlan {
        StagePlan {
            label: format!("{} connections", self.conns),
            target: self.url.clone(),
            games: self.games.clone(),
            conns: self.conns,
            duration: self.duration,
            ramp: self.ramp,
            rate: self.rate,
            send_rate: self.send_rate,
            reconnect: self.reconnect,
            churn: self.churn,
            http: self.http.then(|| self.paths.clone()),
            budgets,
        }
    }

    /// The client message: `--send-template`'s file (JSON once `{id}` is a number), or
    /// our contract's ping.
    fn send_template(&self, file: Option<&Scenario>) -> Result<String, Failure> {
        let given = self
            .send_template
            .as_ref()
            .or(file.and_then(|f| f.send_template.as_ref()));
        let Some(path) = given else {
            return Ok(DEFAULT_PING.to_owned());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--send-template {}", path.display()))
            .usage()?;
        if serde_json::from_str::<serde_json::Value>(&text.replace("{id}", "0")).is_err() {
            return Err(Failure::usage(format!(
                "--send-template {}: not JSON (with {{id}} read as a number)",
                path.display()
            )));
        }
        Ok(text.trim().to_owned())
    }
}

impl LoadArgs {
    /// Where frames keep what `load` reads: the flags, else the scenario's keys, else
    /// our contract.
    fn frame_shape(&self, file: Option<&Scenario>) -> FrameShape {
        let contract = FrameShape::default();
        let pick = |flag: &Option<String>, key: Option<&Option<String>>| {
            flag.clone().or_else(|| key.cloned().flatten())
        };
        let seq = pick(&self.seq_field, file.map(|f| &f.seq_field))
            .or(contract.seq)
            .filter(|s| s != "none");
        FrameShape {
            ts: TsSpec {
                pointer: pick(&self.ts_field, file.map(|f| &f.ts_field))
                    .unwrap_or(contract.ts.pointer),
                unit: self
                    .ts_unit
                    .or(file.and_then(|f| f.ts_unit))
                    .unwrap_or(contract.ts.unit),
            },
            seq,
            reply_id: pick(&self.pong_match, file.map(|f| &f.pong_match)),
        }
    }

    /// `--subscribe`: the message itself, or a file's (`@FILE`); JSON once its
    /// placeholders are filled.
    fn subscribe(&self, file: Option<&Scenario>) -> Result<Option<String>, Failure> {
        let given = self
            .subscribe
            .as_deref()
            .or(file.and_then(|f| f.subscribe.as_deref()));
        subscribe_message(given)
    }
}

/// `--subscribe`: the message itself, or a file's (`@FILE`); JSON once its
/// placeholders are filled.
fn subscribe_message(given: Option<&str>) -> Result<Option<String>, Failure> {
    let Some(given) = given else {
        return Ok(None);
    };
    let text = match given.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("--subscribe @{path}"))
            .usage()?,
        None => given.to_owned(),
    };
    let filled = text.replace("{game_id}", "g").replace("{since}", "0");
    if serde_json::from_str::<serde_json::Value>(&filled).is_err() {
        return Err(Failure::usage(format!(
            "--subscribe: not JSON (with {{game_id}} and {{since}} filled in): {}",
            text.trim()
        )));
    }
    Ok(Some(text.trim().to_owned()))
}

/// A scenario file, parsed (mistakes are usage errors with the line and column).
fn read_scenario(path: &std::path::Path) -> Result<Scenario, Failure> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--scenario {}", path.display()))
        .usage()?;
    scenario::parse(&path.display().to_string(), &text).usage()
}

/// `reports/<UTC timestamp>/`: a new folder per run.
fn default_report_dir() -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "-");
    PathBuf::from("reports").join(stamp)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn serve(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let argv = ["livegames", "serve"].iter().chain(args).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::Serve(a) => Ok(*a),
            _ => unreachable!(),
        }
    }

    #[test]
    fn serve_defaults_lower_to_the_default_config() {
        let c = serve(&[]).unwrap().lower().unwrap();
        assert_eq!((c.rate, c.speed, c.max_conns), (2.0, 1.0, 20_000));
    }

    #[test]
    fn serve_rejects_bad_values_naming_the_flag() {
        let e = serve(&["--rate", "0"]).unwrap_err().to_string();
        assert!(e.contains("--rate") && e.contains("positive"), "{e}");
        let e = serve(&["--speed", "fast"]).unwrap_err().to_string();
        assert!(e.contains("--speed"), "{e}");
        let e = serve(&["--heartbeat", "5 parsecs"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--heartbeat"), "{e}");
        let e = serve(&["--fault", "espn=exploded"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown fault mode"), "{e}");
        let e = serve(&["--espn-url", "ftp://x"]).unwrap_err().to_string();
        assert!(e.contains("unsupported scheme"), "{e}");
    }

    #[test]
    fn connection_limits_lower_with_their_defaults_and_zero_turns_the_rate_off() {
        let c = serve(&[]).unwrap().lower().unwrap();
        assert_eq!(c.header_timeout, Duration::from_secs(10));
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.max_open, None);
        let rate = c.ws.inbound.expect("a client frame limit by default");
        assert_eq!((rate.per_second, rate.burst), (100.0, 200.0));
        let c = serve(&["--client-rate", "0", "--max-open", "300"])
            .unwrap()
            .lower()
            .unwrap();
        assert_eq!((c.ws.inbound, c.max_open), (None, Some(300)));
        let e = serve(&["--header-timeout", "10ms"])
            .unwrap()
            .lower()
            .unwrap_err();
        assert_eq!(e.flag, "--header-timeout");
    }

    #[test]
    fn json_and_quiet_go_together() {
        let argv = ["livegames", "load", "--json", "--quiet"];
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Load(a) => assert!(a.json && a.quiet),
            _ => unreachable!(),
        }
    }

    #[test]
    fn ws_ping_is_auto_by_default_and_takes_a_duration_or_off() {
        let ping = |extra: &[&str]| {
            let argv: Vec<&str> = ["livegames", "load"].iter().chain(extra).copied().collect();
            match Cli::try_parse_from(argv).unwrap().command {
                Command::Load(a) => a.ws_ping,
                _ => unreachable!(),
            }
        };
        assert_eq!(ping(&[]), WsPing::Auto);
        assert_eq!(
            ping(&["--ws-ping", "2s"]),
            WsPing::Every(Duration::from_secs(2))
        );
        assert_eq!(ping(&["--ws-ping", "0s"]), WsPing::Off);
        assert_eq!(WsPing::Auto.budget(), Some(20));
        assert_eq!(WsPing::Every(Duration::from_secs(2)).budget(), None);
        assert!(Cli::try_parse_from(["livegames", "load", "--ws-ping", "often"]).is_err());
    }

    #[test]
    fn auto_pings_stay_within_their_budget_however_many_connections() {
        use crate::load::plan::{AUTO_PING_EVERY, AUTO_PINGS_PER_SECOND, ping_interval};
        let auto = |conns| ping_interval(AUTO_PING_EVERY, conns, Some(AUTO_PINGS_PER_SECOND));
        assert_eq!(
            auto(50),
            Duration::from_secs(10),
            "few connections: every 10 s"
        );
        assert_eq!(auto(200), Duration::from_secs(10));
        assert_eq!(auto(1_000), Duration::from_secs(50));
        assert_eq!(auto(10_000), Duration::from_secs(500));
        for conns in [1, 199, 201, 7_777, 100_000] {
            let per_second = conns as f64 / auto(conns).as_secs_f64();
            assert!(per_second <= 20.0 + 1e-9, "{conns}: {per_second}/s");
        }
        let fixed = ping_interval(Duration::from_secs(1), 10_000, None);
        assert_eq!(fixed, Duration::from_secs(1), "a chosen interval is kept");
    }

    #[test]
    fn down_after_must_not_be_shorter_than_stale_after() {
        let e = serve(&["--stale-after", "10s", "--down-after", "5s"])
            .unwrap()
            .lower()
            .unwrap_err();
        assert_eq!(e.flag, "--down-after");
    }
}
