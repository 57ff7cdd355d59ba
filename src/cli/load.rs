//! `livegames load`: its flags, their lowering into a [`Plan`] (with a scenario file's
//! keys where one is given), and the run. Every default is read from the library's
//! [`StagePlan`], [`VuConfig`] and [`FrameShape`] defaults.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use tokio_util::sync::CancellationToken;

use super::connect::{ConnectArgs, subscribe_message};
use super::embedded::EmbeddedServe;
use super::runtime::{block_on, cancel_on_signal};
use super::values::{count, duration, positive, rate, target};
use crate::client::Target;
use crate::client::target::DEFAULT_READ_BUFFER;
use crate::client::template::Template;
use crate::load::plan::budget::{self, Budget};
use crate::load::plan::scenario::{self, FlagDefaults, Scenario};
use crate::load::plan::shard::{Shard, start_instant};
use crate::load::plan::{DEFAULT_HTTP_PATHS, LiveOut, WorkerPlan};
use crate::load::runner;
use crate::load::session::VuConfig;
use crate::load::session::config::{AUTO_PING_EVERY, AUTO_PINGS_PER_SECOND};
use crate::load::session::frame::{Decode, FrameReader, FrameShape, TsSpec, TsUnit};
use crate::load::session::link::Protocol;
use crate::load::session::script::Step;
use crate::load::session::socketio::SocketIoOptions;
use crate::load::{Output, Plan, StagePlan};
use crate::outcome::{Classify, CommandResult, Failure};
use crate::units::show_duration;

/// What `livegames load` runs with when no flag says otherwise.
static STAGE: LazyLock<StagePlan> = LazyLock::new(StagePlan::default);
static USER: LazyLock<VuConfig> = LazyLock::new(VuConfig::default);
static SHAPE: LazyLock<FrameShape> = LazyLock::new(FrameShape::default);

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Target: ws[s]://host:port (our layout), or a URL with {game_id} (filled from
    /// --games or the target's /api/live/games), or one stream URL. None: an embedded server.
    #[arg(value_parser = target)]
    pub url: Option<Target>,
    /// Concurrent WebSocket connections.
    #[arg(long, default_value_t = STAGE.conns, value_parser = count)]
    pub conns: usize,
    /// How long to run.
    #[arg(long, default_value = show_duration(STAGE.duration), value_parser = duration)]
    pub duration: Duration,
    /// Open the connections evenly over this time (0s: all at once).
    #[arg(long, default_value = show_duration(STAGE.ramp), value_parser = duration)]
    pub ramp: Duration,
    /// Message rate of the embedded server (ticks per second per live game).
    #[arg(long, default_value_t = STAGE.rate, value_parser = rate)]
    pub rate: f64,
    /// Game ids to spread connections over (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub games: Vec<String>,
    /// Client messages per second per connection, on a fixed (open-model) schedule.
    #[arg(long, value_parser = positive)]
    pub send_rate: Option<f64>,
    /// File with the JSON body to send ({id} is replaced by the message number); default a ping.
    #[arg(long)]
    pub send_template: Option<PathBuf>,
    // The frame fields have no clap default: a scenario file's keys must not lose to
    // one. Their help shows the contract's.
    #[arg(long, value_name = "POINTER", help = format!(
        "JSON pointer of each frame's send time [default: {}]", SHAPE.ts.pointer))]
    pub ts_field: Option<String>,
    #[arg(long, value_enum, help = format!(
        "Unit of that time [default: {}]", unit_name(SHAPE.ts.unit)))]
    pub ts_unit: Option<TsUnit>,
    #[arg(long, value_name = "POINTER|none", help = format!(
        "JSON pointer of each frame's sequence number; `none`: do not check loss and \
         order [default: {}]", SHAPE.seq.as_deref().unwrap_or("none")))]
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
    /// Connections that end early and do not come back are expected: the `stayed`
    /// check reports them without failing the run.
    #[arg(long)]
    pub allow_drops: bool,
    /// What the streams speak: `ws` (WebSocket) or `sse` (Server-Sent Events over
    /// HTTP; a bare host streams from /sse/live/{game_id}; reconnects resume with
    /// Last-Event-ID; one-way, so no --send-rate, --subscribe or --subprotocol).
    #[arg(long, value_enum, default_value = "ws")]
    pub protocol: Protocol,
    /// How frames are decoded before their fields are read: json (binary frames in
    /// UTF-8 too), msgpack or cbor (binary frames decoded into the same pointers),
    /// stomp (STOMP frames as JSON: /command, /headers/NAME, /body), text or bytes
    /// (arrival only: nothing read) [default: json]
    #[arg(long, value_enum)]
    pub decode: Option<Decode>,
    /// socket.io: the namespace to connect to.
    #[arg(long, default_value = "/", value_name = "NAMESPACE")]
    pub sio_namespace: String,
    /// socket.io: auth data sent with the namespace connect (a JSON object).
    #[arg(long, value_name = "JSON")]
    pub sio_auth: Option<String>,
    /// socket.io: measure only events of this name [default: every event].
    #[arg(long, value_name = "NAME")]
    pub sio_event: Option<String>,
    /// socket.io: the event name --subscribe and --send-rate messages are emitted as.
    #[arg(long, default_value = "message", value_name = "NAME")]
    pub sio_emit: String,
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
        default_value = DEFAULT_HTTP_PATHS.join(","),
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
    #[arg(long, default_value = show_duration(USER.connect.connect_timeout), value_parser = duration)]
    pub connect_timeout: Duration,
    /// A connection with no frame for this long counts as failed (`idle_timeout`); with
    /// --ws-ping on it is pinged first, and fails only if not even a pong comes within
    /// a third of this.
    #[arg(long, default_value = show_duration(USER.idle_timeout), value_parser = duration)]
    pub idle_timeout: Duration,
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
            WsPing::Auto => Some(AUTO_PING_EVERY),
            WsPing::Every(d) => Some(d),
            WsPing::Off => None,
        }
    }

    fn budget(self) -> Option<u32> {
        (self == WsPing::Auto).then_some(AUTO_PINGS_PER_SECOND)
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

/// How `--ts-unit` names a unit.
fn unit_name(unit: TsUnit) -> String {
    unit.to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

pub fn run(args: LoadArgs) -> CommandResult {
    let progress_bar = !args.quiet && !args.json && std::io::stderr().is_terminal();
    let plan = args.lower(progress_bar)?;
    block_on(async move {
        // Ctrl-C stops the run early; what was measured is still reported.
        let stop = CancellationToken::new();
        let _signals = cancel_on_signal(stop.clone())?;
        runner::run(&plan, &EmbeddedServe, &stop, &mut std::io::stdout()).await
    })?
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
        let file = scenario.as_ref();
        self.check_protocol(&stages, file)?;
        let report_dir = self.report.clone().unwrap_or_else(default_report_dir);
        Ok(Plan {
            live_out: self.live_out(&report_dir)?,
            worker: self.worker_plan(&stages)?,
            vu: self.user(file)?,
            stages,
            scenario: scenario.is_some(),
            report_dir,
            output: Output {
                json: self.json,
                quiet: self.quiet,
                progress_bar,
            },
            start_at: self
                .start_at
                .as_deref()
                .map(|at| start_instant(at, std::time::SystemTime::now()))
                .transpose()
                .usage()?,
        })
    }

    /// What every connection of the run shares.
    fn user(&self, file: Option<&Scenario>) -> Result<VuConfig, Failure> {
        let connect = match file {
            Some(scenario) => self.connect.with_scenario(scenario),
            None => self.connect.clone(),
        };
        Ok(VuConfig {
            connect: connect.lower(self.connect_timeout, DEFAULT_READ_BUFFER)?,
            idle_timeout: self.idle_timeout,
            send_template: self.send_template(file)?,
            subscribe: self.subscribe(file)?,
            reader: FrameReader::new(&self.frame_shape(file)).usage()?,
            ws_ping_budget: self.ws_ping.budget(),
            drops_allowed: self.allow_drops,
            protocol: self.protocol,
            decode: self
                .decode
                .or(file.and_then(|f| f.decode))
                .unwrap_or_default(),
            socketio: self.socketio()?,
            session: file.map(|f| f.session.clone()).unwrap_or_default(),
            replies: file.map(|f| f.reply.clone()).unwrap_or_default(),
            // An SSE stream carries nothing back: no protocol pings either.
            ws_ping: self
                .ws_ping
                .every()
                .filter(|_| self.protocol == Protocol::Ws),
            ..VuConfig::default()
        })
    }

    /// How socket.io is spoken: the namespace, auth, the event measured and emitted.
    fn socketio(&self) -> Result<SocketIoOptions, Failure> {
        if let Some(auth) = &self.sio_auth {
            let parsed: Result<serde_json::Map<String, serde_json::Value>, _> =
                serde_json::from_str(auth);
            if parsed.is_err() {
                return Err(Failure::usage(format!(
                    "--sio-auth: expected a JSON object, got {}",
                    crate::text::cut(auth, 80)
                )));
            }
        }
        if !self.sio_namespace.starts_with('/') {
            return Err(Failure::usage(format!(
                "--sio-namespace: {:?} must start with '/'",
                self.sio_namespace
            )));
        }
        Ok(SocketIoOptions {
            namespace: self.sio_namespace.clone(),
            auth: self.sio_auth.clone(),
            event: self.sio_event.clone(),
            emit: self.sio_emit.clone(),
        })
    }

    /// Flags that need a way back to the server are refused on one-way SSE streams.
    fn check_protocol(&self, stages: &[StagePlan], file: Option<&Scenario>) -> Result<(), Failure> {
        if self.protocol != Protocol::Sse {
            return Ok(());
        }
        let sends = stages.iter().any(|s| s.send_rate.is_some());
        let subscribes = self.subscribe.is_some() || file.is_some_and(|f| f.subscribe.is_some());
        let offers = !self.connect.subprotocols.is_empty();
        let scripted = file.is_some_and(|f| {
            !f.reply.is_empty() || f.session.iter().any(|s| matches!(s, Step::Send(_)))
        });
        let refused = [
            (sends, "--send-rate"),
            (subscribes, "--subscribe"),
            (offers, "--subprotocol"),
            (scripted, "a scenario's [[session]] send or [[reply]]"),
        ];
        match refused.iter().find(|(given, _)| *given) {
            Some((_, flag)) => Err(Failure::usage(format!(
                "{flag} needs a WebSocket: a Server-Sent Events stream (--protocol sse) carries nothing back to the server"
            ))),
            None => Ok(()),
        }
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
    fn live_out(&self, report_dir: &Path) -> Result<Option<LiveOut>, Failure> {
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
    fn send_template(&self, file: Option<&Scenario>) -> Result<Template, Failure> {
        let given = self
            .send_template
            .as_ref()
            .or(file.and_then(|f| f.send_template.as_ref()));
        let Some(path) = given else {
            return Ok(Template::contract_ping());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--send-template {}", path.display()))
            .usage()?;
        Template::parse(&text)
            .map_err(|e| Failure::usage(format!("--send-template {}: {e}", path.display())))
    }

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

    /// `--subscribe`, or the scenario's `subscribe`.
    fn subscribe(&self, file: Option<&Scenario>) -> Result<Option<Template>, Failure> {
        let given = self
            .subscribe
            .as_deref()
            .or(file.and_then(|f| f.subscribe.as_deref()));
        subscribe_message(given)
    }
}

/// A scenario file, parsed (mistakes are usage errors with the line and column).
fn read_scenario(path: &Path) -> Result<Scenario, Failure> {
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

/// This machine's name (Linux), for `--worker`'s default.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "worker".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn load(extra: &[&str]) -> LoadArgs {
        let argv: Vec<&str> = ["livegames", "load"].iter().chain(extra).copied().collect();
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Load(a) => *a,
            _ => unreachable!(),
        }
    }

    /// Every flag's default, lowered, is the library's default, field by field: the
    /// stage as `StagePlan::default`, each user as `VuConfig::default` (compared as
    /// `Debug` shows it), the frames read as our contract lays them out.
    #[test]
    fn every_load_default_is_the_libraries() {
        let plan = load(&[]).lower(false).unwrap();
        assert_eq!(plan.stages, [StagePlan::default()]);
        assert_eq!(
            format!("{:#?}", plan.vu),
            format!("{:#?}", VuConfig::default())
        );
        assert_eq!(
            (plan.worker, plan.live_out, plan.start_at),
            (None, None, None)
        );
        assert!(!plan.scenario);
        let http = load(&["--http"]).lower(false).unwrap();
        assert_eq!(
            http.stages[0].http.as_deref(),
            Some(&DEFAULT_HTTP_PATHS.map(String::from)[..])
        );
    }

    #[test]
    fn json_and_quiet_go_together() {
        let a = load(&["--json", "--quiet"]);
        assert!(a.json && a.quiet);
    }

    #[test]
    fn ws_ping_is_auto_by_default_and_takes_a_duration_or_off() {
        let ping = |extra: &[&str]| load(extra).ws_ping;
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
}
