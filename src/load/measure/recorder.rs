//! What a run measures: HdrHistograms (microseconds, 3 significant digits), one per
//! [`Distribution`], and [`Counters`]. Connections record into one of a few shards (a
//! short uncontended lock per frame); once a second the collector folds every shard
//! into the interval and run totals and resets it, so memory does not grow with
//! connections or time.
//!
//! To add a distribution: 1. add a [`Distribution`] variant, list it in
//! [`Distribution::ALL`] and name it in [`Distribution::name`] (the report key and
//! the interval-log tag); 2. record into it where it is measured; 3. give it a budget
//! prefix in `plan::budget::Metric::parse`.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::compression::CompressionCounts;
use super::unreadable::{MAX_EXAMPLES, Unreadable, example, looks_like};

/// Highest latency recorded: an hour. Larger values are clamped and counted.
pub const MAX_MICROS: u64 = 3_600_000_000;
/// HdrHistogram precision: values are kept to 3 significant digits (0.1 %).
const SIGNIFICANT_DIGITS: u8 = 3;

/// Which latency distribution a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Distribution {
    /// Receive time minus the frame's `ts`: server-pushed frames.
    Delivery,
    /// Receive time minus the upstream observation time (`data.observed_at`).
    EndToEnd,
    /// Application ping to pong, from the scheduled send time.
    Rtt,
    /// WebSocket protocol Ping to Pong (any compliant server answers these).
    WsRtt,
    /// HTTP request to response (`load --http`).
    Http,
    /// TCP + TLS + WebSocket handshake.
    Connect,
    /// Connection open to first frame.
    FirstFrame,
    /// Disconnect to the first frame of the resumed stream.
    Reconnect,
}

impl Distribution {
    /// Every distribution, in report order; `d as usize` indexes this list.
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

    /// The key in `report.json` and the tag in `latency.hlog`.
    pub fn name(self) -> &'static str {
        match self {
            Distribution::Delivery => "delivery",
            Distribution::EndToEnd => "e2e",
            Distribution::Rtt => "rtt",
            Distribution::WsRtt => "ws_rtt",
            Distribution::Http => "http",
            Distribution::Connect => "connect",
            Distribution::FirstFrame => "first_frame",
            Distribution::Reconnect => "reconnect",
        }
    }

    pub fn from_name(name: &str) -> Option<Distribution> {
        Distribution::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// A percentile of a latency distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantile {
    P50,
    P90,
    P95,
    P99,
    P999,
    Max,
}

impl Quantile {
    pub fn parse(s: &str) -> Option<Quantile> {
        Some(match s {
            "p50" => Quantile::P50,
            "p90" => Quantile::P90,
            "p95" => Quantile::P95,
            "p99" => Quantile::P99,
            "p999" | "p99.9" => Quantile::P999,
            "max" => Quantile::Max,
            _ => return None,
        })
    }

    pub fn fraction(self) -> f64 {
        match self {
            Quantile::P50 => 0.50,
            Quantile::P90 => 0.90,
            Quantile::P95 => 0.95,
            Quantile::P99 => 0.99,
            Quantile::P999 => 0.999,
            Quantile::Max => 1.0,
        }
    }
}

/// A histogram from 1 µs that grows to the largest value it has recorded (values are
/// clamped to [`MAX_MICROS`] before they get here). Fixed at an hour, each would be
/// 190 KiB, zeroed by every shard every second, whatever the run measured. Growing,
/// one whose latencies stay under 2 ms is 16 KiB; the buckets, and so every
/// percentile, are the same.
fn histogram() -> Histogram<u64> {
    // The precision is a constant that the crate accepts.
    Histogram::new(SIGNIFICANT_DIGITS).expect("valid histogram precision")
}

/// The latency distributions of a run: one histogram per [`Distribution`], each
/// allocated on its first sample and grown to its largest value. A run keeps one set
/// per recorder shard plus the interval and the totals: distributions a run never
/// records (HTTP in a WebSocket run, application RTT without `--send-rate`) cost
/// nothing.
#[derive(Debug, Clone, Default)]
pub struct Latencies([Option<Box<Histogram<u64>>>; Distribution::ALL.len()]);

/// What an unrecorded distribution reads as.
static EMPTY: std::sync::LazyLock<Histogram<u64>> = std::sync::LazyLock::new(histogram);

impl Latencies {
    pub fn get(&self, d: Distribution) -> &Histogram<u64> {
        self.0[d as usize].as_deref().unwrap_or(&EMPTY)
    }

    fn get_mut(&mut self, d: Distribution) -> &mut Histogram<u64> {
        self.0[d as usize].get_or_insert_with(|| Box::new(histogram()))
    }

    fn add(&mut self, other: &Latencies) {
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            if let Some(theirs) = theirs.as_deref().filter(|h| !h.is_empty()) {
                // Same bounds everywhere, so adding cannot fail.
                let _ = mine
                    .get_or_insert_with(|| Box::new(histogram()))
                    .add(theirs);
            }
        }
    }

    /// Empties every histogram, keeping what was allocated for the next interval.
    fn reset(&mut self) {
        self.0.iter_mut().flatten().for_each(|h| h.reset());
    }

    /// A percentile in microseconds, or None without samples.
    pub fn quantile(&self, d: Distribution, q: Quantile) -> Option<f64> {
        let h = self.get(d);
        if h.is_empty() {
            return None;
        }
        Some(match q {
            Quantile::Max => h.max() as f64,
            q => h.value_at_quantile(q.fraction()) as f64,
        })
    }
}

/// Counts of what happened. They are the report's totals as they are (`report.json`
/// `totals`), and `report merge` reads them back from there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub frames: u64,
    pub bytes: u64,
    /// Frames missing from seq gaps within one server run. None (`null`): no frame's
    /// seq was checked, so nothing is known about loss.
    pub lost: Option<u64>,
    pub duplicates: Option<u64>,
    pub reordered: Option<u64>,
    /// Times a connection saw the server start a new sequence (a restart).
    #[serde(default)]
    pub restarts: u64,
    /// Resumes a restarted server could not honour: what it had sent after the
    /// client's last seq is gone, uncounted. Loss budgets fail while this is above 0.
    #[serde(default)]
    pub unrecoverable: u64,
    /// The first few of them, named (connection, seq, reason).
    #[serde(default)]
    pub unrecoverable_examples: Vec<String>,
    pub connect_attempts: u64,
    pub connected: u64,
    /// Virtual users that connected at least once.
    #[serde(default)]
    pub users_connected: u64,
    /// Connections that ended before the run did.
    pub disconnects: u64,
    /// Users whose connection ended before the run did and who did not get one
    /// back before it ended (churn excepted).
    #[serde(default)]
    pub users_dropped: u64,
    /// Those users by why their last connection ended (`close_1011`, `reset`, ...).
    #[serde(default)]
    pub dropped_by: BTreeMap<String, u64>,
    /// Users still within their reconnect window when the run ended: their last
    /// loss is judged neither way.
    #[serde(default)]
    pub reconnects_pending: u64,
    pub reconnect_attempts: u64,
    pub reconnect_successes: u64,
    pub pings_sent: u64,
    pub pongs: u64,
    /// Latencies above [`MAX_MICROS`] (recorded as the maximum) or below zero (clock skew).
    #[serde(rename = "clamped_latencies")]
    pub clamped: u64,
    /// Errors by kind: `refused`, `handshake_503`, `close_4008`, `timeout`, ...
    pub errors: BTreeMap<String, u64>,
    /// What the first error of each kind said, in full (the server's body on a refused
    /// handshake, a close's reason, "closed without a close frame").
    #[serde(default)]
    pub error_examples: BTreeMap<String, String>,
    /// Frames received as binary (counted in `frames` and `bytes` too).
    #[serde(default)]
    pub binary_frames: u64,
    /// Frames that could not be read as the shape the run expects, by kind
    /// ([`Unreadable`]): counted in `frames`, measuring nothing.
    #[serde(default)]
    pub unreadable: BTreeMap<String, u64>,
    /// The first few unreadable frames, shown (`not_json: \`42["tick"…\``).
    #[serde(default)]
    pub unreadable_examples: Vec<String>,
    /// What the first unreadable frame with a known look looked like (socket.io, MQTT…).
    #[serde(default)]
    pub unreadable_looks_like: Option<String>,
    /// What permessage-deflate came to, on a run that offered it (`--compress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<CompressionCounts>,
    /// The ping/pong exchange with the shortest round trip: (round trip µs, server
    /// clock minus local clock µs). The offset is known to within half that round trip.
    #[serde(skip)]
    pub best_offset: Option<(u64, i64)>,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.frames += o.frames;
        self.bytes += o.bytes;
        add_checked(&mut self.lost, o.lost);
        add_checked(&mut self.duplicates, o.duplicates);
        add_checked(&mut self.reordered, o.reordered);
        self.restarts += o.restarts;
        self.unrecoverable += o.unrecoverable;
        for example in &o.unrecoverable_examples {
            self.name_unrecoverable(example);
        }
        self.connect_attempts += o.connect_attempts;
        self.connected += o.connected;
        self.users_connected += o.users_connected;
        self.disconnects += o.disconnects;
        self.users_dropped += o.users_dropped;
        self.reconnects_pending += o.reconnects_pending;
        for (k, v) in &o.dropped_by {
            *self.dropped_by.entry(k.clone()).or_default() += v;
        }
        self.reconnect_attempts += o.reconnect_attempts;
        self.reconnect_successes += o.reconnect_successes;
        self.pings_sent += o.pings_sent;
        self.pongs += o.pongs;
        self.clamped += o.clamped;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.error_examples {
            self.error_examples
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        self.binary_frames += o.binary_frames;
        for (k, v) in &o.unreadable {
            *self.unreadable.entry(k.clone()).or_default() += v;
        }
        for example in &o.unreadable_examples {
            if self.unreadable_examples.len() < MAX_EXAMPLES {
                self.unreadable_examples.push(example.clone());
            }
        }
        if self.unreadable_looks_like.is_none() {
            self.unreadable_looks_like = o.unreadable_looks_like.clone();
        }
        if let Some((rtt, offset)) = o.best_offset {
            self.observe_offset(rtt, offset);
        }
        if let Some(theirs) = &o.compression {
            self.compression
                .get_or_insert_with(Default::default)
                .add(theirs);
        }
    }

    /// A connection that offered permessage-deflate opened: whether the server agreed.
    pub fn compression_agreed(&mut self, offered: &str, agreed: Option<crate::wire::Agreed>) {
        let c = self.compression.get_or_insert_with(|| CompressionCounts {
            offered: offered.to_owned(),
            ..CompressionCounts::default()
        });
        match agreed {
            Some(agreed) => {
                c.agreed_conns += 1;
                if c.agreed.is_none() {
                    c.agreed = Some(agreed.header());
                }
            }
            None => c.declined_conns += 1,
        }
    }

    /// A frame-layer socket closed: what crossed its wire.
    pub fn wire_counted(&mut self, stats: crate::wire::WireStats) {
        let c = self.compression.get_or_insert_with(Default::default);
        c.wire_bytes += stats.bytes_read;
        c.message_bytes += stats.message_bytes_read;
        c.inflated += stats.inflated;
        c.inflate_micros += stats.inflate_nanos / 1000;
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

    pub fn unreadable_total(&self) -> u64 {
        self.unreadable.values().sum()
    }

    /// A frame that could not be read: counted by kind, the first few shown.
    pub fn unreadable_frame(&mut self, kind: Unreadable, frame: &[u8]) {
        match self.unreadable.get_mut(kind.as_str()) {
            Some(n) => *n += 1,
            None => {
                self.unreadable.insert(kind.as_str().to_owned(), 1);
            }
        }
        // Only the first few are looked at: a storm of them costs a count each.
        if self.unreadable_examples.len() < MAX_EXAMPLES {
            self.unreadable_examples
                .push(format!("{}: {}", kind.as_str(), example(kind, frame)));
            if self.unreadable_looks_like.is_none() {
                self.unreadable_looks_like = looks_like(frame).map(str::to_owned);
            }
        }
    }

    /// A frame's seq was checked: loss and order are measured from now on.
    pub fn seq_checked(&mut self) {
        self.lost.get_or_insert(0);
        self.duplicates.get_or_insert(0);
        self.reordered.get_or_insert(0);
    }

    /// A resume a restarted server could not honour, named in the report (the first
    /// [`MAX_UNRECOVERABLE_NAMED`]).
    pub fn name_unrecoverable(&mut self, what: &str) {
        if self.unrecoverable_examples.len() < MAX_UNRECOVERABLE_NAMED {
            self.unrecoverable_examples.push(what.to_owned());
        }
    }
}

/// Records `count` samples of `micros`, growing the histogram to hold it (the
/// saturating record would clamp to its current top instead).
fn record_n(h: &mut Histogram<u64>, micros: u64, count: u64) {
    if h.record_n(micros, count).is_err() {
        h.saturating_record_n(micros, count);
    }
}

/// Bytes of an error's example kept.
const MAX_ERROR_EXAMPLE: usize = 300;

/// Unrecoverable resumes named in a report; the rest are counted.
pub const MAX_UNRECOVERABLE_NAMED: usize = 20;

/// Adds counts that may not have been measured: unknown plus unknown stays unknown.
fn add_checked(into: &mut Option<u64>, other: Option<u64>) {
    if let Some(n) = other {
        *into.get_or_insert(0) += n;
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
        record_n(self.latencies.get_mut(d), clamped, 1);
    }

    /// Records `count` samples of one latency (a bucket from another tool's histogram).
    pub fn latency_n(&mut self, d: Distribution, micros: i64, count: u64) {
        let clamped = micros.clamp(1, MAX_MICROS as i64) as u64;
        record_n(self.latencies.get_mut(d), clamped, count);
    }

    pub fn error(&mut self, kind: &str) {
        match self.counters.errors.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                self.counters.errors.insert(kind.to_owned(), 1);
            }
        }
    }

    /// An error, and what it said when it is the first of its kind.
    pub fn error_saying(&mut self, kind: &str, said: &str) {
        self.error(kind);
        if !self.counters.error_examples.contains_key(kind) {
            let said = crate::text::cut(said, MAX_ERROR_EXAMPLE);
            self.counters.error_examples.insert(kind.to_owned(), said);
        }
    }

    /// Adds a whole histogram (e.g. one read back from an interval log).
    pub fn add_histogram(&mut self, d: Distribution, h: &Histogram<u64>) {
        // Histograms from other logs may have other bounds; values beyond ours are
        // clamped by saturating adds rather than refused.
        if self.latencies.get_mut(d).add(h).is_err() {
            for v in h.iter_recorded() {
                record_n(
                    self.latencies.get_mut(d),
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
        self.latencies.quantile(d, q)
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
    fn histograms_grow_to_their_largest_value_and_keep_three_digits() {
        let mut r = Recorder::new();
        r.latency(Distribution::Delivery, 1_500);
        let small = r.latencies.get(Distribution::Delivery).distinct_values();
        r.latency(Distribution::Delivery, MAX_MICROS as i64);
        let h = r.latencies.get(Distribution::Delivery);
        assert!(
            small * 8 < h.distinct_values(),
            "{small} buckets then {}",
            h.distinct_values()
        );
        let hour = h.value_at_quantile(1.0) as f64;
        assert!(
            (hour - MAX_MICROS as f64).abs() / (MAX_MICROS as f64) < 0.001,
            "{hour}"
        );
        assert_eq!(h.value_at_quantile(0.5), 1_500);
    }

    #[test]
    fn skew_and_overflow_are_clamped_and_counted() {
        let mut r = Recorder::new();
        r.latency(Distribution::Delivery, -500);
        r.latency(Distribution::Delivery, 10 * MAX_MICROS as i64);
        assert_eq!(r.counters.clamped, 2);
        assert_eq!(r.latencies.get(Distribution::Delivery).len(), 2);
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
        assert_eq!(total.latencies.get(Distribution::Rtt).len(), 1);
        assert!(shard.latencies.get(Distribution::Rtt).is_empty());
    }

    #[test]
    fn each_distribution_has_its_own_slot_and_name() {
        for (i, d) in Distribution::ALL.into_iter().enumerate() {
            assert_eq!(d as usize, i, "ALL is in declaration order");
            assert_eq!(Distribution::from_name(d.name()), Some(d));
        }
        let mut r = Recorder::new();
        r.latency(Distribution::Reconnect, 7);
        assert_eq!(r.latencies.get(Distribution::Reconnect).len(), 1);
        assert!(r.latencies.get(Distribution::Delivery).is_empty());
    }
}
