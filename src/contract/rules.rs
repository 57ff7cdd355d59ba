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
            // After the largest seq there is no next one: whatever follows is a
            // duplicate or goes backwards (never "in order" by wrapping to 0).
            let next = latest.checked_add(1);
            if next == Some(seq) {
                self.latest = Some(seq);
                SeqEvent::InOrder
            } else if let Some(next) = next.filter(|&next| seq > next) {
                self.latest = Some(seq);
                SeqEvent::Gap {
                    expected: next,
                    got: seq,
                    missing: seq - next,
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

/// What a frame's seq says once server restarts are taken into account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochEvent {
    /// Within one run of the server: as [`SeqTracker`] judges it.
    Seq(SeqEvent),
    /// The server started a new sequence (it restarted): what it sent after the
    /// client's last seq is gone and cannot be counted. The frame is the new run's
    /// first; `why` says how the restart showed.
    Restarted { why: &'static str },
}

/// One connection's view of a stream's seq across server restarts. Within one run of
/// the server (an epoch) the [`SeqTracker`] rules hold and gaps are lost frames. A new
/// epoch starts when the server shows it restarted: a resume refused with
/// `epoch_changed` (contract 1.1.0), a snapshot naming another `epoch` than the one
/// the client knew, a resume refused with
/// `resume_ahead` (the client is ahead of the server), a snapshot whose seq is below
/// one already seen, or, on a resumed connection, a first seq below the resume point
/// (servers without snapshots).
#[derive(Debug, Clone, Default)]
pub struct EpochTracker {
    tracker: SeqTracker,
    /// The seq a resumed connection asked to continue after.
    resumed_after: Option<u64>,
    /// No seq seen yet on this connection.
    awaiting_first: bool,
    /// A refused resume: the next frame with a seq starts the new epoch.
    restart_pending: Option<&'static str>,
    /// The server's epoch as its last snapshot named it (1.1.0 servers).
    epoch: Option<String>,
    /// A restart was seen (or is pending) on this connection: a server restarts at
    /// most once per connection, so the new epoch a snapshot names is not another.
    restart_seen: bool,
}

impl EpochTracker {
    /// A fresh connection.
    pub fn fresh() -> Self {
        Self {
            awaiting_first: true,
            ..Self::default()
        }
    }

    /// A connection resumed after `since`, in `epoch` when the server named one.
    pub fn resumed(since: u64, epoch: Option<String>) -> Self {
        Self {
            tracker: SeqTracker::starting_at(since),
            resumed_after: Some(since),
            awaiting_first: true,
            restart_pending: None,
            epoch,
            restart_seen: false,
        }
    }

    /// The server's epoch, as far as this connection knows it.
    pub fn epoch(&self) -> Option<&str> {
        self.epoch.as_deref()
    }

    /// A snapshot named `epoch` (call before [`observe`](Self::observe) for it). An
    /// epoch other than the known one is a restart, unless a refusal said so already.
    pub fn snapshot_epoch(&mut self, epoch: &str) {
        if self.epoch.as_deref() == Some(epoch) {
            return;
        }
        if self.epoch.is_some() && self.restart_pending.is_none() && !self.restart_seen {
            self.restart_pending = Some("the snapshot names another epoch: the server restarted");
        }
        self.epoch = Some(epoch.to_owned());
    }

    /// An `error` frame refused the resume with `code`. `resume_ahead` means the
    /// server is behind the client: it restarted. (`resume_gap` is not a restart: the
    /// seqs it skips are counted as lost from the snapshot that follows.)
    pub fn refused(&mut self, code: &str) {
        match code {
            "resume_ahead" => {
                self.restart_pending =
                    Some("the server refused to resume (resume_ahead): it is behind the client")
            }
            "epoch_changed" => {
                self.restart_pending =
                    Some("the server refused to resume (epoch_changed): it restarted")
            }
            _ => {}
        }
    }

    pub fn observe(&mut self, kind: FrameType, seq: u64) -> EpochEvent {
        let first = std::mem::replace(&mut self.awaiting_first, false);
        let went_back = self.tracker.latest().is_some_and(|latest| seq < latest);
        let why = self.restart_pending.take().or(if !went_back {
            None
        } else if kind == FrameType::Snapshot {
            Some("a snapshot's seq went back")
        } else if first && self.resumed_after.is_some() {
            Some("the first seq after reconnecting went back")
        } else {
            None
        });
        match why {
            Some(why) => {
                self.restart_seen = true;
                self.tracker = SeqTracker::starting_at(seq);
                EpochEvent::Restarted { why }
            }
            None => EpochEvent::Seq(self.tracker.observe(kind, seq)),
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
    fn nothing_follows_the_largest_seq_in_order() {
        let mut t = SeqTracker::starting_at(u64::MAX - 1);
        assert_eq!(t.observe(Update, u64::MAX), SeqEvent::InOrder);
        assert_eq!(
            t.observe(Update, 0),
            SeqEvent::Backwards {
                latest: u64::MAX,
                got: 0
            }
        );
        assert_eq!(
            t.observe(Update, u64::MAX),
            SeqEvent::Duplicate { seq: u64::MAX }
        );
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

    #[test]
    fn a_restart_starts_a_new_epoch_and_gaps_after_it_count() {
        use EpochEvent::*;
        // A server that restarts, answers the resume with a snapshot at 0 and loses 10..19.
        let mut t = EpochTracker::resumed(42, None);
        assert!(matches!(t.observe(Snapshot, 0), Restarted { .. }));
        for seq in 1..10 {
            assert_eq!(t.observe(Update, seq), Seq(SeqEvent::InOrder));
        }
        assert_eq!(
            t.observe(Update, 20),
            Seq(SeqEvent::Gap {
                expected: 10,
                got: 20,
                missing: 10
            })
        );
        // Our server: resume_ahead, then a snapshot (whatever its seq); its new epoch
        // is the same restart, not a second one.
        let mut ours = EpochTracker::resumed(500, Some("old".into()));
        ours.refused("resume_ahead");
        assert!(matches!(ours.observe(Error, 0), Restarted { .. }));
        ours.snapshot_epoch("new");
        assert_eq!(ours.observe(Snapshot, 0), Seq(SeqEvent::InOrder));
        let mut ours = EpochTracker::resumed(500, None);
        ours.refused("resume_ahead");
        assert!(matches!(ours.observe(Snapshot, 900), Restarted { .. }));
        assert_eq!(ours.observe(Update, 901), Seq(SeqEvent::InOrder));
        // resume_gap is not a restart: the snapshot's jump is loss.
        let mut gap = EpochTracker::resumed(10, None);
        gap.refused("resume_gap");
        assert_eq!(
            gap.observe(Snapshot, 15),
            Seq(SeqEvent::Gap {
                expected: 10,
                got: 15,
                missing: 5
            })
        );
        // A server without snapshots: its first seq after the reconnect went back.
        let mut plain = EpochTracker::resumed(30, None);
        assert!(matches!(plain.observe(Update, 1), Restarted { .. }));
        assert_eq!(plain.observe(Update, 2), Seq(SeqEvent::InOrder));
        // Later, a backwards frame is reordering, not a restart.
        assert!(matches!(
            plain.observe(Update, 1),
            Seq(SeqEvent::Backwards { .. })
        ));
    }

    #[test]
    fn epochs_name_restarts_that_seqs_alone_would_hide() {
        use EpochEvent::*;
        // 1.1.0: the server refuses the old epoch, then snapshots in its new one: one
        // restart, even though the new run's seq (900) is past the old one (500).
        let mut refused = EpochTracker::resumed(500, Some("old".into()));
        refused.refused("epoch_changed");
        assert!(matches!(refused.observe(Error, 900), Restarted { .. }));
        refused.snapshot_epoch("new");
        assert_eq!(refused.observe(Snapshot, 900), Seq(SeqEvent::InOrder));
        assert_eq!(refused.epoch(), Some("new"));
        assert_eq!(refused.observe(Update, 901), Seq(SeqEvent::InOrder));
        // A snapshot in another epoch without a refusal (a server that ignores the
        // epoch parameter) is a restart too; the same epoch is not.
        let mut silent = EpochTracker::resumed(500, Some("old".into()));
        silent.snapshot_epoch("new");
        assert!(matches!(silent.observe(Snapshot, 900), Restarted { .. }));
        let mut same = EpochTracker::fresh();
        same.snapshot_epoch("e");
        assert_eq!(same.observe(Snapshot, 7), Seq(SeqEvent::InOrder));
        same.snapshot_epoch("e");
        assert_eq!(same.observe(Snapshot, 7), Seq(SeqEvent::InOrder));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn kind() -> impl Strategy<Value = FrameType> {
            prop::sample::select(vec![
                Snapshot, Update, Status, Final, Heartbeat, Pong, Error,
            ])
        }

        proptest! {
            /// Any seqs, near 0, near the largest or anywhere: never a panic; the
            /// tracker only moves forward; a data frame is in order only when it is
            /// exactly the one after the latest.
            #[test]
            fn any_seqs_are_judged_without_wrapping(
                frames in proptest::collection::vec(
                    (kind(), prop_oneof![0u64..8, (u64::MAX - 8)..=u64::MAX, any::<u64>()]),
                    1..40,
                )
            ) {
                let mut tracker = SeqTracker::new();
                for (kind, seq) in frames {
                    let before = tracker.latest();
                    let event = tracker.observe(kind, seq);
                    if let (Some(latest), true) = (before, kind.is_data_bearing()) {
                        let next = latest.checked_add(1);
                        prop_assert_eq!(event == SeqEvent::InOrder, next == Some(seq));
                    }
                    if let (Some(before), Some(after)) = (before, tracker.latest()) {
                        prop_assert!(after >= before);
                    }
                }
            }
        }
    }
}
