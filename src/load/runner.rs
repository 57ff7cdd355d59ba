//! Running a [`Plan`]: each stage against its target (or an embedded server, through
//! [`LocalServers`]), its summary printed and its report written, and the run's
//! verdict. Also `report merge`, which ends the same way.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::client::discover;
use crate::client::local::{LocalServer, LocalServers};
use crate::client::{ConnectOptions, Target};
use crate::console::note;
use crate::load::engine::{self, LoadConfig};
use crate::load::measure::collector::SecondsOut;
use crate::load::measure::host;
use crate::load::measure::progress::Progress;
use crate::load::measure::recorder::Recorder;
use crate::load::plan::budget::Budget;
use crate::load::plan::{Plan, StagePlan};
use crate::load::results::report::{self, StageResult};
use crate::load::results::summary::{self, LoadSummary, StartReport, WorkerReport};
use crate::load::session::config::{RECONNECT_BACKOFF, StreamTarget, VuConfig};
use crate::load::session::http::{self, HttpConfig};
use crate::load::session::link::Protocol;
use crate::load::session::socketio;
use crate::outcome::{Classify, CommandResult, Failure, Verdict, stdout_failure};

/// Open files this process keeps besides its connections (the runtime, the report,
/// an embedded server's listener and upstream polls).
const SPARE_FILES: u64 = 256;
/// An HTTP request may take at least this long, however short the connect timeout.
const MIN_HTTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs every stage of `plan` (until one is stopped by `stop`), printing each summary
/// to `out` and writing the reports; the verdict covers every stage.
pub async fn run(
    plan: &Plan,
    local: &dyn LocalServers,
    stop: &CancellationToken,
    out: &mut dyn Write,
) -> CommandResult {
    host::raise_open_files_limit(files_needed(plan));
    let live = LiveWriter::start(plan);
    let mut results: Vec<StageResult> = Vec::new();
    for (i, stage) in plan.stages.iter().enumerate() {
        let dir = stage_dir(plan, i, stage);
        if plan.scenario && !plan.output.json {
            let header = format!(
                "== stage {}/{}: {}\n",
                i + 1,
                plan.stages.len(),
                stage.label
            );
            print(out, &header)?;
        }
        let seconds_out = live.as_ref().map(|l| l.for_stage(&stage.label));
        // Only the first stage waits for --start-at; the rest follow it.
        let start_at = plan.start_at.filter(|_| i == 0);
        let mut summary = run_stage(plan, stage, local, stop, seconds_out, start_at).await?;
        summary.worker = plan.worker.as_ref().map(|w| WorkerReport {
            shard: w.shard,
            name: w.name.clone(),
            run_id: w.run_id.clone(),
        });
        print_summary(out, plan.output.json, &summary)?;
        write_report(&dir, &summary)?;
        let stopped = summary.stopped_early;
        results.push((stage.label.clone(), dir, summary));
        if stopped {
            break;
        }
    }
    if let Some(live) = live {
        live.finish().await;
    }
    if plan.scenario {
        report::write_scenario(&plan.report_dir, &results)
            .with_context(|| format!("cannot write the report in {}", plan.report_dir.display()))
            .failed()?;
        if !plan.output.json {
            print(out, &report::scenario_table(&results))?;
        }
    }
    let verdict = verdict(&results);
    // --quiet: nothing on stderr unless the run fails.
    if !plan.output.quiet || !matches!(verdict, Ok(Verdict::Pass)) {
        note!(
            "report: {}/ (report.json, report.html, junit.xml, latency.hlog{})",
            plan.report_dir.display(),
            if plan.scenario {
                " per stage; scenario.json"
            } else {
                ""
            }
        );
    }
    verdict
}

/// Open files the largest stage needs: each of this process's connections is a file,
/// and an embedded server holds the other end of each.
fn files_needed(plan: &Plan) -> u64 {
    let shard = plan.shard();
    let most = plan
        .stages
        .iter()
        .map(|s| {
            let ends = if s.target.is_none() { 2 } else { 1 };
            shard.share(s.conns).conns * ends
        })
        .max()
        .unwrap_or(0);
    most as u64 + SPARE_FILES
}

/// `--out influxdb=`: the writer the stages' collectors send each second through, and
/// its sending task, drained when the run ends.
struct LiveWriter {
    writer: crate::influx::Writer,
    counts: std::sync::Arc<crate::influx::Tally>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    run_id: String,
    worker: String,
}

impl LiveWriter {
    fn start(plan: &Plan) -> Option<LiveWriter> {
        let out = plan.live_out.as_ref()?;
        let counts = std::sync::Arc::new(crate::influx::Tally::default());
        let config = crate::influx::WriterConfig {
            batch_lines: 1_000,
            flush_every: std::time::Duration::from_secs(1),
            queue_lines: 100_000,
            ..crate::influx::WriterConfig::default()
        };
        let http = reqwest::Client::new();
        let (writer, task) =
            crate::influx::Writer::new(out.target.clone(), config, http, counts.clone());
        let stop = CancellationToken::new();
        let task = tokio::spawn(task.run(stop.clone()));
        if !plan.output.quiet {
            note!(
                "livegames load: streaming each second to {} (run {}, worker {})",
                out.target.display,
                out.run_id,
                out.worker
            );
        }
        Some(LiveWriter {
            writer,
            counts,
            stop,
            task,
            run_id: out.run_id.clone(),
            worker: out.worker.clone(),
        })
    }

    fn for_stage(&self, stage: &str) -> SecondsOut {
        SecondsOut {
            writer: self.writer.clone(),
            run_id: self.run_id.clone(),
            worker: self.worker.clone(),
            stage: stage.to_owned(),
        }
    }

    /// Sends what is queued (for up to the writer's drain time) and says how it went.
    async fn finish(mut self) {
        self.stop.cancel();
        let _ = (&mut self.task).await;
        let (written, failed, dropped) = self.counts.counts();
        let last = self.counts.last_error();
        let why = last
            .map(|e| format!(" (last error: {e})"))
            .unwrap_or_default();
        note!(
            "--out influxdb: {written} lines written, {failed} failed requests, {dropped} lines dropped{why}"
        );
    }
}

/// A run that ends early (a failed stage) still stops the sending task.
impl Drop for LiveWriter {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A scenario's stages each write into their own folder under the report's.
fn stage_dir(plan: &Plan, index: usize, stage: &StagePlan) -> PathBuf {
    if plan.scenario {
        plan.report_dir
            .join(format!("{:02}-{}", index + 1, slug(&stage.label)))
    } else {
        plan.report_dir.clone()
    }
}

/// Runs one stage against its target, starting (and then stopping) an embedded
/// server when it names none.
async fn run_stage(
    plan: &Plan,
    stage: &StagePlan,
    local: &dyn LocalServers,
    stop: &CancellationToken,
    seconds_out: Option<SecondsOut>,
    start_at: Option<SystemTime>,
) -> Result<LoadSummary, Failure> {
    let (target, embedded): (Target, Option<LocalServer>) = match &stage.target {
        Some(target) => (target.clone(), None),
        None => {
            let server = local.start(stage.rate).await?;
            (server.target.clone(), Some(server))
        }
    };
    let summary = match &stage.http {
        Some(paths) => http_stage(plan, stage, &target, paths, stop, start_at).await,
        None => ws_stage(plan, stage, &target, stop, seconds_out, start_at).await,
    };
    if let Some(server) = embedded {
        server.stop().await;
    }
    summary
}

/// A WebSocket stage: the games' stream URLs, then the engine with a progress display.
async fn ws_stage(
    plan: &Plan,
    stage: &StagePlan,
    target: &Target,
    stop: &CancellationToken,
    seconds_out: Option<SecondsOut>,
    start_at: Option<SystemTime>,
) -> Result<LoadSummary, Failure> {
    let targets = stream_urls(target, &stage.games, &plan.vu.connect, plan.vu.protocol).await?;
    let output = plan.output;
    // A sharded or scheduled worker measures its clock against the server's while it
    // waits, so every worker's report says how far its clock is off.
    let probe_clock = plan.worker.is_some() || start_at.is_some();
    let (clock_probe, start) = tokio::join!(
        async {
            match probe_clock {
                true => {
                    crate::load::session::clock_probe::probe(&targets[0].url, &plan.vu.connect)
                        .await
                }
                false => None,
            }
        },
        wait_for_start(start_at, stop, output.quiet)
    );
    let start = start?;
    let config = LoadConfig {
        targets,
        share: plan.shard().share(stage.conns),
        duration: stage.duration,
        ramp: stage.ramp,
        vu: VuConfig {
            ws_ping: plan.vu.ws_ping.map(|every| {
                crate::load::session::config::ping_interval(
                    every,
                    stage.conns,
                    plan.vu.ws_ping_budget,
                )
            }),
            send_rate: stage.send_rate,
            reconnect: stage.reconnect.then_some(RECONNECT_BACKOFF),
            churn: stage.churn,
            ..plan.vu.clone()
        },
        budgets: stage.budgets.clone(),
        out: seconds_out,
        clock_probe,
    };
    if !output.progress_bar && !output.quiet {
        // A log line instead of the bar when stderr is not a terminal (CI logs).
        let of_shard = match plan.worker.as_ref() {
            Some(w) => format!(
                " (shard {} of a run of {})",
                w.shard, config.share.run_conns
            ),
            None => String::new(),
        };
        note!(
            "livegames load: {} connections{of_shard} over {} targets for {:?} (ramp {:?})",
            config.share.conns,
            config.targets.len(),
            config.duration,
            config.ramp
        );
    }
    let progress = Progress::new(output.progress_bar, config.duration);
    let log_lines = !output.progress_bar && !output.quiet;
    let said_all_open = std::cell::Cell::new(false);
    let conns = config.share.conns;
    let mut summary = engine::run(config, stop.clone(), |tick| {
        progress.tick(&tick);
        if let Some(after) = tick.all_open_after.filter(|_| log_lines)
            && !said_all_open.replace(true)
        {
            note!(
                "livegames load: all {conns} connections open after {:.2}s",
                after.as_secs_f64()
            );
        }
    })
    .await;
    progress.finish();
    summary.start = start;
    Ok(summary)
}

/// Waits for `--start-at` (Ctrl-C ends the wait, and the run, with nothing measured)
/// and says how late the start really is.
async fn wait_for_start(
    start_at: Option<SystemTime>,
    stop: &CancellationToken,
    quiet: bool,
) -> Result<Option<StartReport>, Failure> {
    let Some(at) = start_at else {
        return Ok(None);
    };
    let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
    if !quiet {
        note!(
            "livegames load: waiting {:.1}s for --start-at {}",
            wait.as_secs_f64(),
            humantime::format_rfc3339_millis(at)
        );
    }
    tokio::select! {
        _ = stop.cancelled() => {
            return Err(Failure::failed(
                "stopped while waiting for --start-at: nothing was measured",
            ));
        }
        _ = tokio::time::sleep(wait) => {}
    }
    let slip = SystemTime::now().duration_since(at).unwrap_or_default();
    Ok(Some(StartReport {
        at: humantime::format_rfc3339_millis(at).to_string(),
        slip_ms: slip.as_secs_f64() * 1000.0,
    }))
}

/// The streams to spread connections over: the one stream a URL names, or one per
/// game (given with `--games`, or the ones the target lists, live ones first).
async fn stream_urls(
    target: &Target,
    games: &[String],
    options: &ConnectOptions,
    protocol: Protocol,
) -> Result<Vec<StreamTarget>, Failure> {
    let fixed = match protocol {
        Protocol::Ws => target.fixed_stream(),
        Protocol::Sse => target.fixed_event_stream(),
        // socket.io has one endpoint; games, if given, go into what is emitted.
        Protocol::Socketio => {
            let url = socketio::engine_io_url(&target.ws_url());
            let games: Vec<Option<String>> = match games {
                [] => vec![None],
                some => some.iter().cloned().map(Some).collect(),
            };
            return Ok(games
                .into_iter()
                .map(|game| StreamTarget {
                    url: url.clone(),
                    game,
                })
                .collect());
        }
    };
    if let Some(url) = fixed {
        let game = games.first().cloned();
        return Ok(vec![StreamTarget { url, game }]);
    }
    let ids: Vec<String> = if games.is_empty() {
        let listed = discover::games(target, options).await.unreachable()?;
        let live: Vec<String> = listed
            .iter()
            .filter(|g| g.live)
            .map(|g| g.id.clone())
            .collect();
        // An embedded server may not have heard from its upstreams yet: take them all.
        let mut ids = if live.is_empty() {
            listed.into_iter().map(|g| g.id).collect()
        } else {
            live
        };
        // Sorted, so every worker of a sharded run deals connection j to the same game
        // whatever order the server lists them in.
        ids.sort();
        ids
    } else {
        games.to_vec()
    };
    if ids.is_empty() {
        return Err(Failure::unreachable(format!(
            "{target}: the server lists no games; pass --games"
        )));
    }
    Ok(ids
        .into_iter()
        .map(|id| StreamTarget {
            url: match protocol {
                Protocol::Sse => target.event_stream(&id),
                Protocol::Ws | Protocol::Socketio => target.stream(&id),
            },
            game: Some(id),
        })
        .collect())
}

/// An HTTP stage: goose users GET `paths` in turn, reported like a WebSocket stage.
async fn http_stage(
    plan: &Plan,
    stage: &StagePlan,
    target: &Target,
    paths: &[String],
    stop: &CancellationToken,
    start_at: Option<SystemTime>,
) -> Result<LoadSummary, Failure> {
    let base = target.origin();
    let start = wait_for_start(start_at, stop, plan.output.quiet).await?;
    let config = HttpConfig {
        base_url: base.clone(),
        paths: paths.to_vec(),
        users: plan.shard().share(stage.conns).conns,
        duration: stage.duration,
        ramp: stage.ramp,
        timeout: plan.vu.connect.connect_timeout.max(MIN_HTTP_TIMEOUT),
        connect: plan.vu.connect.clone(),
    };
    if !plan.output.quiet {
        note!(
            "livegames load --http: {} users on {} for {:?}",
            config.users,
            base,
            config.duration
        );
    }
    let started_wall = std::time::SystemTime::now();
    let mut recorder = Recorder::new();
    let totals = http::run(&config, &mut recorder).await.failed()?;
    let mut summary = summary::http_summary(
        started_wall,
        config.duration,
        &base,
        recorder,
        totals,
        &stage.budgets,
        !plan.vu.connect.insecure,
    );
    summary.start = start;
    Ok(summary)
}

/// The run's verdict: unreachable when a stage reached nothing; otherwise whether
/// every budget of every stage held.
fn verdict(results: &[StageResult]) -> CommandResult {
    if let Some((label, _, s)) = results.iter().find(|(_, _, s)| !s.reached_target()) {
        let why: Vec<String> = s
            .totals
            .counts
            .errors
            .iter()
            .map(|(k, v)| format!("{k} x{v}"))
            .collect();
        return Err(Failure::unreachable(format!(
            "{label}: the target could not be reached ({})",
            why.join(", ")
        )));
    }
    Ok(Verdict::from_passed(
        results.iter().all(|(_, _, s)| s.passed()),
    ))
}

/// What `livegames report merge` does.
#[derive(Debug, Clone)]
pub struct MergePlan {
    /// Report folders written by `livegames load --report DIR`.
    pub dirs: Vec<PathBuf>,
    /// Where the merged report goes.
    pub report_dir: PathBuf,
    pub budgets: Vec<Budget>,
    pub json: bool,
    pub options: crate::load::results::merge::MergeOptions,
}

/// Merges report folders into one report and judges its budgets.
pub fn merge(plan: &MergePlan, out: &mut dyn Write) -> CommandResult {
    let summary =
        crate::load::results::merge::merge(&plan.dirs, &plan.budgets, &plan.options).usage()?;
    print_summary(out, plan.json, &summary)?;
    write_report(&plan.report_dir, &summary)?;
    note!(
        "report: {}/ (report.json, report.html, junit.xml, latency.hlog)",
        plan.report_dir.display()
    );
    Ok(Verdict::from_passed(summary.passed()))
}

fn print_summary(out: &mut dyn Write, json: bool, summary: &LoadSummary) -> Result<(), Failure> {
    let text = if json {
        let mut j = serde_json::to_string_pretty(summary)
            .context("cannot render the summary as JSON")
            .failed()?;
        j.push('\n');
        j
    } else {
        summary.render_text()
    };
    print(out, &text)
}

fn write_report(dir: &Path, summary: &LoadSummary) -> Result<(), Failure> {
    report::write_all(dir, summary)
        .with_context(|| format!("cannot write the report in {}", dir.display()))
        .failed()?;
    Ok(())
}

/// Writes to the command's output; a reader that went away is reported as such (and
/// ends the command quietly: see `cli::exit`).
fn print(out: &mut dyn Write, text: &str) -> Result<(), Failure> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(stdout_failure)
}

/// A stage label as a folder name: `Ramp to 100!` -> `ramp-to-100`.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_labels_become_folder_names() {
        assert_eq!(slug("Ramp to 100!"), "ramp-to-100");
        assert_eq!(slug("stage 2 (50 connections)"), "stage-2-50-connections");
    }
}
