//! The once-a-second fold: every recorder shard is swapped for an emptied one and
//! added into the second's interval (its per-second figures, one interval-log entry,
//! the `--out` lines) and then into the run's totals, so memory does not grow with
//! connections or time. What a person is shown each second is a [`Tick`].

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::gauges::Gauges;
use crate::load::measure::hdrlog::HdrLog;
use crate::load::measure::recorder::{Distribution, Quantile, Recorder};

/// The collector's period: per-second figures and one interval-log entry each.
const FOLD_EVERY: Duration = Duration::from_secs(1);

/// One second of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Second {
    /// Seconds since the start.
    pub t: f64,
    pub open: u64,
    pub frames: u64,
    pub frames_per_s: f64,
    pub p50_us: Option<f64>,
    #[serde(default)]
    pub p95_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub max_us: Option<f64>,
    pub rtt_p99_us: Option<f64>,
    pub errors: u64,
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
    fn send(&self, second: &Second, errors: &BTreeMap<String, u64>) {
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

/// Folds the shards once a second: into the interval (per-second figures and the
/// interval log), then into the run totals.
pub(crate) struct Collector {
    shards: Vec<Arc<Mutex<Recorder>>>,
    /// One emptied recorder per shard, swapped in at each fold: the shard's lock is
    /// held for a swap, not for adding its histograms (which would make every
    /// connection of the shard wait on the collector once a second).
    spares: Vec<Recorder>,
    gauges: Arc<Gauges>,
    started: Instant,
    interval: Recorder,
    total: Recorder,
    log: HdrLog,
    last_fold: Duration,
    out: Option<SecondsOut>,
}

impl Collector {
    pub(crate) fn new(
        shards: Vec<Arc<Mutex<Recorder>>>,
        gauges: Arc<Gauges>,
        started: Instant,
        started_wall: SystemTime,
        out: Option<SecondsOut>,
    ) -> Self {
        Self {
            spares: vec![Recorder::new(); shards.len()],
            shards,
            gauges,
            started,
            interval: Recorder::new(),
            total: Recorder::new(),
            log: HdrLog::new(started_wall),
            last_fold: Duration::ZERO,
            out,
        }
    }

    /// The run's totals so far, and its interval log: what the collector leaves.
    pub(crate) fn finish(self) -> (Recorder, Vec<u8>) {
        (self.total, self.log.bytes().to_vec())
    }

    /// Folds once a second until `deadline` (or `stop`, which makes the run
    /// "stopped early"), showing each second through `on_tick`.
    pub(crate) async fn until(
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

    pub(crate) fn fold(&mut self) -> Second {
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
mod tests {
    use super::*;

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
