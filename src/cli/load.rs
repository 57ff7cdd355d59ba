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

async fn run_async(args: LoadArgs) -> Exit {
    let budgets = match budget::parse_all(&args.budgets) {
        Ok(b) => b,
        Err(e) => return usage(&e.to_string()),
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
    let mut embedded = None;
    let url = match &args.url {
        Some(u) => u.clone(),
        None => match crate::serve::spawn(
            crate::serve::ServeConfig::embedded(args.rate),
            "127.0.0.1:0",
        )
        .await
        {
            Ok(server) => {
                let url = server.ws_url();
                embedded = Some(server);
                url
            }
            Err(e) => {
                eprintln!("livegames load: cannot start the embedded server: {e}");
                return Exit::Failed;
            }
        },
    };
    if let Some(server) = &embedded {
        wait_for_live_games(&server.http_url()).await;
    }
    let targets = match resolve_targets(&url, &args.games).await {
        Ok(t) => t,
        Err(Setup::Usage(m)) => return usage(&m),
        Err(Setup::Unreachable(m)) => {
            eprintln!("livegames load: {m}");
            return Exit::Unreachable;
        }
    };
    let config = LoadConfig {
        targets,
        conns: args.conns,
        duration: args.duration,
        ramp: args.ramp,
        vu: VuConfig {
            connect_timeout: args.connect_timeout,
            idle_timeout: args.idle_timeout,
            send_rate: args.send_rate,
            send_template,
            ts: TsSpec {
                pointer: args.ts_field.clone(),
                unit: args.ts_unit,
            },
            reconnect: args.reconnect.then_some(Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_secs(5),
            }),
            read_buffer: 4 * 1024,
        },
        budgets,
    };
    let summary = execute(config, &args).await;
    if let Some(server) = embedded {
        let _ = server.stop().await;
    }
    if args.json {
        match serde_json::to_string_pretty(&summary) {
            Ok(j) => println!("{j}"),
            Err(e) => eprintln!("livegames load: cannot render JSON: {e}"),
        }
    } else {
        print!("{}", summary.render_text());
    }
    let dir = args.report.clone().unwrap_or_else(default_report_dir);
    match write_report(&dir, &summary) {
        Ok(path) => eprintln!(
            "report: {}/ (report.json, report.html, junit.xml, latency.hlog)",
            path.display()
        ),
        Err(e) => {
            eprintln!(
                "livegames load: cannot write the report in {}: {e}",
                dir.display()
            );
            return Exit::Failed;
        }
    }
    if summary.totals.connected == 0 {
        let why: Vec<String> = summary
            .totals
            .errors
            .iter()
            .map(|(k, v)| format!("{k} x{v}"))
            .collect();
        eprintln!(
            "livegames load: no connection could be opened ({})",
            why.join(", ")
        );
        return Exit::Unreachable;
    }
    if summary.budgets_passed() {
        Exit::Ok
    } else {
        Exit::Failed
    }
}

fn usage(message: &str) -> Exit {
    eprintln!("livegames load: {message}");
    Exit::Usage
}

async fn execute(config: LoadConfig, args: &LoadArgs) -> crate::load::summary::LoadSummary {
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    let signal = tokio::spawn(async move {
        crate::shutdown::signal().await;
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
async fn wait_for_live_games(http_base: &str) {
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

fn write_report(
    dir: &std::path::Path,
    summary: &crate::load::summary::LoadSummary,
) -> std::io::Result<PathBuf> {
    crate::load::report::write_all(dir, summary)?;
    Ok(dir.to_path_buf())
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
