//! The run's HdrHistogram interval log (`latency.hlog`): one compressed histogram per
//! distribution per second, tagged `delivery`, `rtt`, ... — the standard format the
//! Java HdrHistogram tools read, and what `livegames report merge` combines across
//! machines.

use std::time::{Duration, SystemTime};

use base64::Engine;
use hdrhistogram::Counter;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, Serializer, V2SerializeError, V2Serializer};

use crate::load::measure::recorder::{Distribution, Latencies};

pub struct HdrLog {
    buf: Vec<u8>,
    serializer: DeflateSerializer,
}

impl HdrLog {
    pub fn new(start: SystemTime) -> Self {
        let mut log = HdrLog {
            buf: Vec::new(),
            serializer: DeflateSerializer::default(),
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

/// The `V2DeflateSerializer` format (a histogram's V2 encoding, zlib-compressed, after
/// its cookie and length), byte for byte, with one compressor kept for the whole run.
/// The crate's serializer builds a compressor per histogram: ~300 KiB of hash tables
/// zeroed, and the heap grown and trimmed for them, for every distribution every
/// second - most of the fold's cost and ~1.5 % of a 100 x 10/s run's CPU (`perf`).
pub struct DeflateSerializer {
    v2: V2Serializer,
    plain: Vec<u8>,
    compressed: Vec<u8>,
    compressor: flate2::Compress,
}

/// hdrhistogram's cookie for a compressed V2 histogram (private in the crate).
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;

impl Default for DeflateSerializer {
    fn default() -> Self {
        Self {
            v2: V2Serializer::new(),
            plain: Vec::new(),
            compressed: Vec::new(),
            // zlib framing at the default level, as the crate's serializer writes it.
            compressor: flate2::Compress::new(flate2::Compression::default(), true),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SerializeError {
    #[error("encoding the histogram: {0}")]
    Encode(#[from] V2SerializeError),
    #[error("compressing the histogram: {0}")]
    Compress(#[from] flate2::CompressError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Serializer for DeflateSerializer {
    type SerializeError = SerializeError;

    fn serialize<T: Counter, W: std::io::Write>(
        &mut self,
        h: &Histogram<T>,
        writer: &mut W,
    ) -> Result<usize, SerializeError> {
        self.plain.clear();
        self.v2.serialize(h, &mut self.plain)?;
        self.compressor.reset();
        self.compressed.clear();
        self.compressed.reserve(self.plain.len() / 2 + 64);
        loop {
            let consumed = self.compressor.total_in() as usize;
            let status = self.compressor.compress_vec(
                &self.plain[consumed..],
                &mut self.compressed,
                flate2::FlushCompress::Finish,
            )?;
            if status == flate2::Status::StreamEnd {
                break;
            }
            // Out of room: give it more and go on.
            self.compressed.reserve(self.compressed.capacity().max(64));
        }
        let length = u32::try_from(self.compressed.len()).unwrap_or(u32::MAX);
        writer.write_all(&V2_COMPRESSED_COOKIE.to_be_bytes())?;
        writer.write_all(&length.to_be_bytes())?;
        writer.write_all(&self.compressed)?;
        Ok(self.compressed.len() + 8)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::measure::recorder::Recorder;

    /// The reused compressor writes what the crate's own serializer writes, and goes
    /// on doing so after it has compressed other histograms.
    #[test]
    fn the_reused_compressor_writes_the_crate_s_format_byte_for_byte() {
        let mut ours = DeflateSerializer::default();
        let mut theirs = hdrhistogram::serialization::V2DeflateSerializer::new();
        for n in [0u64, 1, 50, 5_000, 200_000] {
            let mut h = Histogram::<u64>::new(3).unwrap();
            for i in 0..n {
                h.record(1 + (i * 7919) % 3_600_000_000).unwrap();
            }
            let (mut a, mut b) = (Vec::new(), Vec::new());
            ours.serialize(&h, &mut a).unwrap();
            theirs.serialize(&h, &mut b).unwrap();
            assert_eq!(a, b, "{n} samples");
            let back: Histogram<u64> = Deserializer::new().deserialize(&mut a.as_slice()).unwrap();
            assert_eq!(back, h);
        }
    }

    #[test]
    fn intervals_round_trip_with_absolute_times() {
        let start = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
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
