//! Stream invariants as pure functions and state machines: fed frames (and the time,
//! as a parameter), they report what broke.

use std::time::Duration;

use super::frame::FrameType;

/// What a frame's `seq` says about the stream so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqEvent {
    /// As expected.
    InOrder,
    /// A data-bearing frame skipped `missing` seqs (frames were lost).
    Gap {
        expected: u64,
        got: u64,
        missing: u64,
    },
    /// A data-bearing frame repeated a seq already seen.
    Duplicate { seq: u64 },
    /// A frame went back to a seq below one already seen.
    Backwards { latest: u64, got: u64 },
}

/// Tracks one stream's `seq`: data-bearing frames must step by exactly one; every
/// other frame must repeat the latest.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    latest: Option<u64>,
}

impl SeqTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the tracker at `seq`, e.g. the `since` a resumed stream asked for.
    pub fn starting_at(seq: u64) -> Self {
        Self { latest: Some(seq) }
    }

    pub fn latest(&self) -> Option<u64> {
        self.latest
    }

    pub fn observe(&mut self, kind: FrameType, seq: u64) -> SeqEvent {
        let Some(latest) = self.latest else {
            self.latest = Some(seq);
            return SeqEvent::InOrder;
        };
        if kind.is_data_bearing() {
            if seq == latest + 1 {
                self.latest = Some(seq);
                SeqEvent::InOrder
            } else if seq > latest + 1 {
                self.latest = Some(seq);
                SeqEvent::Gap {
                    expected: latest + 1,
                    got: seq,
                    missing: seq - latest - 1,
                }
            } else if seq == latest {
                SeqEvent::Duplicate { seq }
            } else {
                SeqEvent::Backwards { latest, got: seq }
            }
        } else if seq < latest {
            SeqEvent::Backwards { latest, got: seq }
        } else {
            // A snapshot/heartbeat may show a higher seq only if data frames were lost.
            if seq > latest {
                let event = SeqEvent::Gap {
                    expected: latest,
                    got: seq,
                    missing: seq - latest,
                };
                self.latest = Some(seq);
                return event;
            }
            SeqEvent::InOrder
        }
    }
}

/// The longest silence a stream may have: the heartbeat interval plus slack for
/// timer granularity and the network.
pub fn silence_limit(heartbeat: Duration) -> Duration {
    heartbeat + (heartbeat / 2).max(Duration::from_secs(1))
}

/// Why a frame's `ts` (received at local time `at_us`, both Unix µs) breaks the rule
/// that it is Unix microseconds within `max_skew` of the receiver's clock: the
/// expectation and what came, naming the unit it looks like when it is another.
pub fn ts_problem(ts: i64, at_us: i64, max_skew: Duration) -> Option<(String, String)> {
    let allowed = max_skew.as_micros() as i64;
    let distance = |t: i64| at_us.saturating_sub(t).saturating_abs();
    if distance(ts) <= allowed {
        return None;
    }
    let expected = format!(
        "Unix microseconds within {} of the local clock ({at_us})",
        humantime::format_duration(max_skew)
    );
    let looks_like = [
        (ts.saturating_mul(1000), "milliseconds"),
        (ts.saturating_mul(1_000_000), "seconds"),
        (ts / 1000, "nanoseconds"),
    ]
    .into_iter()
    .find(|(scaled, _)| distance(*scaled) <= allowed.max(60_000_000))
    .map(|(_, unit)| unit);
    let off_us = at_us.saturating_sub(ts);
    let off = if off_us.abs() < 1_000_000 {
        format!("{:.3} ms", off_us.abs() as f64 / 1e3)
    } else {
        format!("{:.3} s", off_us.abs() as f64 / 1e6)
    };
    let actual = match looks_like {
        Some(unit) => format!("{ts}: this looks like Unix {unit}, not microseconds"),
        None if off_us > 0 => format!("{ts}: {off} behind the local clock"),
        None => format!("{ts}: {off} ahead of the local clock"),
    };
    Some((expected, actual))
}

#[cfg(test)]
mod tests {
    use super::*;
    use FrameType::*;

    #[test]
    fn steps_of_one_are_in_order_and_heartbeats_repeat() {
        let mut t = SeqTracker::new();
        assert_eq!(t.observe(Snapshot, 5), SeqEvent::InOrder);
        assert_eq!(t.observe(Update, 6), SeqEvent::InOrder);
        assert_eq!(t.observe(Heartbeat, 6), SeqEvent::InOrder);
        assert_eq!(t.observe(Status, 7), SeqEvent::InOrder);
    }

    #[test]
    fn gaps_duplicates_and_backwards_are_reported() {
        let mut t = SeqTracker::starting_at(10);
        assert_eq!(
            t.observe(Update, 13),
            SeqEvent::Gap {
                expected: 11,
                got: 13,
                missing: 2
            }
        );
        assert_eq!(t.observe(Update, 13), SeqEvent::Duplicate { seq: 13 });
        assert_eq!(
            t.observe(Final, 12),
            SeqEvent::Backwards {
                latest: 13,
                got: 12
            }
        );
        assert_eq!(
            t.observe(Heartbeat, 9),
            SeqEvent::Backwards { latest: 13, got: 9 }
        );
        assert_eq!(
            t.observe(Heartbeat, 15),
            SeqEvent::Gap {
                expected: 13,
                got: 15,
                missing: 2
            }
        );
    }

    const NOW: i64 = 1_795_000_000_000_000;

    #[test]
    fn ts_units_are_recognised() {
        let skew = Duration::from_secs(2);
        assert_eq!(ts_problem(NOW - 1_000_000, NOW, skew), None);
        let (_, ms) = ts_problem(NOW / 1000, NOW, skew).unwrap();
        assert!(ms.contains("milliseconds"), "{ms}");
        let (_, s) = ts_problem(NOW / 1_000_000, NOW, skew).unwrap();
        assert!(s.contains("seconds"), "{s}");
        let (_, ns) = ts_problem(NOW * 1000, NOW, skew).unwrap();
        assert!(ns.contains("nanoseconds"), "{ns}");
        let (expected, behind) = ts_problem(NOW - 10_000_000, NOW, skew).unwrap();
        assert!(behind.contains("10.000 s behind"), "{behind}");
        assert!(expected.contains("2s"), "{expected}");
    }
}
