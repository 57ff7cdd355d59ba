//! `livegames load`: wiring flags, the optional embedded server and the report.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::args::{LoadArgs, MergeArgs};
use super::exit::Exit;
use crate::client::{discover, ws};
use crate::load::budget;
use crate::load::vu::{DEFAULT_PING, TsSpec, VuConfig};
use crate::load::{LoadConfig, Tick};
use crate::retry::Backoff;

/// Why a load run could not start.
enum Setup {
    Usage(String),
    Unreachable(String),
}

pub fn run(args: LoadArgs) -> Exit {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("livegames load: cannot start the runtime: {e}");
            return Exit::Failed;
        }
    };
    rt.block_on(run_async(args))
}

/// One stage to run: a plain `load` is a single stage; a scenario has several.
struct StagePlan {
    label: String,
    url: Option<String>,
    games: Vec<String>,
    conns: usize,
    duration: Duration,
    ramp: Duration,
    rate: f64,
    send_rate: Option<f64>,
    reconnect: bool,
    churn: Option<Duration>,
    /// An HTTP stage: the paths its users GET.
    http: Option<Vec<String>>,
    budgets: Vec<budget::Budget>,
}

/// The stages to run, from flags or from `--scenario`.
fn plan(args: &LoadArgs) -> Result<Vec<StagePlan>, String> {
    let flag_budgets = budget::parse_all(&args.budgets).map_err(|e| e.to_string())?;
    let Some(path) = &args.scenario else {
        return Ok(vec![StagePlan {
            label: format!("{} connections", args.conns),
            url: args.url.clone(),
            games: args.games.clone(),
            conns: args.conns,
            duration: args.duration,
            ramp: args.ramp,
            rate: args.rate,
            send_rate: args.send_rate,
            reconnect: args.reconnect,
            churn: args.churn,
            http: args.http.then(|| args.paths.clone()),
            budgets: flag_budgets,
        }]);
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--scenario {}: {e}", path.display()))?;
    let scenario = crate::load::scenario::parse(&path.display().to_string(), &text)
        .map_err(|e| e.to_string())?;
    Ok(scenario
        .stages
        .iter()
        .enumerate()
        .map(|(i, stage)| StagePlan {
            label: stage.label(i),
            url: args.url.clone().or_else(|| scenario.url.clone()),
            games: scenario.games.clone(),
            conns: stage.conns,
            duration: stage.duration,
            ramp: stage.ramp.unwrap_or(Duration::from_secs(1)),
            rate: stage.rate.or(scenario.rate).unwrap_or(args.rate),
            send_rate: stage.send_rate.or(scenario.send_rate),
            reconnect: stage.reconnect.unwrap_or(scenario.reconnect),
            churn: stage.churn.or(scenario.churn),
            http: stage
                .http
                .then(|| stage.paths.clone().unwrap_or_else(|| args.paths.clone())),
            budgets: scenario
                .budgets
                .iter()
                .chain(&stage.budgets)
                .chain(&flag_budgets)
                .cloned()
                .collect(),
        })
        .collect())
}

async fn run_async(args: LoadArgs) -> Exit {
    let stages = match plan(&args) {
        Ok(s) => s,
        Err(e) => return usage(&e),
    };
    let send_template = match &args.send_template {
        None => DEFAULT_PING.to_owned(),
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) if serde_json::from_str::<serde_json::Value>(&t.replace("{id}", "0")).is_ok() => {
                t.trim().to_owned()
            }
            Ok(_) => {
                return usage(&format!(
                    "--send-template {}: not JSON (with {{id}} read as a number)",
                    path.display()
                ));
            }
            Err(e) => return usage(&format!("--send-template {}: {e}", path.display())),
        },
    };
    crate::load::raise_open_files_limit(
        stages.iter().map(|s| s.conns).max().unwrap_or(0) as u64 * 2 + 256,
    );
    let dir = args.report.clone().unwrap_or_else(default_report_dir);
    let scenario = stages.len() > 1 || args.scenario.is_some();
    let mut results = Vec::new();
    for (i, stage) in stages.iter().enumerate() {
        let stage_dir = if scenario {
            dir.join(format!("{:02}-{}", i + 1, slug(&stage.label)))
        } else {
            dir.clone()
        };
        if scenario && !args.json {
            println!("== stage {}/{}: {}", i + 1, stages.len(), stage.label);
        }
        if let Some(bad) = stage.http.iter().flatten().find(|p| !p.starts_with('/')) {
            return usage(&format!(
                "{}: HTTP path {bad:?} must start with '/'",
                stage.label
            ));
        }
        let outcome = match &stage.http {
            Some(paths) => run_http_stage(stage, paths, &args).await,
            None => run_stage(stage, &args, &send_template).await,
        };
        let summary = match outcome {
            Ok(s) => s,
            Err(exit) => return exit,
        };
        if args.json {
            match serde_json::to_string_pretty(&summary) {
                Ok(j) => println!("{j}"),
                Err(e) => eprintln!("livegames load: cannot render JSON: {e}"),
            }
        } else {
            print!("{}", summary.render_text());
        }
        if let Err(e) = crate::load::report::write_all(&stage_dir, &summary) {
            eprintln!(
                "livegames load: cannot write the report in {}: {e}",
                stage_dir.display()
            );
            return Exit::Failed;
        }
        let stopped = summary.stopped_early;
        results.push((stage.label.clone(), stage_dir, summary));
        if stopped {
            break;
        }
    }
    if scenario {
        if let Err(e) = crate::load::report::write_scenario(&dir, &results) {
            eprintln!(
                "livegames load: cannot write the report in {}: {e}",
                dir.display()
            );
            return Exit::Failed;
        }
        if !args.json {
            print!("{}", crate::load::report::scenario_table(&results));
        }
    }
    eprintln!(
        "report: {}/ (report.json, report.html, junit.xml, latency.hlog{})",
        dir.display(),
        if scenario {
            " per stage; scenario.json"
        } else {
            ""
        }
    );
    if let Some((label, _, s)) = results.iter().find(|(_, _, s)| !s.reached_target()) {
        let why: Vec<String> = s
            .totals
            .errors
            .iter()
            .map(|(k, v)| format!("{k} x{v}"))
            .collect();
        eprintln!(
            "livegames load: {label}: the target could not be reached ({})",
            why.join(", ")
        );
        return Exit::Unreachable;
    }
    if results.iter().all(|(_, _, s)| s.budgets_passed()) {
        Exit::Ok
    } else {
        Exit::Failed
    }
}

/// Runs one stage: its embedded server if it has no URL, target discovery, the load.
async fn run_stage(
    stage: &StagePlan,
    args: &LoadArgs,
    send_template: &str,
) -> Result<crate::load::summary::LoadSummary, Exit> {
    let mut embedded = None;
    let url = match &stage.url {
        Some(u) => u.clone(),
        None => match crate::serve::spawn(
            crate::serve::ServeConfig::embedded(stage.rate),
            "127.0.0.1:0",
        )
        .await
        {
            Ok(server) => {
                let url = server.ws_url();
                wait_for_live_games(&server.http_url()).await;
                embedded = Some(server);
                url
            }
            Err(e) => {
                eprintln!("livegames load: cannot start the embedded server: {e}");
                return Err(Exit::Failed);
            }
        },
    };
    let targets = match resolve_targets(&url, &stage.games).await {
        Ok(t) => t,
        Err(Setup::Usage(m)) => return Err(usage(&m)),
        Err(Setup::Unreachable(m)) => {
            eprintln!("livegames load: {m}");
            return Err(Exit::Unreachable);
        }
    };
    let config = LoadConfig {
        targets,
        conns: stage.conns,
        duration: stage.duration,
        ramp: stage.ramp,
        vu: VuConfig {
            connect_timeout: args.connect_timeout,
            idle_timeout: args.idle_timeout,
            send_rate: stage.send_rate,
            send_template: send_template.to_owned(),
            ts: TsSpec {
                pointer: args.ts_field.clone(),
                unit: args.ts_unit,
            },
            reconnect: stage.reconnect.then_some(Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_secs(5),
            }),
            churn: stage.churn,
            ws_ping: (!args.ws_ping.is_zero()).then_some(args.ws_ping),
            read_buffer: 4 * 1024,
        },
        budgets: stage.budgets.clone(),
    };
    let summary = execute(config, args).await;
    if let Some(server) = embedded {
        let _ = server.stop().await;
    }
    Ok(summary)
}

/// An HTTP stage: goose users GET `paths` in turn, reported like a WebSocket stage.
async fn run_http_stage(
    stage: &StagePlan,
    paths: &[String],
    args: &LoadArgs,
) -> Result<crate::load::summary::LoadSummary, Exit> {
    let mut embedded = None;
    let base = match &stage.url {
        Some(u) => match ws::http_base(u) {
            Some(base) => base,
            None => {
                return Err(usage(&format!(
                    "{u:?}: an HTTP stage needs an http(s):// (or ws(s)://) URL"
                )));
            }
        },
        None => match crate::serve::spawn(
            crate::serve::ServeConfig::embedded(stage.rate),
            "127.0.0.1:0",
        )
        .await
        {
            Ok(server) => {
                let url = server.http_url();
                embedded = Some(server);
                url
            }
            Err(e) => {
                eprintln!("livegames load: cannot start the embedded server: {e}");
                return Err(Exit::Failed);
            }
        },
    };
    let config = crate::load::http::HttpConfig {
        base_url: base.clone(),
        paths: paths.to_vec(),
        users: stage.conns,
        duration: stage.duration,
        ramp: stage.ramp,
        timeout: args.connect_timeout.max(Duration::from_secs(1)),
    };
    if !args.quiet {
        eprintln!(
            "livegames load --http: {} users on {} for {:?}",
            config.users, base, config.duration
        );
    }
    let started_wall = std::time::SystemTime::now();
    let mut recorder = crate::load::recorder::Recorder::new();
    let outcome = crate::load::http::run(&config, &mut recorder).await;
    if let Some(server) = embedded {
        let _ = server.stop().await;
    }
    match outcome {
        Ok(http) => Ok(crate::load::summary::http_summary(
            started_wall,
            config.duration,
            &base,
            recorder,
            http,
            &stage.budgets,
        )),
        Err(e) => {
            eprintln!("livegames load: {e}");
            Err(Exit::Failed)
        }
    }
}

fn slug(label: &str) -> String {
    let s: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

fn usage(message: &str) -> Exit {
    eprintln!("livegames load: {message}");
    Exit::Usage
}

async fn execute(config: LoadConfig, args: &LoadArgs) -> crate::load::summary::LoadSummary {
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    // Registered before the run announces itself, so an early Ctrl-C is caught too.
    let signals = crate::shutdown::Signals::install();
    let signal = tokio::spawn(async move {
        match signals {
            Ok(mut s) => s.recv().await,
            Err(_) => std::future::pending::<()>().await,
        }
        on_signal.cancel();
    });
    let show = !args.quiet && !args.json && std::io::stderr().is_terminal();
    let bar = if show {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let total = config.duration;
    if !show && !args.quiet {
        // A log line instead of the bar when stderr is not a terminal (CI logs).
        eprintln!(
            "livegames load: {} connections over {} targets for {:?} (ramp {:?})",
            config.conns,
            config.targets.len(),
            config.duration,
            config.ramp
        );
    }
    let summary = crate::load::run(config, stop, |t: Tick| {
        let p99 = t
            .p99_us
            .map(budget::format_micros)
            .unwrap_or_else(|| "-".into());
        bar.set_message(format!(
            "{:.0}/{:.0}s  open {}  frames/s {:.0}  p99(1s) {p99}",
            t.elapsed.as_secs_f64(),
            total.as_secs_f64(),
            t.open,
            t.frames_per_s
        ));
        bar.tick();
    })
    .await;
    bar.finish_and_clear();
    signal.abort();
    summary
}

/// An embedded server knows its games' states once its upstreams have answered
/// (well within a second on the built-in mocks); wait for that, up to 5 s.
pub(super) async fn wait_for_live_games(http_base: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        if let Ok(games) = discover::games(http_base, Duration::from_secs(2)).await {
            if games.iter().any(|(_, live)| *live) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The WebSocket URLs to spread connections over.
async fn resolve_targets(url: &str, games: &[String]) -> Result<Vec<String>, Setup> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| Setup::Usage(format!("{url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "ws" | "wss") {
        return Err(Setup::Usage(format!("{url:?}: use a ws:// or wss:// URL")));
    }
    // A bare host means our layout.
    let template = if parsed.path() == "/" || parsed.path().is_empty() {
        format!("{}/ws/live/{{game_id}}", url.trim_end_matches('/'))
    } else {
        url.to_owned()
    };
    if !template.contains("{game_id}") {
        return Ok(vec![template]);
    }
    let ids: Vec<String> = if !games.is_empty() {
        games.to_vec()
    } else {
        let base = ws::http_base(&template)
            .ok_or_else(|| Setup::Usage(format!("{url:?}: cannot derive the HTTP address")))?;
        let found = discover::games(&base, Duration::from_secs(10))
            .await
            .map_err(|e| Setup::Unreachable(e.to_string()))?;
        let live: Vec<String> = found
            .iter()
            .filter(|(_, live)| *live)
            .map(|(id, _)| id.clone())
            .collect();
        // An embedded server may not have heard from its upstreams yet: take them all.
        if live.is_empty() {
            found.into_iter().map(|(id, _)| id).collect()
        } else {
            live
        }
    };
    if ids.is_empty() {
        return Err(Setup::Unreachable(format!(
            "{url}: the server lists no games; pass --games"
        )));
    }
    Ok(ids.iter().map(|id| ws::fill(&template, id)).collect())
}

fn default_report_dir() -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "-");
    PathBuf::from("reports").join(stamp)
}

/// `livegames report merge`.
pub fn merge(args: MergeArgs) -> Exit {
    let budgets = match budget::parse_all(&args.budgets) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("livegames report merge: {e}");
            return Exit::Usage;
        }
    };
    let summary = match crate::load::merge::merge(&args.dirs, &budgets) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("livegames report merge: {e}");
            return Exit::Usage;
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&summary) {
            Ok(j) => println!("{j}"),
            Err(e) => eprintln!("livegames report merge: cannot render JSON: {e}"),
        }
    } else {
        print!("{}", summary.render_text());
    }
    if let Err(e) = crate::load::report::write_all(&args.report, &summary) {
        eprintln!(
            "livegames report merge: cannot write {}: {e}",
            args.report.display()
        );
        return Exit::Failed;
    }
    eprintln!(
        "report: {}/ (report.json, report.html, junit.xml, latency.hlog)",
        args.report.display()
    );
    if summary.budgets_passed() {
        Exit::Ok
    } else {
        Exit::Failed
    }
}
