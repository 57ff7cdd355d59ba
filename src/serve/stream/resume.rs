//! Joining a game's stream: a snapshot, or a resume after `?since=` that replays
//! exactly the frames missed, atomically with publishing so nothing falls between
//! the replay and the live frames; or an error frame that says why it cannot.

use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::hub::{ChannelState, GameChannel};
use super::outgoing::Outgoing;
use crate::contract::{ErrorCode, Frame, FrameType, SnapshotBody, UnixMicros};

/// How a resume request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// No `since`: a snapshot.
    Fresh,
    /// Every frame after `since` is replayed.
    Complete { replayed: usize },
    /// Frames after `since` up to `first_retained - 1` were dropped from history.
    Gap {
        first_retained: u64,
        replayed: usize,
    },
    /// `since` is beyond the latest seq.
    Ahead,
    /// `since` belongs to another run of the server (1.1.0 `epoch`).
    OtherEpoch,
}

/// Where a client asks to resume: after `since`, in `epoch` if it knows one.
#[derive(Debug, Clone, Copy)]
pub struct ResumeFrom<'a> {
    pub since: u64,
    pub epoch: Option<&'a str>,
}

/// A new subscriber: what to send before live frames, and the live receiver.
pub struct Subscription {
    /// Replayed frames, error frames and the snapshot, in order.
    pub preamble: Vec<Utf8Bytes>,
    pub rx: broadcast::Receiver<Outgoing>,
    /// The seq of the snapshot: live data frames start after it.
    pub seq: u64,
    pub resume: Resume,
}

impl GameChannel {
    /// Subscribes to live frames; with `since`, first replays every retained
    /// data-bearing frame after it. Atomic with publishing, so nothing falls between
    /// the replay and the live stream.
    pub fn subscribe(&self, from: Option<ResumeFrom<'_>>) -> Subscription {
        let mut s = self.lock();
        let rx = s.lanes.subscribe();
        let mut preamble = Vec::new();
        let resume = self.resume(&s, from, &mut preamble);
        let snapshot = Frame {
            kind: FrameType::Snapshot,
            game_id: self.info.id.as_str(),
            seq: s.seq,
            ts: UnixMicros(crate::clock::unix_micros()),
            body: SnapshotBody {
                epoch: &self.epoch,
                game: &self.info,
                data: &s.latest,
            },
        }
        .encode();
        preamble.push(snapshot.into());
        Subscription {
            preamble,
            rx,
            seq: s.seq,
            resume,
        }
    }

    /// What a subscriber asking to resume `from` is sent before the snapshot: the
    /// frames it missed, or an error frame saying why it cannot have them.
    fn resume(
        &self,
        s: &ChannelState,
        from: Option<ResumeFrom<'_>>,
        preamble: &mut Vec<Utf8Bytes>,
    ) -> Resume {
        let first_retained = s.history.first_seq(s.seq + 1);
        let other_epoch = from.and_then(|f| f.epoch).filter(|e| **e != *self.epoch);
        match from.map(|f| f.since) {
            None => Resume::Fresh,
            Some(_) if other_epoch.is_some() => {
                let message = format!(
                    "epoch {:?} is not this server's ({:?}): it restarted and its seqs began again; sending a fresh snapshot",
                    crate::text::cut(other_epoch.unwrap_or_default(), 64),
                    &*self.epoch
                );
                preamble.push(self.error_frame(s.seq, ErrorCode::EpochChanged, &message));
                Resume::OtherEpoch
            }
            Some(since) if since > s.seq => {
                let message = format!(
                    "since={since} is ahead of the latest seq {}; the server may have restarted; sending a fresh snapshot",
                    s.seq
                );
                preamble.push(self.error_frame(s.seq, ErrorCode::ResumeAhead, &message));
                Resume::Ahead
            }
            Some(since) => {
                let replay: Vec<Utf8Bytes> =
                    s.history.after(since).map(|r| r.text.clone()).collect();
                let replayed = replay.len();
                let resume = if since + 1 < first_retained {
                    let message = format!(
                        "frames {}..={} are no longer retained; replaying from {first_retained}; fetch the timeline for older data",
                        since + 1,
                        first_retained - 1
                    );
                    // The error sits just before the replayed frames in seq order.
                    preamble.push(self.error_frame(
                        first_retained - 1,
                        ErrorCode::ResumeGap,
                        &message,
                    ));
                    Resume::Gap {
                        first_retained,
                        replayed,
                    }
                } else {
                    Resume::Complete { replayed }
                };
                preamble.extend(replay);
                resume
            }
        }
    }
}
