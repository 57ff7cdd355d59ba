//! The result of a run: every figure, machine-readable (`report.json`), and the
//! terminal table.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::checks::{self, Ran, RunCheck};
use super::judge::{BudgetResult, Figures, WindowValue};
use crate::load::measure::collector::Second;
use crate::load::measure::recorder::{Counters, Distribution, Latencies, Quantile, Recorder};
use crate::load::plan::budget::Budget;
use crate::units::format_micros;

/// Version of the `report.json` layout.
pub const REPORT_VERSION: &str = "0.1.0";
/// Per core: a generator this busy delays what it measures.
const SATURATED_CPU_PERCENT: f64 = 85.0;

#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p95_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl Percentiles {
    /// count, p50, p90, p95, p99, p99.9, max as people read them (tables).
    pub fn cells(&self) -> [String; 7] {
        [
            self.count.to_string(),
            format_micros(self.p50_us),
            format_micros(self.p90_us),
            format_micros(self.p95_us),
            format_micros(self.p99_us),
            format_micros(self.p999_us),
            format_micros(self.max_us),
        ]
    }
}

/// The run's totals: its [`Counters`] as they were counted, and what is derived from
/// the run as a whole.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    #[serde(flatten)]
    pub counts: Counters,
    pub frames_per_s: f64,
    pub peak_open: u64,
    /// Seconds from the start until every connection was open at once (None: never).
    pub all_open_after_s: Option<f64>,
}

/// A count that may not have been measured: `n/a` then, never 0.
pub fn count_text(count: Option<u64>) -> String {
    count.map_or_else(|| "n/a".to_owned(), |n| n.to_string())
}

/// How far the server's clock is from ours, from the tightest ping/pong exchange.
#[derive(Debug, Clone, Serialize)]
pub struct ClockEstimate {
    /// Server clock minus local clock.
    pub offset_us: i64,
    /// The offset is known to within ± this (half the tightest round trip).
    pub uncertainty_us: u64,
    pub note: String,
}

impl ClockEstimate {
    fn from_best(best: Option<(u64, i64)>, on_this_host: bool) -> Option<ClockEstimate> {
        let (rtt, offset_us) = best?;
        let uncertainty_us = rtt / 2;
        let note = if on_this_host {
            format!(
                "the target is on this host (one clock); the estimate, {offset_us}µs ± {uncertainty_us}µs, shows the method's precision"
            )
        } else if offset_us.unsigned_abs() > uncertainty_us {
            format!(
                "the server clock differs by about {} (± {}): delivery and e2e latencies are shifted by that much; rtt figures are not",
                format_micros(offset_us.unsigned_abs() as f64),
                format_micros(uncertainty_us as f64)
            )
        } else {
            format!(
                "the clocks agree within ± {}: delivery and e2e latencies are trustworthy to about that",
                format_micros(uncertainty_us as f64)
            )
        };
        Some(ClockEstimate {
            offset_us,
            uncertainty_us,
            note,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadSummary {
    pub version: &'static str,
    pub started_at: String,
    pub duration_s: f64,
    /// The run was cut short (Ctrl-C): what was measured until then.
    pub stopped_early: bool,
    pub targets: Vec<String>,
    pub conns: usize,
    pub totals: Totals,
    /// By distribution: delivery, e2e, rtt, connect, first_frame, reconnect.
    pub latency: BTreeMap<&'static str, Percentiles>,
    pub per_second: Vec<Second>,
    /// What every run checks, budgets or not: that it measured something.
    pub checks: Vec<RunCheck>,
    pub budgets: Vec<BudgetResult>,
    /// This process's CPU use: if it nears the core count, the generator is the bottleneck.
    pub generator_cpu_percent: Option<f64>,
    /// The server's clock against ours (needs pongs that carry `ts`: `--send-rate`).
    pub clock: Option<ClockEstimate>,
    /// Requests of an HTTP load (`--http`), by path.
    pub http: Option<crate::load::session::http::HttpTotals>,
    /// The WebSocket subprotocol the server picked (`--subprotocol`), if any.
    pub subprotocol: Option<String>,
    /// False when certificates were not verified (`--insecure`).
    pub tls_verified: bool,
    /// Connections that ended early without coming back were expected (`--allow-drops`).
    pub drops_allowed: bool,
    pub warnings: Vec<String>,
    /// The livegames release that measured it (`report merge` refuses to mix them).
    pub livegames_version: String,
    /// This run as one worker of a sharded run (`--shard`), or null.
    pub worker: Option<WorkerReport>,
    /// The `--start-at` this run waited for and how late it really started, or null.
    pub start: Option<StartReport>,
    #[serde(skip)]
    pub latencies: Latencies,
    /// The HdrHistogram interval log of the run (written as `latency.hlog`).
    #[serde(skip)]
    pub hdr_log: Vec<u8>,
}

/// A worker of a sharded run, as its report names it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct WorkerReport {
    pub shard: crate::load::plan::shard::Shard,
    pub name: String,
    pub run_id: Option<String>,
}

/// When a run was told to start, and when it did.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct StartReport {
    /// The `--start-at` instant, RFC 3339.
    pub at: String,
    /// How much later than that the measurement started, ms (the workers of a
    /// sharded run line up to within their slips and their clocks' offsets).
    pub slip_ms: f64,
}

/// This build's version, as reports record it.
pub const LIVEGAMES_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a finished run hands over to become its summary.
pub(crate) struct Inputs<'a> {
    pub targets: &'a [url::Url],
    pub conns: usize,
    pub budgets: &'a [Budget],
    pub total: &'a Recorder,
    pub hdr_log: Vec<u8>,
    pub seconds: Vec<Second>,
    pub peak_open: u64,
    pub all_open_after: Option<Duration>,
    pub elapsed: Duration,
    pub started_wall: SystemTime,
    pub cpu_seconds: Option<f64>,
    pub stopped_early: bool,
    pub subprotocol: Option<String>,
    pub tls_verified: bool,
    /// Frames' seqs were read (not `--seq-field none`).
    pub seq_read: bool,
    pub drops_allowed: bool,
}

/// Everything a summary is made of; percentiles are computed from `latencies`.
pub struct Parts {
    pub started_at: String,
    pub duration_s: f64,
    pub stopped_early: bool,
    pub targets: Vec<String>,
    pub conns: usize,
    pub totals: Totals,
    pub latencies: Latencies,
    pub per_second: Vec<Second>,
    pub generator_cpu_percent: Option<f64>,
    pub clock: Option<ClockEstimate>,
    pub subprotocol: Option<String>,
    pub tls_verified: bool,
    pub drops_allowed: bool,
    pub warnings: Vec<String>,
    pub hdr_log: Vec<u8>,
}

/// A summary from its parts, without budgets (see [`LoadSummary::budgets`]).
pub fn from_parts(p: Parts) -> LoadSummary {
    let mut latency = BTreeMap::new();
    for d in Distribution::ALL {
        let h = p.latencies.get(d);
        if h.is_empty() {
            continue;
        }
        let q = |q: f64| h.value_at_quantile(q) as f64;
        latency.insert(
            d.name(),
            Percentiles {
                count: h.len(),
                p50_us: q(0.5),
                p90_us: q(0.9),
                p95_us: q(0.95),
                p99_us: q(0.99),
                p999_us: q(0.999),
                max_us: h.max() as f64,
                mean_us: h.mean(),
            },
        );
    }
    LoadSummary {
        version: REPORT_VERSION,
        started_at: p.started_at,
        duration_s: p.duration_s,
        stopped_early: p.stopped_early,
        targets: p.targets,
        conns: p.conns,
        totals: p.totals,
        latency,
        per_second: p.per_second,
        checks: Vec::new(),
        budgets: Vec::new(),
        generator_cpu_percent: p.generator_cpu_percent,
        clock: p.clock,
        http: None,
        subprotocol: p.subprotocol,
        tls_verified: p.tls_verified,
        drops_allowed: p.drops_allowed,
        warnings: p.warnings,
        livegames_version: LIVEGAMES_VERSION.to_owned(),
        worker: None,
        start: None,
        latencies: p.latencies,
        hdr_log: p.hdr_log,
    }
}

pub(crate) fn build(inputs: Inputs<'_>) -> LoadSummary {
    let c = &inputs.total.counters;
    let secs = inputs.elapsed.as_secs_f64().max(1e-9);
    let cpu_percent = inputs.cpu_seconds.map(|cpu| cpu / secs * 100.0);
    let on_this_host = inputs
        .targets
        .iter()
        .all(crate::client::target::is_loopback);
    let clock = ClockEstimate::from_best(c.best_offset, on_this_host);
    let totals = Totals {
        counts: c.clone(),
        frames_per_s: c.frames as f64 / secs,
        peak_open: inputs.peak_open,
        all_open_after_s: inputs.all_open_after.map(|d| d.as_secs_f64()),
    };
    let mut summary = from_parts(Parts {
        started_at: humantime::format_rfc3339_millis(inputs.started_wall).to_string(),
        duration_s: secs,
        stopped_early: inputs.stopped_early,
        targets: inputs.targets.iter().map(|u| u.to_string()).collect(),
        conns: inputs.conns,
        totals,
        latencies: inputs.total.latencies.clone(),
        per_second: inputs.seconds,
        generator_cpu_percent: cpu_percent,
        warnings: warnings(
            cpu_percent,
            clock.is_none() && !on_this_host,
            c,
            inputs.seq_read,
        ),
        clock,
        subprotocol: inputs.subprotocol,
        tls_verified: inputs.tls_verified,
        drops_allowed: inputs.drops_allowed,
        hdr_log: inputs.hdr_log,
    });
    summary.budgets = inputs
        .budgets
        .iter()
        .map(|b| b.evaluate(&summary))
        .collect();
    summary.checks = summary.run_checks();
    summary
}

/// What the reader of a run's figures should know: a saturated generator, an unknown
/// clock offset, clamped latencies.
fn warnings(
    cpu_percent: Option<f64>,
    clock_unknown: bool,
    counts: &Counters,
    seq_read: bool,
) -> Vec<String> {
    let clamped = counts.clamped;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    let mut warnings = Vec::new();
    if let Some(p) = cpu_percent.filter(|p| *p > SATURATED_CPU_PERCENT * cores) {
        warnings.push(format!("the load generator used {p:.0}% CPU of {cores} cores: it may be the bottleneck; latencies include its own delay"));
    }
    if clock_unknown {
        warnings.push("no ping/pong exchange carried a server time, so the clock offset is unknown: delivery and e2e latencies assume synchronized clocks (use --send-rate)".into());
    }
    if clamped > 0 {
        warnings.push(format!("{clamped} latencies were negative or over an hour and were clamped (clock skew between client and server?)"));
    }
    if !seq_read {
        warnings.push("loss and order were not checked (--seq-field none)".into());
    } else if counts.lost.is_none() && counts.frames > 0 {
        warnings.push(
            "no frame carried a sequence number at --seq-field: loss and order were not checked"
                .into(),
        );
    }
    if counts.pings_sent > 0 && counts.pongs == 0 {
        warnings.push(format!(
            "{} messages were sent and no reply matched one: no rtt was measured (--pong-match POINTER names where a server's replies echo the message's {{id}})",
            counts.pings_sent
        ));
    }
    if counts.unrecoverable > 0 {
        warnings.push(format!(
            "the server restarted under {} connection(s); what it had sent after their last seq could not be recovered (report.json: unrecoverable_examples)",
            counts.unrecoverable
        ));
    }
    warnings
}

impl Figures for LoadSummary {
    fn latency(&self, dist: Distribution, q: Quantile) -> Option<f64> {
        self.latencies.quantile(dist, q)
    }
    fn connection_attempts(&self) -> u64 {
        self.totals.counts.connect_attempts + self.http.as_ref().map_or(0, |h| h.requests)
    }
    fn errors(&self) -> u64 {
        self.totals.counts.error_total() + self.http.as_ref().map_or(0, |h| h.failures)
    }
    fn lost(&self) -> Result<u64, String> {
        let c = &self.totals.counts;
        let known = c.lost.ok_or_else(|| {
            "no frame's sequence number was checked (--seq-field), so loss is unknown".to_owned()
        })?;
        if c.unrecoverable > 0 {
            return Err(format!(
                "{known} lost in sequence gaps, and {} resume(s) after a server restart could not recover what it had sent: that loss is unknown",
                c.unrecoverable
            ));
        }
        Ok(known)
    }
    fn frames(&self) -> u64 {
        self.totals.counts.frames
    }
    fn connections_lost(&self) -> u64 {
        let c = &self.totals.counts;
        c.disconnects.saturating_sub(c.reconnects_pending)
    }
    fn reconnect_attempts(&self) -> u64 {
        self.totals.counts.reconnect_attempts
    }
    fn reconnect_successes(&self) -> u64 {
        self.totals.counts.reconnect_successes
    }
    fn peak_conns(&self) -> u64 {
        self.totals.peak_open
    }
    fn latency_windows(
        &self,
        dist: Distribution,
        q: Quantile,
        window: Duration,
    ) -> Vec<WindowValue> {
        latency_windows(self, dist, q, window)
    }
}

/// A percentile per `window` from the run's start, from its interval log (exact:
/// each window's histograms are added, not its seconds' percentiles averaged).
fn latency_windows(
    summary: &LoadSummary,
    dist: Distribution,
    q: Quantile,
    window: Duration,
) -> Vec<WindowValue> {
    let Ok(intervals) = crate::load::measure::hdrlog::read(&summary.hdr_log) else {
        return Vec::new();
    };
    let start = humantime::parse_rfc3339_weak(&summary.started_at)
        .map(crate::clock::seconds_of)
        .unwrap_or_else(|_| {
            intervals
                .iter()
                .map(|i| i.start_s)
                .fold(f64::INFINITY, f64::min)
        });
    let w = window.as_secs_f64().max(1.0);
    let mut windows: BTreeMap<u64, Recorder> = BTreeMap::new();
    for interval in intervals.iter().filter(|i| i.tag == dist.name()) {
        // An interval belongs to the window its middle falls in.
        let middle = interval.start_s + interval.length_s / 2.0 - start;
        let index = (middle.max(0.0) / w).floor() as u64;
        windows
            .entry(index)
            .or_default()
            .add_histogram(dist, &interval.histogram);
    }
    windows
        .into_iter()
        .filter_map(|(index, recorder)| {
            let value_us = recorder.quantile(dist, q)?;
            Some(WindowValue {
                from_s: index as f64 * w,
                to_s: ((index + 1) as f64 * w).min(summary.duration_s.max(index as f64 * w)),
                value_us,
            })
        })
        .collect()
}

impl LoadSummary {
    /// The checks every run makes, on this summary's figures.
    pub fn run_checks(&self) -> Vec<RunCheck> {
        checks::run_checks(Ran {
            counts: &self.totals.counts,
            conns: self.conns,
            drops_allowed: self.drops_allowed,
            http: self.http.as_ref().map(|http| {
                let answered = self.latencies.get(Distribution::Http).len();
                (answered, http.requests)
            }),
        })
    }

    /// Whether anything reached the target: a connection, or an answered request.
    pub fn reached_target(&self) -> bool {
        match &self.http {
            Some(_) => !self.latencies.get(Distribution::Http).is_empty(),
            None => self.totals.counts.connected > 0,
        }
    }

    pub fn budgets_passed(&self) -> bool {
        self.budgets.iter().all(|b| b.passed)
    }

    /// Every run check and every budget held.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed) && self.budgets_passed()
    }
}

/// The summary of an HTTP run (`load --http`): the `http` latency and per-path figures.
pub fn http_summary(
    started: SystemTime,
    duration: Duration,
    base: &str,
    recorder: Recorder,
    http: crate::load::session::http::HttpTotals,
    budgets: &[crate::load::plan::budget::Budget],
    tls_verified: bool,
) -> LoadSummary {
    let mut log = crate::load::measure::hdrlog::HdrLog::new(started);
    log.write_interval(&recorder.latencies, Duration::ZERO, duration);
    // Failed requests are counted in `http` (by path and status), not in `errors`.
    let totals = Totals::default();
    let mut summary = from_parts(Parts {
        started_at: humantime::format_rfc3339_millis(started).to_string(),
        duration_s: duration.as_secs_f64(),
        stopped_early: false,
        targets: vec![base.to_owned()],
        conns: http.users,
        totals,
        latencies: recorder.latencies,
        per_second: Vec::new(),
        generator_cpu_percent: None,
        clock: None,
        subprotocol: None,
        tls_verified,
        drops_allowed: false,
        warnings: vec!["http latencies come from goose's microsecond buckets (0.78% wide)".into()],
        hdr_log: log.bytes().to_vec(),
    });
    summary.http = Some(http);
    summary.budgets = budgets.iter().map(|b| b.evaluate(&summary)).collect();
    summary.checks = summary.run_checks();
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use WindowValue;

    /// A 30 s run whose delivery latency is 10 ms, except for 20 frames at 400 ms in
    /// second 12 (0.7 % of the run, 2 % of its second 10 s window).
    fn run_with_a_bad_patch() -> LoadSummary {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut log = crate::load::measure::hdrlog::HdrLog::new(start);
        let mut total = Recorder::new();
        for second in 0..30u64 {
            let mut r = Recorder::new();
            for frame in 0..100 {
                let slow = second == 12 && frame < 20;
                r.latency(Distribution::Delivery, if slow { 400_000 } else { 10_000 });
            }
            log.write_interval(
                &r.latencies,
                Duration::from_secs(second),
                Duration::from_secs(1),
            );
            total.add(&r);
        }
        from_parts(Parts {
            started_at: humantime::format_rfc3339_millis(start).to_string(),
            duration_s: 30.0,
            stopped_early: false,
            targets: Vec::new(),
            conns: 1,
            totals: Totals::default(),
            latencies: total.latencies,
            per_second: Vec::new(),
            generator_cpu_percent: None,
            clock: None,
            subprotocol: None,
            tls_verified: true,
            drops_allowed: false,
            warnings: Vec::new(),
            hdr_log: log.bytes().to_vec(),
        })
    }

    #[test]
    fn window_percentiles_come_from_each_windows_own_samples() {
        let run = run_with_a_bad_patch();
        let windows = run.latency_windows(
            Distribution::Delivery,
            Quantile::P99,
            Duration::from_secs(10),
        );
        let values: Vec<(f64, f64, u64)> = windows
            .iter()
            .map(|w: &WindowValue| (w.from_s, w.to_s, (w.value_us / 1000.0).round() as u64))
            .collect();
        assert_eq!(
            values,
            [(0.0, 10.0, 10), (10.0, 20.0, 400), (20.0, 30.0, 10)]
        );
        // The whole run's p99 hides the patch...
        let whole: Budget = "p99<250ms".parse().unwrap();
        assert!(whole.evaluate(&run).passed);
        // ...every 10 s window does not.
        let windowed: Budget = "p99<250ms over 10s".parse().unwrap();
        let r = windowed.evaluate(&run);
        assert!(!r.passed);
        assert!(r.measured.starts_with("400."), "{}", r.measured);
        assert!(r.measured.contains("in 10-20s"), "{}", r.measured);
    }
}
