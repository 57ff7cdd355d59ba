//! Stream invariants as pure state machines: fed frames, they report what broke.

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
}
