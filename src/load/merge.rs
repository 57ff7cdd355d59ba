//! `livegames report merge`: one report from the report directories of several runs
//! (a load spread over many machines). Latencies are merged from the HdrHistogram
//! interval logs, so merged percentiles are exact, not averages of percentiles;
//! counts are summed from the `report.json` files; seconds are aligned on wall time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use serde::Deserialize;

use super::budget::Budget;
use super::hdrlog::{self, HdrLog};
use super::recorder::{Counters, Distribution, Quantile, Recorder};
use super::summary::{self, LoadSummary, Second, Totals};

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{path}: {reason}")]
    Input { path: PathBuf, reason: String },
    #[error("nothing to merge: give at least one report directory")]
    Empty,
}

/// The parts of a `report.json` a merge needs.
#[derive(Deserialize)]
struct RunReport {
    started_at: String,
    duration_s: f64,
    #[serde(default)]
    stopped_early: bool,
    targets: Vec<String>,
    conns: usize,
    totals: RunTotals,
    per_second: Vec<RunSecond>,
    #[serde(default)]
    generator_cpu_percent: Option<f64>,
    #[serde(default)]
    subprotocol: Option<String>,
    #[serde(default = "verified")]
    tls_verified: bool,
}

/// Reports from before `tls_verified` existed were verified.
fn verified() -> bool {
    true
}

/// A run's totals: the counters as they were counted, and the run's peak.
#[derive(Deserialize)]
struct RunTotals {
    #[serde(flatten)]
    counts: Counters,
    peak_open: u64,
}

#[derive(Deserialize)]
struct RunSecond {
    t: f64,
    open: u64,
    frames: u64,
    errors: u64,
}

struct Run {
    report: RunReport,
    start_s: f64,
    intervals: Vec<hdrlog::Interval>,
}

fn load_run(dir: &Path) -> Result<Run, MergeError> {
    let input = |reason: String| MergeError::Input {
        path: dir.to_path_buf(),
        reason,
    };
    let json =
        std::fs::read(dir.join("report.json")).map_err(|e| input(format!("report.json: {e}")))?;
    let report: RunReport = serde_json::from_slice(&json)
        .map_err(|e| input(format!("report.json is not a livegames load report: {e}")))?;
    let start = humantime::parse_rfc3339_weak(&report.started_at)
        .map_err(|e| input(format!("report.json started_at: {e}")))?;
    let hlog =
        std::fs::read(dir.join("latency.hlog")).map_err(|e| input(format!("latency.hlog: {e}")))?;
    let intervals = hdrlog::read(&hlog).map_err(|e| input(format!("latency.hlog: {e}")))?;
    Ok(Run {
        report,
        start_s: hdrlog::unix_seconds(start),
        intervals,
    })
}

/// Merges the runs in `dirs` and evaluates `budgets` on the result.
pub fn merge(dirs: &[PathBuf], budgets: &[Budget]) -> Result<LoadSummary, MergeError> {
    if dirs.is_empty() {
        return Err(MergeError::Empty);
    }
    let runs = dirs
        .iter()
        .map(|d| load_run(d))
        .collect::<Result<Vec<_>, _>>()?;
    let start_s = runs.iter().map(|r| r.start_s).fold(f64::INFINITY, f64::min);
    let end_s = runs
        .iter()
        .map(|r| r.start_s + r.report.duration_s)
        .fold(f64::NEG_INFINITY, f64::max);
    let start = UNIX_EPOCH + Duration::from_secs_f64(start_s.max(0.0));
    let (total, by_second) = latencies_by_second(&runs, start_s);
    let counts = counts_by_second(&runs, start_s);
    let mut log = HdrLog::new(start);
    let seconds = merged_seconds(&by_second, &counts, &mut log);
    let mut merged = summary::from_parts(summary::Parts {
        started_at: humantime::format_rfc3339_millis(start).to_string(),
        duration_s: end_s - start_s,
        stopped_early: runs.iter().any(|r| r.report.stopped_early),
        targets: runs
            .iter()
            .flat_map(|r| r.report.targets.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        conns: runs.iter().map(|r| r.report.conns).sum(),
        totals: sum_totals(&runs, (end_s - start_s).max(1e-9)),
        latencies: total.latencies,
        per_second: seconds,
        generator_cpu_percent: None,
        // Each machine has its own clock: see the runs' own reports.
        clock: None,
        subprotocol: runs.iter().find_map(|r| r.report.subprotocol.clone()),
        tls_verified: runs.iter().all(|r| r.report.tls_verified),
        warnings: warnings(dirs, &runs),
        hdr_log: log.bytes().to_vec(),
    });
    merged.budgets = budgets.iter().map(|b| b.evaluate(&merged)).collect();
    merged.checks = summary::run_checks(&merged);
    Ok(merged)
}

/// Every run's latencies: the total, and one merged recorder per wall-clock second
/// from `start_s`.
fn latencies_by_second(runs: &[Run], start_s: f64) -> (Recorder, BTreeMap<u64, Recorder>) {
    let mut total = Recorder::new();
    let mut by_second: BTreeMap<u64, Recorder> = BTreeMap::new();
    for run in runs {
        for interval in &run.intervals {
            let Some(d) = Distribution::from_name(&interval.tag) else {
                continue;
            };
            let bucket = (interval.start_s - start_s).max(0.0).floor() as u64;
            let mut one = Recorder::new();
            one.add_histogram(d, &interval.histogram);
            by_second.entry(bucket).or_default().add(&one);
            total.add(&one);
        }
    }
    (total, by_second)
}

/// Open connections, frames and errors per wall-clock second, summed over the runs.
#[derive(Debug, Clone, Copy, Default)]
struct SecondCounts {
    open: u64,
    frames: u64,
    errors: u64,
}

fn counts_by_second(runs: &[Run], start_s: f64) -> BTreeMap<u64, SecondCounts> {
    let mut counts: BTreeMap<u64, SecondCounts> = BTreeMap::new();
    for run in runs {
        for s in &run.report.per_second {
            // A run's second `t` covers (t - 1, t] of its own clock.
            let bucket = (run.start_s + s.t - 1.0 - start_s).max(0.0).floor() as u64;
            let c = counts.entry(bucket).or_default();
            c.open += s.open;
            c.frames += s.frames;
            c.errors += s.errors;
        }
    }
    counts
}

/// The merged per-second series; each second's latencies also go into `log`.
fn merged_seconds(
    by_second: &BTreeMap<u64, Recorder>,
    counts: &BTreeMap<u64, SecondCounts>,
    log: &mut HdrLog,
) -> Vec<Second> {
    let buckets: BTreeSet<u64> = by_second.keys().chain(counts.keys()).copied().collect();
    let empty = Recorder::new();
    buckets
        .into_iter()
        .map(|b| {
            let r = by_second.get(&b).unwrap_or(&empty);
            log.write_interval(&r.latencies, Duration::from_secs(b), Duration::from_secs(1));
            let c = counts.get(&b).copied().unwrap_or_default();
            Second {
                t: (b + 1) as f64,
                open: c.open,
                frames: c.frames,
                frames_per_s: c.frames as f64,
                p50_us: r.quantile(Distribution::Delivery, Quantile::P50),
                p95_us: r.quantile(Distribution::Delivery, Quantile::P95),
                p99_us: r.quantile(Distribution::Delivery, Quantile::P99),
                max_us: r.quantile(Distribution::Delivery, Quantile::Max),
                rtt_p99_us: r.quantile(Distribution::Rtt, Quantile::P99),
                errors: c.errors,
            }
        })
        .collect()
}

fn warnings(dirs: &[PathBuf], runs: &[Run]) -> Vec<String> {
    let mut warnings = vec![format!(
        "merged from {} runs: {}",
        runs.len(),
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )];
    if runs.iter().any(|r| r.report.stopped_early) {
        warnings.push("some runs were stopped early".into());
    }
    if let Some(max_cpu) = runs
        .iter()
        .filter_map(|r| r.report.generator_cpu_percent)
        .reduce(f64::max)
    {
        warnings.push(format!(
            "highest generator CPU among the runs: {max_cpu:.0}%"
        ));
    }
    warnings
}

fn sum_totals(runs: &[Run], seconds: f64) -> Totals {
    let mut t = Totals::default();
    for r in runs {
        t.counts.add(&r.report.totals.counts);
        // Runs on different machines run at the same time: their peaks add up.
        t.peak_open += r.report.totals.peak_open;
    }
    t.frames_per_s = t.counts.frames as f64 / seconds;
    t
}
