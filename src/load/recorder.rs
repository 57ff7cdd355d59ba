//! What a run measures: HdrHistograms (microseconds, 3 significant digits) and
//! counters. Connections record into one of a few shards (a short uncontended lock
//! per frame); once a second the collector folds every shard into the interval and
//! run totals and resets it, so memory does not grow with connections or time.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::budget::{Distribution, Quantile};

/// Highest latency recorded: an hour. Larger values are clamped and counted.
pub const MAX_MICROS: u64 = 3_600_000_000;

fn histogram() -> Histogram<u64> {
    // Bounds and precision are constants that the crate accepts.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds")
}

/// The latency distributions of a run, one per [`Distribution`].
#[derive(Debug, Clone)]
pub struct Latencies {
    pub delivery: Histogram<u64>,
    pub e2e: Histogram<u64>,
    pub rtt: Histogram<u64>,
    pub ws_rtt: Histogram<u64>,
    pub http: Histogram<u64>,
    pub connect: Histogram<u64>,
    pub first_frame: Histogram<u64>,
    pub reconnect: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            delivery: histogram(),
            e2e: histogram(),
            rtt: histogram(),
            ws_rtt: histogram(),
            http: histogram(),
            connect: histogram(),
            first_frame: histogram(),
            reconnect: histogram(),
        }
    }
}

impl Latencies {
    pub fn get(&self, d: Distribution) -> &Histogram<u64> {
        match d {
            Distribution::Delivery => &self.delivery,
            Distribution::EndToEnd => &self.e2e,
            Distribution::Rtt => &self.rtt,
            Distribution::WsRtt => &self.ws_rtt,
            Distribution::Http => &self.http,
            Distribution::Connect => &self.connect,
            Distribution::FirstFrame => &self.first_frame,
            Distribution::Reconnect => &self.reconnect,
        }
    }

    fn get_mut(&mut self, d: Distribution) -> &mut Histogram<u64> {
        match d {
            Distribution::Delivery => &mut self.delivery,
            Distribution::EndToEnd => &mut self.e2e,
            Distribution::Rtt => &mut self.rtt,
            Distribution::WsRtt => &mut self.ws_rtt,
            Distribution::Http => &mut self.http,
            Distribution::Connect => &mut self.connect,
            Distribution::FirstFrame => &mut self.first_frame,
            Distribution::Reconnect => &mut self.reconnect,
        }
    }

    pub const ALL: [Distribution; 8] = [
        Distribution::Delivery,
        Distribution::EndToEnd,
        Distribution::Rtt,
        Distribution::WsRtt,
        Distribution::Http,
        Distribution::Connect,
        Distribution::FirstFrame,
        Distribution::Reconnect,
    ];

    fn add(&mut self, other: &Latencies) {
        for d in Self::ALL {
            // Same bounds everywhere, so adding cannot fail.
            let _ = self.get_mut(d).add(other.get(d));
        }
    }

    fn reset(&mut self) {
        for d in Self::ALL {
            self.get_mut(d).reset();
        }
    }
}

/// Counts of what happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub frames: u64,
    pub bytes: u64,
    /// Frames missing from seq gaps.
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub connect_attempts: u64,
    pub connected: u64,
    /// Connections that ended before the run did.
    pub disconnects: u64,
    pub reconnect_attempts: u64,
    pub reconnect_successes: u64,
    pub pings_sent: u64,
    pub pongs: u64,
    /// Latencies above [`MAX_MICROS`] (recorded as the maximum) or below zero (clock skew).
    pub clamped: u64,
    /// Errors by kind: `refused`, `handshake_503`, `close_4008`, `timeout`, `invalid_json`, ...
    pub errors: BTreeMap<String, u64>,
    /// The ping/pong exchange with the shortest round trip: (round trip µs, server
    /// clock minus local clock µs). The offset is known to within half that round trip.
    pub best_offset: Option<(u64, i64)>,
}

impl Counters {
    fn add(&mut self, o: &Counters) {
        self.frames += o.frames;
        self.bytes += o.bytes;
        self.lost += o.lost;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
        self.connect_attempts += o.connect_attempts;
        self.connected += o.connected;
        self.disconnects += o.disconnects;
        self.reconnect_attempts += o.reconnect_attempts;
        self.reconnect_successes += o.reconnect_successes;
        self.pings_sent += o.pings_sent;
        self.pongs += o.pongs;
        self.clamped += o.clamped;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        if let Some((rtt, offset)) = o.best_offset {
            self.observe_offset(rtt, offset);
        }
    }

    /// Keeps the clock-offset estimate of the tightest exchange (NTP's rule).
    pub fn observe_offset(&mut self, rtt_us: u64, offset_us: i64) {
        if self.best_offset.is_none_or(|(best, _)| rtt_us < best) {
            self.best_offset = Some((rtt_us, offset_us));
        }
    }

    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// One shard's (or one interval's, or one run's) measurements.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    pub latencies: Latencies,
    pub counters: Counters,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a latency in microseconds; negative values (clock skew) and values over
    /// an hour are clamped and counted rather than dropped.
    pub fn latency(&mut self, d: Distribution, micros: i64) {
        let clamped = micros.clamp(1, MAX_MICROS as i64) as u64;
        if clamped as i64 != micros && micros != 0 {
            self.counters.clamped += 1;
        }
        self.latencies.get_mut(d).saturating_record(clamped);
    }

    /// Records `count` samples of one latency (a bucket from another tool's histogram).
    pub fn latency_n(&mut self, d: Distribution, micros: i64, count: u64) {
        let clamped = micros.clamp(1, MAX_MICROS as i64) as u64;
        self.latencies
            .get_mut(d)
            .saturating_record_n(clamped, count);
    }

    pub fn error(&mut self, kind: &str) {
        match self.counters.errors.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                self.counters.errors.insert(kind.to_owned(), 1);
            }
        }
    }

    /// Adds a whole histogram (e.g. one read back from an interval log).
    pub fn add_histogram(&mut self, d: Distribution, h: &Histogram<u64>) {
        // Histograms from other logs may have other bounds; values beyond ours are
        // clamped by saturating adds rather than refused.
        if self.latencies.get_mut(d).add(h).is_err() {
            for v in h.iter_recorded() {
                self.latencies.get_mut(d).saturating_record_n(
                    v.value_iterated_to().clamp(1, MAX_MICROS),
                    v.count_at_value(),
                );
            }
        }
    }

    pub fn add(&mut self, other: &Recorder) {
        self.latencies.add(&other.latencies);
        self.counters.add(&other.counters);
    }

    /// Moves everything into `into` and starts afresh (keeping the allocations).
    pub fn drain_into(&mut self, into: &mut Recorder) {
        into.add(self);
        self.latencies.reset();
        self.counters = Counters::default();
    }

    /// A percentile in microseconds, or None without samples.
    pub fn quantile(&self, d: Distribution, q: Quantile) -> Option<f64> {
        let h = self.latencies.get(d);
        if h.is_empty() {
            return None;
        }
        Some(match q {
            Quantile::Max => h.max() as f64,
            q => h.value_at_quantile(q.fraction()) as f64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_histogram_with_three_significant_digits() {
        let mut r = Recorder::new();
        for us in 1..=1000 {
            r.latency(Distribution::Delivery, us * 1000);
        }
        let p99 = r.quantile(Distribution::Delivery, Quantile::P99).unwrap();
        assert!((p99 - 990_000.0).abs() / 990_000.0 < 0.001, "{p99}");
        assert_eq!(r.quantile(Distribution::Rtt, Quantile::P99), None);
    }

    #[test]
    fn skew_and_overflow_are_clamped_and_counted() {
        let mut r = Recorder::new();
        r.latency(Distribution::Delivery, -500);
        r.latency(Distribution::Delivery, 10 * MAX_MICROS as i64);
        assert_eq!(r.counters.clamped, 2);
        assert_eq!(r.latencies.delivery.len(), 2);
    }

    #[test]
    fn draining_merges_and_resets() {
        let mut shard = Recorder::new();
        shard.latency(Distribution::Rtt, 1500);
        shard.counters.frames = 3;
        shard.error("refused");
        let mut total = Recorder::new();
        shard.drain_into(&mut total);
        shard.error("refused");
        shard.drain_into(&mut total);
        assert_eq!(total.counters.frames, 3);
        assert_eq!(total.counters.errors["refused"], 2);
        assert_eq!(total.latencies.rtt.len(), 1);
        assert!(shard.latencies.rtt.is_empty());
    }
}
