//! `livegames report merge`: one report from the report directories of several runs
//! (a load spread over many machines). Latencies are merged from the HdrHistogram
//! interval logs, so merged percentiles are exact, not averages of percentiles;
//! counts are summed from the `report.json` files; seconds are aligned on wall time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use serde::Deserialize;

use crate::load::measure::collector::Second;
use crate::load::measure::hdrlog::{self, HdrLog};
use crate::load::measure::recorder::{Counters, Distribution, Quantile, Recorder};
use crate::load::plan::budget::Budget;
use crate::load::results::checks::RunCheck;
use crate::load::results::summary::{self, LoadSummary, Totals, WorkerReport};

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
    /// The report format's version.
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    livegames_version: Option<String>,
    #[serde(default)]
    worker: Option<WorkerReport>,
    #[serde(default)]
    checks: Vec<ReportCheck>,
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
    #[serde(default)]
    drops_allowed: bool,
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
    #[serde(default)]
    all_open_after_s: Option<f64>,
}

/// A run check as a report records it.
#[derive(Deserialize)]
struct ReportCheck {
    name: String,
    passed: bool,
    observed: String,
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
        start_s: crate::clock::seconds_of(start),
        intervals,
    })
}

/// How a merge treats the workers of a sharded run (`load --shard I/N`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeOptions {
    /// How many shards the run had; default: what the workers' reports say.
    pub shards: Option<usize>,
    /// A missing or failed worker is a warning, not a failed verdict.
    pub allow_partial: bool,
}

/// Merges the runs in `dirs` and evaluates `budgets` on the result. When the runs
/// are shards of one run, a `shards` check fails for each shard that left no report
/// or failed (unless `options.allow_partial`).
pub fn merge(
    dirs: &[PathBuf],
    budgets: &[Budget],
    options: &MergeOptions,
) -> Result<LoadSummary, MergeError> {
    if dirs.is_empty() {
        return Err(MergeError::Empty);
    }
    let loaded: Vec<(&PathBuf, Result<Run, MergeError>)> =
        dirs.iter().map(|d| (d, load_run(d))).collect();
    let sharded = options.shards.is_some()
        || loaded
            .iter()
            .any(|(_, r)| r.as_ref().is_ok_and(|r| r.report.worker.is_some()));
    let mut runs = Vec::new();
    let mut without_report = Vec::new();
    for (dir, run) in loaded {
        match run {
            Ok(run) => runs.push((dir.clone(), run)),
            // A worker killed before it wrote its report leaves its folder empty.
            Err(_) if sharded && !dir.join("report.json").exists() => {
                without_report.push(dir.clone())
            }
            Err(e) => return Err(e),
        }
    }
    if runs.is_empty() {
        return Err(MergeError::Input {
            path: dirs[0].clone(),
            reason: "no worker left a report.json".into(),
        });
    }
    check_compatible(&runs, options)?;
    let shards = sharded.then(|| shards_check(&runs, &without_report, options));
    let dirs: Vec<PathBuf> = runs.iter().map(|(d, _)| d.clone()).collect();
    let runs: Vec<Run> = runs.into_iter().map(|(_, r)| r).collect();
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
        totals: Totals {
            all_open_after_s: all_open_after(&runs, start_s),
            ..sum_totals(&runs, (end_s - start_s).max(1e-9))
        },
        latencies: total.latencies,
        per_second: seconds,
        generator_cpu_percent: None,
        // Each machine has its own clock: see the runs' own reports.
        clock: None,
        subprotocol: runs.iter().find_map(|r| r.report.subprotocol.clone()),
        tls_verified: runs.iter().all(|r| r.report.tls_verified),
        drops_allowed: runs.iter().all(|r| r.report.drops_allowed),
        warnings: warnings(&dirs, &runs),
        hdr_log: log.bytes().to_vec(),
    });
    merged.budgets = budgets.iter().map(|b| b.evaluate(&merged)).collect();
    merged.checks = merged.run_checks();
    if let Some(check) = shards {
        if options.allow_partial && !check.problems.is_empty() {
            merged.warnings.push(format!(
                "--allow-partial: judged without {}",
                check.problems.join("; ")
            ));
        }
        merged
            .checks
            .insert(0, check.into_run_check(options.allow_partial));
    }
    Ok(merged)
}

/// Reports that cannot be one run's: another report format or release, another run
/// id, another number of shards, a shard twice. The error names the file.
fn check_compatible(runs: &[(PathBuf, Run)], options: &MergeOptions) -> Result<(), MergeError> {
    let (first_dir, first) = &runs[0];
    let input = |dir: &PathBuf, reason: String| MergeError::Input {
        path: dir.join("report.json"),
        reason,
    };
    let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    let mut seen: BTreeMap<usize, &PathBuf> = BTreeMap::new();
    for (dir, run) in runs {
        let r = &run.report;
        if r.version != first.report.version
            || r.livegames_version != first.report.livegames_version
        {
            return Err(input(
                dir,
                format!(
                    "written by livegames {} (report format {}), but {} by livegames {} (format {}): merge reports of one release",
                    shown(&r.livegames_version),
                    shown(&r.version),
                    first_dir.join("report.json").display(),
                    shown(&first.report.livegames_version),
                    shown(&first.report.version)
                ),
            ));
        }
        let Some(worker) = &r.worker else {
            if first.report.worker.is_some() || options.shards.is_some() {
                return Err(input(
                    dir,
                    "not a shard of a sharded run (no `worker` in it): merge one run's shards"
                        .into(),
                ));
            }
            continue;
        };
        let first_worker = first.report.worker.as_ref();
        let expected = options
            .shards
            .or(first_worker.map(|w| w.shard.count))
            .unwrap_or(worker.shard.count);
        if worker.shard.count != expected {
            return Err(input(
                dir,
                format!(
                    "shard {} of a run of {} shards, but {expected} were expected: merge one run's shards",
                    worker.shard, worker.shard.count
                ),
            ));
        }
        if let Some(first_worker) = first_worker
            && worker.run_id != first_worker.run_id
        {
            return Err(input(
                dir,
                format!(
                    "run id {}, but {} is run {}: merge one run's shards",
                    shown(&worker.run_id),
                    first_dir.join("report.json").display(),
                    shown(&first_worker.run_id)
                ),
            ));
        }
        if let Some(other) = seen.insert(worker.shard.index, dir) {
            return Err(input(
                dir,
                format!(
                    "shard {} again: {} is the same shard",
                    worker.shard,
                    other.join("report.json").display()
                ),
            ));
        }
    }
    Ok(())
}

/// What the workers of a sharded run came to: every shard that left no report or
/// failed, named.
struct ShardsCheck {
    expected: usize,
    reported: usize,
    problems: Vec<String>,
}

impl ShardsCheck {
    fn into_run_check(self, allow_partial: bool) -> RunCheck {
        let counted = format!("{} of {} shards reported", self.reported, self.expected);
        RunCheck {
            name: "shards",
            passed: self.problems.is_empty() || allow_partial,
            observed: if self.problems.is_empty() {
                format!("{counted}, none failed")
            } else {
                format!("{counted}; {}", self.problems.join("; "))
            },
        }
    }
}

fn shards_check(
    runs: &[(PathBuf, Run)],
    without_report: &[PathBuf],
    options: &MergeOptions,
) -> ShardsCheck {
    let by_index: BTreeMap<usize, &RunReport> = runs
        .iter()
        .filter_map(|(_, r)| r.report.worker.as_ref().map(|w| (w.shard.index, &r.report)))
        .collect();
    let expected = options.shards.unwrap_or_else(|| {
        runs.iter()
            .find_map(|(_, r)| r.report.worker.as_ref().map(|w| w.shard.count))
            .unwrap_or(0)
    });
    let mut problems = Vec::new();
    for index in 0..expected {
        let shard = format!("shard {index}/{expected}");
        match by_index.get(&index) {
            None => problems.push(format!("{shard}: no report (the worker died or never ran)")),
            Some(report) => problems.extend(worker_failure(report).map(|why| {
                let name = report.worker.as_ref().map_or("", |w| w.name.as_str());
                format!("{shard} ({}): {why}", crate::text::printable(name))
            })),
        }
    }
    for dir in without_report {
        problems.push(format!("{}: no report.json", dir.display()));
    }
    ShardsCheck {
        expected,
        reported: by_index.len(),
        problems,
    }
}

/// Why one worker's run cannot stand for its shard, if it cannot.
fn worker_failure(report: &RunReport) -> Option<String> {
    if report.stopped_early {
        return Some(format!("stopped early, after {:.1}s", report.duration_s));
    }
    let failed: Vec<String> = report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{} failed ({})", c.name, c.observed))
        .collect();
    (!failed.is_empty()).then(|| failed.join(", "))
}

/// Every run's latencies: the total, and one merged recorder per wall-clock second
/// from `start_s`.
fn latencies_by_second(runs: &[Run], start_s: f64) -> (Recorder, BTreeMap<u64, Recorder>) {
    let mut total = Recorder::new();
    let mut by_second: BTreeMap<u64, Recorder> = BTreeMap::new();
    for run in runs {
        let series_end = run.start_s + run.report.per_second.last().map_or(f64::INFINITY, |s| s.t);
        for interval in &run.intervals {
            let Some(d) = Distribution::from_name(&interval.tag) else {
                continue;
            };
            let mut one = Recorder::new();
            one.add_histogram(d, &interval.histogram);
            total.add(&one);
            if in_series(interval.start_s + interval.length_s, series_end) {
                let bucket = (interval.start_s - start_s).max(0.0).floor() as u64;
                by_second.entry(bucket).or_default().add(&one);
            }
        }
    }
    (total, by_second)
}

/// Whether an interval that ended at `end_s` belongs to its run's per-second series,
/// which ends at `series_end`: the one folded while the users were closing their
/// sockets (it starts where the series ends) counts in the totals only, as in the
/// run's own report. Its frames were read by a client busy closing thousands of
/// sockets, and as a second of the series it would be a stub with nobody connected.
fn in_series(end_s: f64, series_end: f64) -> bool {
    // The report's start is written to the millisecond; the log's to the microsecond.
    end_s <= series_end + 0.002
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

/// When every run's connections were all open, from the merged start: the last
/// run to get there (None if one never did).
fn all_open_after(runs: &[Run], start_s: f64) -> Option<f64> {
    runs.iter()
        .map(|r| {
            r.report
                .totals
                .all_open_after_s
                .map(|after| r.start_s + after - start_s)
        })
        .try_fold(0.0_f64, |latest, at| at.map(|at| latest.max(at)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_folded_while_users_closed_is_not_a_second_of_the_series() {
        // A run that started at 1000 s and whose series ends at its second 120.0.
        let series_end = 1000.0 + 120.0;
        assert!(in_series(1001.0, series_end));
        // The last second, its start rounded down to the millisecond in the report.
        assert!(in_series(1120.0009, series_end));
        // The closing fold starts where the series ended and lasts.
        assert!(!in_series(1120.5, series_end));
        assert!(!in_series(1123.8, series_end));
        // A run with no series keeps every interval.
        assert!(in_series(5000.0, f64::INFINITY));
    }
}
