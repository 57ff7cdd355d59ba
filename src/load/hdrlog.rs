//! The run's HdrHistogram interval log (`latency.hlog`): one compressed histogram per
//! distribution per second, tagged `delivery`, `rtt`, ... — the standard format the
//! Java HdrHistogram tools read, and what `livegames report merge` combines across
//! machines.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

use super::recorder::{Distribution, Latencies};

pub struct HdrLog {
    buf: Vec<u8>,
    serializer: V2DeflateSerializer,
}

impl HdrLog {
    pub fn new(start: SystemTime) -> Self {
        let mut log = HdrLog {
            buf: Vec::new(),
            serializer: V2DeflateSerializer::new(),
        };
        // Writing to a Vec cannot fail.
        let _ = IntervalLogWriterBuilder::new()
            .add_comment("livegames load: latency in microseconds; tags delivery, e2e, rtt, ws_rtt, http, connect, first_frame, reconnect")
            .with_start_time(start)
            .with_base_time(start)
            .begin_log_with(&mut log.buf, &mut log.serializer);
        log
    }

    /// Appends one interval: every distribution that has samples, tagged by name.
    pub fn write_interval(&mut self, latencies: &Latencies, offset: Duration, length: Duration) {
        for d in Distribution::ALL {
            let h = latencies.get(d);
            if h.is_empty() {
                continue;
            }
            let tag = Tag::new(d.name());
            if let Ok(mut writer) =
                IntervalLogWriterBuilder::new().begin_log_with(&mut self.buf, &mut self.serializer)
            {
                let _ = writer.write_histogram(h, offset, length, tag);
            }
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// One interval read back from a log.
#[derive(Debug, Clone)]
pub struct Interval {
    pub tag: String,
    /// Start, in seconds since the Unix epoch.
    pub start_s: f64,
    pub length_s: f64,
    pub histogram: Histogram<u64>,
}

#[derive(Debug, thiserror::Error)]
#[error("not a readable HdrHistogram interval log: {0}")]
pub struct ReadError(String);

/// Reads a log written by [`HdrLog`] (or any interval log with a BaseTime).
pub fn read(bytes: &[u8]) -> Result<Vec<Interval>, ReadError> {
    let mut base = 0.0;
    let mut out = Vec::new();
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(bytes) {
        match entry.map_err(|e| ReadError(format!("{e:?}")))? {
            LogEntry::BaseTime(t) => base = t.as_secs_f64(),
            LogEntry::StartTime(t) => {
                if base == 0.0 {
                    base = t.as_secs_f64();
                }
            }
            LogEntry::Interval(i) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(i.encoded_histogram())
                    .map_err(|e| ReadError(e.to_string()))?;
                let histogram: Histogram<u64> = deserializer
                    .deserialize(&mut raw.as_slice())
                    .map_err(|e| ReadError(format!("{e:?}")))?;
                out.push(Interval {
                    tag: i.tag().map(|t| t.as_str().to_owned()).unwrap_or_default(),
                    start_s: base + i.start_timestamp().as_secs_f64(),
                    length_s: i.duration().as_secs_f64(),
                    histogram,
                });
            }
        }
    }
    Ok(out)
}

pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::recorder::Recorder;

    #[test]
    fn intervals_round_trip_with_absolute_times() {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut log = HdrLog::new(start);
        let mut r = Recorder::new();
        r.latency(Distribution::Delivery, 1_500);
        r.latency(Distribution::Rtt, 20_000);
        log.write_interval(&r.latencies, Duration::from_secs(1), Duration::from_secs(1));
        let intervals = read(log.bytes()).unwrap();
        assert_eq!(intervals.len(), 2);
        let delivery = intervals.iter().find(|i| i.tag == "delivery").unwrap();
        assert!((delivery.start_s - 1_700_000_001.0).abs() < 1e-3);
        assert_eq!(delivery.histogram.len(), 1);
        assert!(read(b"Tag=x,1.0,1.0,1.0,@@@not-base64\n").is_err());
    }
}
