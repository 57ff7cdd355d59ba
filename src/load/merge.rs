//! `livegames report merge`: one report from the report directories of several runs
//! (a load spread over many machines). Latencies are merged from the HdrHistogram
//! interval logs, so merged percentiles are exact, not averages of percentiles;
//! counts are summed from the `report.json` files; seconds are aligned on wall time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::budget::{Budget, Distribution, Quantile};
use super::hdrlog::{self, HdrLog};
use super::recorder::{Latencies, Recorder};
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
}

#[derive(Deserialize)]
struct RunTotals {
    frames: u64,
    bytes: u64,
    lost: u64,
    duplicates: u64,
    reordered: u64,
    connect_attempts: u64,
    connected: u64,
    peak_open: u64,
    disconnects: u64,
    reconnect_attempts: u64,
    reconnect_successes: u64,
    pings_sent: u64,
    pongs: u64,
    clamped_latencies: u64,
    errors: BTreeMap<String, u64>,
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

fn distribution(tag: &str) -> Option<Distribution> {
    Latencies::ALL
        .into_iter()
        .find(|d| summary::distribution_name(*d) == tag)
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

    // Latencies: the total, and one merged recorder per wall-clock second.
    let mut total = Recorder::new();
    let mut by_second: BTreeMap<u64, Recorder> = BTreeMap::new();
    for run in &runs {
        for interval in &run.intervals {
            let Some(d) = distribution(&interval.tag) else {
                continue;
            };
            let bucket = (interval.start_s - start_s).max(0.0).floor() as u64;
            let slot = by_second.entry(bucket).or_default();
            let mut one = Recorder::new();
            one.add_histogram(d, &interval.histogram);
            slot.add(&one);
            total.add(&one);
        }
    }
    // Counts per second, on the same wall-clock buckets.
    let mut counts: BTreeMap<u64, (u64, u64, u64)> = BTreeMap::new();
    for run in &runs {
        for s in &run.report.per_second {
            let bucket = (run.start_s + s.t - 1.0 - start_s).max(0.0).floor() as u64;
            let c = counts.entry(bucket).or_default();
            c.0 += s.open;
            c.1 += s.frames;
            c.2 += s.errors;
        }
    }
    let mut log =
        HdrLog::new(std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(start_s.max(0.0)));
    let buckets: std::collections::BTreeSet<u64> =
        by_second.keys().chain(counts.keys()).copied().collect();
    let seconds: Vec<Second> = buckets
        .into_iter()
        .map(|b| {
            let empty = Recorder::new();
            let r = by_second.get(&b).unwrap_or(&empty);
            log.write_interval(
                &r.latencies,
                std::time::Duration::from_secs(b),
                std::time::Duration::from_secs(1),
            );
            let (open, frames, errors) = counts.get(&b).copied().unwrap_or_default();
            Second {
                t: (b + 1) as f64,
                open,
                frames,
                frames_per_s: frames as f64,
                p50_us: r.quantile(Distribution::Delivery, Quantile::P50),
                p99_us: r.quantile(Distribution::Delivery, Quantile::P99),
                max_us: r.quantile(Distribution::Delivery, Quantile::Max),
                rtt_p99_us: r.quantile(Distribution::Rtt, Quantile::P99),
                errors,
            }
        })
        .collect();

    let totals = sum_totals(&runs, (end_s - start_s).max(1e-9));
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
    let mut merged = summary::from_parts(summary::Parts {
        started_at: humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(start_s.max(0.0)),
        )
        .to_string(),
        duration_s: end_s - start_s,
        stopped_early: runs.iter().any(|r| r.report.stopped_early),
        targets: runs
            .iter()
            .flat_map(|r| r.report.targets.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
        conns: runs.iter().map(|r| r.report.conns).sum(),
        totals,
        latencies: total.latencies,
        per_second: seconds,
        generator_cpu_percent: None,
        // Each machine has its own clock: see the runs' own reports.
        clock: None,
        warnings,
        hdr_log: log.bytes().to_vec(),
    });
    merged.budgets = budgets.iter().map(|b| b.evaluate(&merged)).collect();
    Ok(merged)
}

fn sum_totals(runs: &[Run], seconds: f64) -> Totals {
    let mut t = Totals::default();
    for r in runs {
        let o = &r.report.totals;
        t.frames += o.frames;
        t.bytes += o.bytes;
        t.lost += o.lost;
        t.duplicates += o.duplicates;
        t.reordered += o.reordered;
        t.connect_attempts += o.connect_attempts;
        t.connected += o.connected;
        // Runs on different machines run at the same time: their peaks add up.
        t.peak_open += o.peak_open;
        t.disconnects += o.disconnects;
        t.reconnect_attempts += o.reconnect_attempts;
        t.reconnect_successes += o.reconnect_successes;
        t.pings_sent += o.pings_sent;
        t.pongs += o.pongs;
        t.clamped_latencies += o.clamped_latencies;
        for (k, v) in &o.errors {
            *t.errors.entry(k.clone()).or_default() += v;
        }
    }
    t.frames_per_s = t.frames as f64 / seconds;
    t
}
