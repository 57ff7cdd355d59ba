//! `livegames load`: many WebSocket connections against any server, measured.
//!
//! [`run`] knows nothing of `serve`: it is given WebSocket URLs. Connections open on
//! a ramp; each is a [`vu::VirtualUser`] recording into one of a few
//! [`recorder::Recorder`] shards; once a second the collector folds the shards into
//! the run totals and a per-second series and feeds the progress display.

pub mod budget;
pub mod hdrlog;
pub mod http;
pub mod merge;
pub mod recorder;
pub mod report;
pub mod scenario;
pub mod summary;
pub mod vu;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use budget::{Budget, Distribution, Quantile};
use recorder::Recorder;
use summary::{LoadSummary, Second};
use vu::{Gauges, VirtualUser, VuConfig};

#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// WebSocket URLs, one per game; connections are spread over them in turn.
    pub targets: Vec<String>,
    pub conns: usize,
    pub duration: Duration,
    /// Connections open evenly over this time (zero: all at once).
    pub ramp: Duration,
    pub vu: VuConfig,
    pub budgets: Vec<Budget>,
}

/// What the collector shows each second (for a progress bar).
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    pub elapsed: Duration,
    pub open: u64,
    pub frames_per_s: f64,
    /// p99 delivery latency of the last second, µs.
    pub p99_us: Option<f64>,
}

/// Shards: a few more than cores, so connections rarely share a lock at the same
/// instant, few enough that the per-second fold stays cheap.
fn shard_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        * 4
}

/// Runs the load to completion (or until `stop`), then returns what was measured.
pub async fn run(
    config: LoadConfig,
    stop: CancellationToken,
    on_tick: impl Fn(Tick),
) -> LoadSummary {
    let started_wall = std::time::SystemTime::now();
    let cpu_before = process_cpu_seconds();
    let shards: Vec<Arc<Mutex<Recorder>>> = (0..shard_count())
        .map(|_| Arc::new(Mutex::new(Recorder::new())))
        .collect();
    let gauges = Arc::new(Gauges::new(config.conns as u64));
    let users = CancellationToken::new();
    let tracker = TaskTracker::new();
    let vu_config = Arc::new(config.vu.clone());
    let started = Instant::now();
    let deadline = started + config.duration;

    // The ramp: connection i opens at ramp * i / conns.
    let spawner = {
        let (tracker, users, shards, gauges, targets) = (
            tracker.clone(),
            users.clone(),
            shards.clone(),
            gauges.clone(),
            config.targets.clone(),
        );
        let (conns, ramp) = (config.conns, config.ramp);
        tokio::spawn(async move {
            for i in 0..conns {
                let at = started + ramp.mul_f64(i as f64 / conns.max(1) as f64);
                tokio::select! {
                    _ = users.cancelled() => return,
                    _ = tokio::time::sleep_until(at.into()) => {}
                }
                let user = VirtualUser {
                    url: targets[i % targets.len()].clone(),
                    config: vu_config.clone(),
                    shard: shards[i % shards.len()].clone(),
                    gauges: gauges.clone(),
                    stop: users.clone(),
                };
                tracker.spawn(user.run());
            }
        })
    };

    let mut collector = Collector {
        shards: shards.clone(),
        gauges: gauges.clone(),
        started,
        interval: Recorder::new(),
        total: Recorder::new(),
        log: hdrlog::HdrLog::new(started_wall),
        last_fold: Duration::ZERO,
    };
    let mut seconds = Vec::new();
    let mut ticker = tokio::time::interval_at(
        (started + Duration::from_secs(1)).into(),
        Duration::from_secs(1),
    );
    let mut stopped_early = false;
    loop {
        let finished = tokio::select! {
            _ = stop.cancelled() => { stopped_early = true; true }
            _ = tokio::time::sleep_until(deadline.into()) => true,
            _ = ticker.tick() => false,
        };
        let second = collector.fold();
        on_tick(Tick {
            elapsed: started.elapsed(),
            open: second.open,
            frames_per_s: second.frames_per_s,
            p99_us: second.p99_us,
        });
        seconds.push(second);
        if finished {
            break;
        }
    }
    users.cancel();
    spawner.abort();
    tracker.close();
    // Every user closes its socket (bounded by a 1 s close timeout each).
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    // What arrived while the users were closing counts in the totals; as a point of
    // the per-second series it would be a stub of a second with nobody connected.
    let _closing = collector.fold();
    let elapsed = started.elapsed();
    let cpu = process_cpu_seconds().map(|after| after - cpu_before.unwrap_or(after));
    summary::build(summary::Inputs {
        config: &config,
        total: &collector.total,
        hdr_log: collector.log.bytes().to_vec(),
        seconds,
        peak_open: gauges.peak_open.load(Ordering::Relaxed),
        all_open_after: gauges.all_open_at.get().map(|t| t.duration_since(started)),
        elapsed,
        started_wall,
        cpu_seconds: cpu,
        stopped_early,
    })
}

/// Folds the shards once a second: into the interval (per-second figures and the
/// interval log), then into the run totals.
struct Collector {
    shards: Vec<Arc<Mutex<Recorder>>>,
    gauges: Arc<Gauges>,
    started: Instant,
    interval: Recorder,
    total: Recorder,
    log: hdrlog::HdrLog,
    last_fold: Duration,
}

impl Collector {
    fn fold(&mut self) -> Second {
        for shard in &self.shards {
            shard
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain_into(&mut self.interval);
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
            p99_us: i.quantile(Distribution::Delivery, Quantile::P99),
            max_us: i.quantile(Distribution::Delivery, Quantile::Max),
            rtt_p99_us: i.quantile(Distribution::Rtt, Quantile::P99),
            errors: i.counters.error_total(),
        };
        self.interval.drain_into(&mut self.total);
        second
    }
}

/// CPU time (user + system) this process has used, from /proc (Linux).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit(") ").next()?.split_whitespace().collect();
    let ticks_per_s = 100.0; // USER_HZ
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / ticks_per_s)
}

/// Raises this process's open-files limit to `wanted` where the OS allows, and says
/// clearly when it does not (each connection is a file descriptor).
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux but not on every unix
pub fn raise_open_files_limit(wanted: u64) {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return;
        }
        if limit.rlim_cur as u64 >= wanted {
            return;
        }
        let target = (wanted as libc::rlim_t).min(limit.rlim_max);
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        let ok = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0;
        if !ok || (target as u64) < wanted {
            eprintln!(
                "livegames load: the OS allows {} open files (hard limit {}), fewer than the {wanted} this run needs; connections beyond it will fail with 'io' errors (raise it with `ulimit -Hn`)",
                if ok {
                    target as u64
                } else {
                    limit.rlim_cur as u64
                },
                limit.rlim_max as u64
            );
        }
    }
}
