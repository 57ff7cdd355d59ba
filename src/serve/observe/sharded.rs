//! Metrics for the per-client hot path. Every client's task adds to the same few
//! counters and one latency histogram for every frame it writes: with a plain
//! atomic (prometheus-client's `Counter`) or a mutex (its `Histogram`), the two
//! runtime threads pass the same cache lines back and forth tens of thousands of
//! times a second. Here each thread adds to its own shard, on cache lines of its
//! own, without a lock; a scrape adds the shards up. What `/metrics` shows is the
//! same text either way.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// Shards per metric: more than the runtime's threads, so threads rarely share one.
const SHARDS: usize = 16;
/// Most bucket bounds a sharded histogram takes (and +Inf besides).
const MAX_BOUNDS: usize = 23;

/// This thread's shard, the same for every sharded metric.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

/// One thread's share of a counter, alone on its cache lines.
#[repr(align(128))]
#[derive(Default)]
struct CounterShard(AtomicU64);

/// A monotonic counter (`_total`), as prometheus-client's `Counter<u64>` shows it.
/// Clones share it, as that one's do.
#[derive(Clone)]
pub struct ShardedCounter {
    shards: Arc<[CounterShard; SHARDS]>,
}

impl Default for ShardedCounter {
    fn default() -> Self {
        Self {
            shards: Arc::new(std::array::from_fn(|_| CounterShard::default())),
        }
    }
}

impl std::fmt::Debug for ShardedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ShardedCounter({})", self.get())
    }
}

impl ShardedCounter {
    pub fn inc_by(&self, v: u64) {
        self.shards[shard()].0.fetch_add(v, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}

impl EncodeMetric for ShardedCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(&self.get(), None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// One thread's share of a histogram: a count per bucket (the last is +Inf), the
/// number of observations and their sum in nanoseconds (an integer adds without a
/// compare-and-swap loop; latencies are never negative).
#[repr(align(128))]
struct HistogramShard {
    buckets: [AtomicU64; MAX_BOUNDS + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// A histogram of durations in seconds, as prometheus-client's `Histogram` with the
/// same bucket bounds shows it. Clones share it.
#[derive(Clone)]
pub struct ShardedHistogram {
    bounds: Arc<[f64]>,
    shards: Arc<[HistogramShard]>,
}

impl std::fmt::Debug for ShardedHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ShardedHistogram({} bounds)", self.bounds.len())
    }
}

impl ShardedHistogram {
    /// Bucket upper bounds in seconds, ascending; at most 23 of them.
    pub fn new(bounds: impl IntoIterator<Item = f64>) -> Self {
        let bounds: Arc<[f64]> = bounds.into_iter().collect();
        assert!(
            bounds.len() <= MAX_BOUNDS,
            "at most {MAX_BOUNDS} bucket bounds"
        );
        let shards = (0..SHARDS)
            .map(|_| HistogramShard {
                buckets: std::array::from_fn(|_| AtomicU64::new(0)),
                count: AtomicU64::new(0),
                sum_nanos: AtomicU64::new(0),
            })
            .collect();
        Self { bounds, shards }
    }

    pub fn observe(&self, seconds: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(self.bounds.len());
        let shard = &self.shards[shard()];
        shard.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        shard.count.fetch_add(1, Ordering::Relaxed);
        let nanos = (seconds.max(0.0) * 1e9) as u64;
        shard.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Sum in seconds, count, and each bucket's own count with its upper bound.
    fn totals(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .map(|bound| (bound, 0))
            .collect();
        let (mut count, mut nanos) = (0, 0u64);
        for shard in self.shards.iter() {
            for (total, b) in buckets.iter_mut().zip(&shard.buckets) {
                total.1 += b.load(Ordering::Relaxed);
            }
            count += shard.count.load(Ordering::Relaxed);
            nanos = nanos.wrapping_add(shard.sum_nanos.load(Ordering::Relaxed));
        }
        (nanos as f64 / 1e9, count, buckets)
    }
}

impl EncodeMetric for ShardedHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.totals();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
    use prometheus_client::registry::Registry;

    fn text(register: impl FnOnce(&mut Registry)) -> String {
        let mut registry = Registry::default();
        register(&mut registry);
        let mut out = String::new();
        encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn scrapes_read_exactly_as_prometheus_clients_own_metrics() {
        // Values whose sums are exact in nanoseconds, observed from several threads.
        let values = [0.000_01, 0.000_05, 0.000_2, 0.003, 0.04, 0.5, 2.0, 100.0];
        let ours = ShardedHistogram::new(exponential_buckets(0.000_05, 2.0, 16));
        let counter = ShardedCounter::default();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for v in values {
                        ours.observe(v);
                        counter.inc_by(3);
                    }
                });
            }
        });
        let theirs = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        let their_counter: Counter = Counter::default();
        for _ in 0..4 {
            for v in values {
                theirs.observe(v);
                their_counter.inc_by(3);
            }
        }
        let ours = text(|r| {
            r.register("latency_seconds", "help", ours.clone());
            r.register("frames", "help", counter.clone());
        });
        let theirs = text(|r| {
            r.register("latency_seconds", "help", theirs);
            r.register("frames", "help", their_counter);
        });
        // The sums agree to the nanosecond (ours adds integers, theirs floats), the
        // rest to the byte.
        let sum_of = |text: &str| -> f64 {
            let line = text
                .lines()
                .find(|l| l.starts_with("latency_seconds_sum "))
                .unwrap();
            line[20..].parse().unwrap()
        };
        assert!(
            (sum_of(&ours) - sum_of(&theirs)).abs() < 1e-9,
            "{ours}\n{theirs}"
        );
        let without_sum = |text: &str| -> String {
            text.lines()
                .filter(|l| !l.starts_with("latency_seconds_sum "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(without_sum(&ours), without_sum(&theirs));
        assert!(ours.contains("frames_total 96"), "{ours}");
        assert!(ours.contains("latency_seconds_count 32"), "{ours}");
    }

    #[test]
    fn a_value_on_a_bound_counts_in_that_bucket_and_beyond_the_last_in_inf() {
        let h = ShardedHistogram::new([1.0, 2.0]);
        h.observe(1.0);
        h.observe(1.5);
        h.observe(9.0);
        h.observe(f64::NAN);
        let (_, count, buckets) = h.totals();
        assert_eq!(count, 4);
        assert_eq!(buckets, [(1.0, 1), (2.0, 1), (f64::INFINITY, 2)]);
    }
}
