//! The engine of a WebSocket load: connections open on a ramp, each a
//! [`VirtualUser`] recording into one of a few [`Recorder`] shards; once a second the
//! collector folds the shards into the run totals and a per-second series, and hands
//! a [`Tick`] to whoever shows progress. It is given WebSocket URLs and knows nothing
//! of the server behind them.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use url::Url;

use super::budget::Budget;
use super::hdrlog;
use super::host;
use super::plan::{StreamTarget, VuConfig};
use super::recorder::{Distribution, Quantile, Recorder};
use super::shard::Shard;
use super::summary::{self, LoadSummary, Second};
use super::vu::{Gauges, VirtualUser};

#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The streams, one per game; connections are spread over them in turn.
    pub targets: Vec<StreamTarget>,
    /// Connections of the whole run; this process opens its shard's share of them.
    pub conns: usize,
    /// Which of the run's connections are this process's (all of them by default).
    pub shard: Shard,
    pub duration: Duration,
    /// Connections open evenly over this time (zero: all at once).
    pub ramp: Duration,
    pub vu: VuConfig,
    pub budgets: Vec<Budget>,
    /// Where each second's figures are also sent (`--out influxdb=`).
    pub out: Option<SecondsOut>,
    /// A clock exchange made before the run (round trip µs, server minus ours µs),
    /// weighed with the run's own pongs for the report's clock estimate.
    pub clock_probe: Option<(u64, i64)>,
}

/// Each second's figures as InfluxDB lines: measurement `load` (tags `run`, `worker`,
/// `stage`; fields open, frames, frames_per_s, delivery p50/p95/p99/max and rtt p99 in
/// ms, errors) and one `load_errors` line per error kind seen that second.
#[derive(Clone)]
pub struct SecondsOut {
    pub writer: crate::influx::Writer,
    pub run_id: String,
    pub worker: String,
    pub stage: String,
}

impl std::fmt::Debug for SecondsOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecondsOut")
            .field("influxdb", &self.writer.target.display)
            .field("run_id", &self.run_id)
            .field("worker", &self.worker)
            .finish()
    }
}

impl SecondsOut {
    fn send(&self, second: &Second, errors: &std::collections::BTreeMap<String, u64>) {
        use crate::influx::{Field, line};
        let at = crate::clock::unix_nanos();
        let ms = |us: Option<f64>| us.map(|v| Field::Float(v / 1000.0));
        let mut out = String::with_capacity(256);
        line(&mut out, "load")
            .tag("run", &self.run_id)
            .tag("worker", &self.worker)
            .tag("stage", &self.stage)
            .field("t", Field::Float(second.t))
            .field("open", Field::Int(second.open as i64))
            .field("frames", Field::Int(second.frames as i64))
            .field("frames_per_s", Field::Float(second.frames_per_s))
            .field_opt("delivery_p50_ms", ms(second.p50_us))
            .field_opt("delivery_p95_ms", ms(second.p95_us))
            .field_opt("delivery_p99_ms", ms(second.p99_us))
            .field_opt("delivery_max_ms", ms(second.max_us))
            .field_opt("rtt_p99_ms", ms(second.rtt_p99_us))
            .field("errors", Field::Int(second.errors as i64))
            .finish(at);
        for (kind, count) in errors.iter().filter(|(_, n)| **n > 0) {
            line(&mut out, "load_errors")
                .tag("run", &self.run_id)
                .tag("worker", &self.worker)
                .tag("stage", &self.stage)
                .tag("kind", kind)
                .field("count", Field::Int(*count as i64))
                .finish(at);
        }
        self.writer.push(out);
    }
}

/// What the collector shows each second (for a progress bar).
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    pub elapsed: Duration,
    pub open: u64,
    /// Frames received since the previous tick.
    pub frames: u64,
    pub frames_per_s: f64,
    /// p99 delivery latency of the last second, µs.
    pub p99_us: Option<f64>,
    /// How long after the start every connection was first open at once, once it was.
    pub all_open_after: Option<Duration>,
}

/// Recorder shards per core: a few more shards than cores, so connections rarely
/// share a lock at the same instant, few enough that the per-second fold stays cheap.
const SHARDS_PER_CORE: usize = 4;
/// Connections per recorder shard, at least: each shard (and its spare) holds a set of
/// histograms, ~90 KiB each once latencies reach a second; eight shards over 100
/// connections were 17 KiB per connection of histograms alone, while a lock shared by
/// 128 connections is still rarely contended (a frame holds it for well under 1 µs).
const CONNS_PER_SHARD: usize = 128;
/// How long the users have to close their sockets when the run ends (each close is
/// itself bounded, so this is only reached when the machine is overwhelmed).
const USERS_CLOSE_GRACE: Duration = Duration::from_secs(5);
/// The collector's period: per-second figures and one interval-log entry each.
const FOLD_EVERY: Duration = Duration::from_secs(1);

/// How many recorder shards `conns` connections share.
fn shard_count(conns: usize, cores: usize) -> usize {
    conns
        .div_ceil(CONNS_PER_SHARD)
        .clamp(1, cores.max(1) * SHARDS_PER_CORE)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Runs the load to completion (or until `stop`), then returns what was measured.
pub async fn run(
    config: LoadConfig,
    stop: CancellationToken,
    on_tick: impl Fn(Tick),
) -> LoadSummary {
    let started_wall = std::time::SystemTime::now();
    let cpu_before = host::process_cpu_seconds();
    let conns = config.shard.conns(config.conns);
    let shards: Vec<Arc<Mutex<Recorder>>> = (0..shard_count(conns, cores()))
        .map(|_| Arc::new(Mutex::new(Recorder::new())))
        .collect();
    let gauges = Arc::new(Gauges::new(conns as u64));
    let users = CancellationToken::new();
    let tracker = TaskTracker::new();
    let started = Instant::now();
    let ramp = Ramp {
        config: &config,
        started,
        shards: &shards,
        gauges: &gauges,
        users: &users,
        tracker: &tracker,
    };
    let spawner = ramp.spawn();
    let mut collector = Collector {
        shards: shards.clone(),
        gauges: gauges.clone(),
        started,
        spares: vec![Recorder::new(); shards.len()],
        interval: Recorder::new(),
        total: Recorder::new(),
        log: hdrlog::HdrLog::new(started_wall),
        last_fold: Duration::ZERO,
        out: config.out.clone(),
    };
    let (seconds, stopped_early) = collector
        .until(started + config.duration, &stop, on_tick)
        .await;
    users.cancel();
    spawner.abort();
    tracker.close();
    // Every user closes its socket (each close is bounded on its own).
    let _ = tokio::time::timeout(USERS_CLOSE_GRACE, tracker.wait()).await;
    // What arrived while the users were closing counts in the totals; as a point of
    // the per-second series it would be a stub of a second with nobody connected.
    let _closing = collector.fold();
    if let Some((rtt, offset)) = config.clock_probe {
        collector.total.counters.observe_offset(rtt, offset);
    }
    let elapsed = started.elapsed();
    let cpu = host::process_cpu_seconds().map(|after| after - cpu_before.unwrap_or(after));
    let urls: Vec<Url> = config.targets.iter().map(|t| t.url.clone()).collect();
    summary::build(summary::Inputs {
        targets: &urls,
        conns,
        budgets: &config.budgets,
        total: &collector.total,
        hdr_log: collector.log.bytes().to_vec(),
        seconds,
        peak_open: gauges.peak_open.load(Ordering::Relaxed),
        all_open_after: gauges.all_open_at.get().map(|t| t.duration_since(started)),
        elapsed,
        started_wall,
        cpu_seconds: cpu,
        stopped_early,
        subprotocol: gauges.subprotocol.get().cloned(),
        tls_verified: !config.vu.connect.insecure,
        seq_read: config.vu.reader.reads_seq(),
    })
}

/// What the ramp needs to start the users.
struct Ramp<'a> {
    config: &'a LoadConfig,
    started: Instant,
    shards: &'a [Arc<Mutex<Recorder>>],
    gauges: &'a Arc<Gauges>,
    users: &'a CancellationToken,
    tracker: &'a TaskTracker,
}

impl Ramp<'_> {
    /// Starts this process's connections, each at the instant the ramp gives its
    /// index in the whole run (`ramp * j / conns`), as a task owned by the tracker and
    /// stopped by `users`. Connection `j` streams target `j mod targets`, so shards
    /// of a run spread over the games as one process would.
    fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let (tracker, users, shards, gauges, targets) = (
            self.tracker.clone(),
            self.users.clone(),
            self.shards.to_vec(),
            self.gauges.clone(),
            self.config.targets.clone(),
        );
        let vu_config = Arc::new(self.config.vu.clone());
        let (conns, ramp, started) = (self.config.conns, self.config.ramp, self.started);
        let shard = self.config.shard;
        tokio::spawn(async move {
            for local in 0..shard.conns(conns) {
                let i = shard.global(local);
                let at = started + ramp.mul_f64(i as f64 / conns.max(1) as f64);
                tokio::select! {
                    _ = users.cancelled() => return,
                    _ = tokio::time::sleep_until(at.into()) => {}
                }
                let user = VirtualUser {
                    index: i,
                    target: targets[i % targets.len()].clone(),
                    config: vu_config.clone(),
                    shard: shards[local % shards.len()].clone(),
                    gauges: gauges.clone(),
                    stop: users.clone(),
                };
                tracker.spawn(user.run());
            }
        })
    }
}

/// Folds the shards once a second: into the interval (per-second figures and the
/// interval log), then into the run totals.
struct Collector {
    shards: Vec<Arc<Mutex<Recorder>>>,
    /// One emptied recorder per shard, swapped in at each fold: the shard's lock is
    /// held for a swap, not for adding its histograms (which would make every
    /// connection of the shard wait on the collector once a second).
    spares: Vec<Recorder>,
    gauges: Arc<Gauges>,
    started: Instant,
    interval: Recorder,
    total: Recorder,
    log: hdrlog::HdrLog,
    last_fold: Duration,
    out: Option<SecondsOut>,
}

impl Collector {
    /// Folds once a second until `deadline` (or `stop`, which makes the run
    /// "stopped early"), showing each second through `on_tick`.
    async fn until(
        &mut self,
        deadline: Instant,
        stop: &CancellationToken,
        on_tick: impl Fn(Tick),
    ) -> (Vec<Second>, bool) {
        let mut seconds = Vec::new();
        let mut ticker = tokio::time::interval_at((self.started + FOLD_EVERY).into(), FOLD_EVERY);
        loop {
            let (finished, stopped_early) = tokio::select! {
                _ = stop.cancelled() => (true, true),
                _ = tokio::time::sleep_until(deadline.into()) => (true, false),
                _ = ticker.tick() => (false, false),
            };
            let second = self.fold();
            on_tick(Tick {
                elapsed: self.started.elapsed(),
                open: second.open,
                frames: second.frames,
                frames_per_s: second.frames_per_s,
                p99_us: second.p99_us,
                all_open_after: self
                    .gauges
                    .all_open_at
                    .get()
                    .map(|t| t.duration_since(self.started)),
            });
            if finished {
                push_or_absorb(&mut seconds, second, FOLD_EVERY.as_secs_f64() / 2.0);
                return (seconds, stopped_early);
            }
            seconds.push(second);
        }
    }

    fn fold(&mut self) -> Second {
        for (shard, spare) in self.shards.iter().zip(&mut self.spares) {
            std::mem::swap(&mut *shard.lock().unwrap_or_else(|e| e.into_inner()), spare);
            // Emptied again, allocations kept, for the next fold.
            spare.drain_into(&mut self.interval);
        }
        let now = self.started.elapsed();
        let length = now.saturating_sub(self.last_fold);
        self.log
            .write_interval(&self.interval.latencies, self.last_fold, length);
        self.last_fold = now;
        let i = &self.interval;
        let second = Second {
            t: now.as_secs_f64(),
            open: self.gauges.open.load(Ordering::Relaxed),
            frames: i.counters.frames,
            frames_per_s: i.counters.frames as f64 / length.as_secs_f64().max(1e-3),
            p50_us: i.quantile(Distribution::Delivery, Quantile::P50),
            p95_us: i.quantile(Distribution::Delivery, Quantile::P95),
            p99_us: i.quantile(Distribution::Delivery, Quantile::P99),
            max_us: i.quantile(Distribution::Delivery, Quantile::Max),
            rtt_p99_us: i.quantile(Distribution::Rtt, Quantile::P99),
            errors: i.counters.error_total(),
        };
        if let Some(out) = &self.out {
            out.send(&second, &i.counters.errors);
        }
        self.interval.drain_into(&mut self.total);
        second
    }
}

/// Appends the run's last interval, or, when it is shorter than `min_len` seconds
/// (the deadline fell just after a fold), adds its counts to the previous second:
/// a few milliseconds alone would chart as a drop of the rate to nothing.
pub(crate) fn push_or_absorb(seconds: &mut Vec<Second>, tail: Second, min_len: f64) {
    let Some(last) = seconds.last() else {
        seconds.push(tail);
        return;
    };
    if tail.t - last.t >= min_len {
        seconds.push(tail);
        return;
    }
    let began = match seconds.len() {
        0 | 1 => 0.0,
        n => seconds[n - 2].t,
    };
    let last = seconds.last_mut().expect("checked above");
    last.frames += tail.frames;
    last.errors += tail.errors;
    last.open = tail.open;
    last.t = tail.t;
    last.frames_per_s = last.frames as f64 / (last.t - began).max(1e-3);
    // The tail's latencies are in the run's totals; its handful of samples do not
    // change this second's percentiles enough to redo them, except a new maximum.
    last.max_us = match (last.max_us, tail.max_us) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
}

#[cfg(test)]
mod tail_tests {
    use super::*;

    #[test]
    fn few_connections_share_few_recorder_shards() {
        assert_eq!(shard_count(1, 2), 1);
        assert_eq!(shard_count(128, 2), 1);
        assert_eq!(shard_count(129, 2), 2);
        // Many connections: a few shards per core, however many connections.
        assert_eq!(shard_count(1_000, 2), 8);
        assert_eq!(shard_count(100_000, 2), 8);
        assert_eq!(shard_count(100_000, 16), 64);
        // No connections (HTTP users only) still records somewhere.
        assert_eq!(shard_count(0, 2), 1);
    }

    fn second(t: f64, frames: u64) -> Second {
        Second {
            t,
            open: 10,
            frames,
            frames_per_s: frames as f64,
            p50_us: Some(100.0),
            p95_us: Some(150.0),
            p99_us: Some(200.0),
            max_us: Some(300.0),
            rtt_p99_us: None,
            errors: 0,
        }
    }

    #[test]
    fn a_sliver_at_the_end_joins_the_last_second_instead_of_charting_as_zero() {
        let mut seconds = vec![second(1.0, 600), second(2.0, 610)];
        push_or_absorb(&mut seconds, second(2.004, 3), 0.5);
        assert_eq!(seconds.len(), 2);
        let last = &seconds[1];
        assert_eq!((last.frames, last.t), (613, 2.004));
        assert!((last.frames_per_s - 613.0 / 1.004).abs() < 1e-6);
    }

    #[test]
    fn a_long_enough_tail_is_its_own_second() {
        let mut seconds = vec![second(1.0, 600)];
        push_or_absorb(&mut seconds, second(1.7, 420), 0.5);
        assert_eq!(seconds.len(), 2);
        let mut none = Vec::new();
        push_or_absorb(&mut none, second(0.01, 1), 0.5);
        assert_eq!(none.len(), 1);
    }
}
