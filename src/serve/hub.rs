//! Per-game fan-out: assigns `seq`, serializes each frame once, keeps the history
//! that `?since=` resumes from, and hands every subscriber the same bytes.
//!
//! Each game has a `tokio::sync::broadcast` ring: the ring's capacity is every
//! subscriber's send queue, shared, so memory does not grow with slow clients. A
//! subscriber that falls a full ring behind gets `Lagged` and is closed (4008).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::broadcast;

use crate::contract::{
    DataBody, EmptyBody, ErrorBody, ErrorCode, Frame, FrameType, GameId, GameInfo, Point,
    SnapshotBody, SourceTimes, StatusBody, Timeline, TimelinePoint, UnixMicros,
};

/// A serialized frame on its way to subscribers.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub seq: u64,
    pub kind: FrameType,
    pub text: Utf8Bytes,
    /// When it was serialized, for the broadcast latency histogram.
    pub published: Instant,
}

#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    /// Frames a subscriber may fall behind before it is closed as a slow consumer.
    pub queue: usize,
    /// Bytes of serialized history kept per game for `?since=` and the timeline.
    pub history_bytes: usize,
}

/// All games' channels, fixed at start from the catalog.
pub struct Hub {
    games: Vec<Arc<GameChannel>>,
    by_id: HashMap<GameId, usize>,
    epoch: Arc<str>,
}

impl Hub {
    /// `epoch` names this run of the server: every channel's seqs belong to it.
    pub fn new(games: Vec<GameInfo>, initial: Point, config: HubConfig, epoch: &str) -> Self {
        let epoch: Arc<str> = epoch.into();
        let by_id = games
            .iter()
            .enumerate()
            .map(|(i, g)| (g.id.clone(), i))
            .collect();
        let games = games
            .into_iter()
            .map(|info| {
                Arc::new(GameChannel::new(
                    info,
                    initial.clone(),
                    config,
                    epoch.clone(),
                ))
            })
            .collect();
        Self {
            games,
            by_id,
            epoch,
        }
    }

    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    pub fn get(&self, id: &GameId) -> Option<&Arc<GameChannel>> {
        self.by_id.get(id).map(|i| &self.games[*i])
    }

    pub fn games(&self) -> &[Arc<GameChannel>] {
        &self.games
    }
}

/// One retained data-bearing frame.
struct Retained {
    seq: u64,
    text: Utf8Bytes,
    /// The point of an update/final frame, for the timeline.
    data: Option<Point>,
}

struct ChannelState {
    seq: u64,
    latest: Point,
    history: VecDeque<Retained>,
    history_bytes: usize,
    /// When anything was last broadcast, for heartbeats.
    last_sent: Instant,
}

pub struct GameChannel {
    pub info: GameInfo,
    epoch: Arc<str>,
    state: Mutex<ChannelState>,
    tx: broadcast::Sender<Outgoing>,
    history_limit: usize,
}

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
    fn new(info: GameInfo, initial: Point, config: HubConfig, epoch: Arc<str>) -> Self {
        let (tx, _) = broadcast::channel(config.queue.max(1));
        Self {
            info,
            epoch,
            state: Mutex::new(ChannelState {
                seq: 0,
                latest: initial,
                history: VecDeque::new(),
                history_bytes: 0,
                last_sent: Instant::now(),
            }),
            tx,
            history_limit: config.history_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, ChannelState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest seq and point.
    pub fn latest(&self) -> (u64, Point) {
        let s = self.lock();
        (s.seq, s.latest.clone())
    }

    /// How long since this game last sent a frame (heartbeats included), and its state.
    pub fn silence(&self, now: Instant) -> (Duration, crate::contract::GameState) {
        let s = self.lock();
        (now.saturating_duration_since(s.last_sent), s.latest.state)
    }

    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Publishes an `update` or `final` frame carrying `point`; returns its seq.
    pub fn publish_point(&self, kind: FrameType, point: Point) -> u64 {
        debug_assert!(matches!(kind, FrameType::Update | FrameType::Final));
        let mut s = self.lock();
        s.seq += 1;
        let text = Frame {
            kind,
            game_id: self.info.id.as_str(),
            seq: s.seq,
            ts: UnixMicros(crate::clock::unix_micros()),
            body: DataBody { data: &point },
        }
        .encode();
        s.latest = point.clone();
        self.retain_and_send(&mut s, kind, text, Some(point));
        s.seq
    }

    /// Publishes a `status` frame (a source's health or the game's state changed).
    /// `now` is the game's data as the sources' new health allows it (a source that
    /// went down nulls its fields, one that came back restores them); it becomes the
    /// latest point, keeping the latest change's `observed_at` and `cause`.
    pub fn publish_status(&self, now: Point, message: &str) {
        let mut s = self.lock();
        s.seq += 1;
        s.latest = Point {
            observed_at: s.latest.observed_at,
            cause: s.latest.cause,
            ..now
        };
        let body = StatusBody {
            state: s.latest.state,
            sources: s.latest.sources,
            as_of: s.latest.as_of,
            message,
        };
        let text = Frame {
            kind: FrameType::Status,
            game_id: self.info.id.as_str(),
            seq: s.seq,
            ts: UnixMicros(crate::clock::unix_micros()),
            body,
        }
        .encode();
        self.retain_and_send(&mut s, FrameType::Status, text, None);
    }

    /// Records that the sources were heard again with nothing new to show: the latest
    /// point's ages move on, without a frame.
    pub fn heard(&self, as_of: SourceTimes) {
        self.lock().latest.as_of = as_of;
    }

    fn retain_and_send(
        &self,
        s: &mut ChannelState,
        kind: FrameType,
        text: String,
        data: Option<Point>,
    ) {
        let text = Utf8Bytes::from(text);
        s.history_bytes += text.len();
        s.history.push_back(Retained {
            seq: s.seq,
            text: text.clone(),
            data,
        });
        while s.history_bytes > self.history_limit && s.history.len() > 1 {
            if let Some(old) = s.history.pop_front() {
                s.history_bytes -= old.text.len();
            }
        }
        s.last_sent = Instant::now();
        // No subscribers is fine: the frame is in the history for later resumes.
        let _ = self.tx.send(Outgoing {
            seq: s.seq,
            kind,
            text,
            published: s.last_sent,
        });
    }

    /// Broadcasts a heartbeat if nothing was sent for `idle`; returns whether it did.
    pub fn heartbeat_if_idle(&self, idle: Duration, now: Instant) -> bool {
        let mut s = self.lock();
        if now.saturating_duration_since(s.last_sent) < idle {
            return false;
        }
        let text = Frame {
            kind: FrameType::Heartbeat,
            game_id: self.info.id.as_str(),
            seq: s.seq,
            ts: UnixMicros(crate::clock::unix_micros()),
            body: EmptyBody {},
        }
        .encode();
        s.last_sent = now;
        let _ = self.tx.send(Outgoing {
            seq: s.seq,
            kind: FrameType::Heartbeat,
            text: text.into(),
            published: now,
        });
        true
    }

    /// Subscribes to live frames; with `since`, first replays every retained
    /// data-bearing frame after it. Atomic with publishing, so nothing falls between
    /// the replay and the live stream.
    pub fn subscribe(&self, from: Option<ResumeFrom<'_>>) -> Subscription {
        let s = self.lock();
        let rx = self.tx.subscribe();
        let mut preamble = Vec::new();
        let first_retained = s.history.front().map(|r| r.seq).unwrap_or(s.seq + 1);
        let other_epoch = from.and_then(|f| f.epoch).filter(|e| **e != *self.epoch);
        let resume = match from.map(|f| f.since) {
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
                let replay: Vec<Utf8Bytes> = s
                    .history
                    .iter()
                    .filter(|r| r.seq > since)
                    .map(|r| r.text.clone())
                    .collect();
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
        };
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

    fn error_frame(&self, seq: u64, code: ErrorCode, message: &str) -> Utf8Bytes {
        Frame {
            kind: FrameType::Error,
            game_id: self.info.id.as_str(),
            seq,
            ts: UnixMicros(crate::clock::unix_micros()),
            body: ErrorBody { code, message },
        }
        .encode()
        .into()
    }

    /// Retained points after `since`, at most `limit`.
    pub fn timeline(&self, since: u64, limit: usize) -> Timeline {
        let s = self.lock();
        let points: Vec<TimelinePoint> = s
            .history
            .iter()
            .filter(|r| r.seq > since)
            .filter_map(|r| {
                r.data.as_ref().map(|d| TimelinePoint {
                    seq: r.seq,
                    data: d.clone(),
                })
            })
            .take(limit)
            .collect();
        let last_seq = points.last().map(|p| p.seq).unwrap_or(since.min(s.seq));
        Timeline {
            game_id: self.info.id.clone(),
            epoch: Some(self.epoch.to_string()),
            last_seq,
            first_retained_seq: s.history.front().map(|r| r.seq).unwrap_or(s.seq + 1),
            points,
        }
    }

    /// The error frame for a frame a client sent that the server does not accept.
    /// `seq` is the last seq this client was sent: replies must not run ahead of the
    /// frames still queued for it.
    pub fn client_error(&self, seq: u64, code: ErrorCode, message: &str) -> Utf8Bytes {
        self.error_frame(seq, code, message)
    }

    /// A `pong` echoing `id`, carrying the last seq this client was sent.
    pub fn pong(&self, seq: u64, id: &serde_json::Value) -> Utf8Bytes {
        Frame {
            kind: FrameType::Pong,
            game_id: self.info.id.as_str(),
            seq,
            ts: UnixMicros(crate::clock::unix_micros()),
            body: crate::contract::PongBody { id },
        }
        .encode()
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::*;

    fn point(n: u32) -> Point {
        Point {
            observed_at: UnixMicros(n as i64),
            cause: Cause::Market,
            state: GameState::Live,
            period: None,
            clock: None,
            score: Some(Score { home: n, away: 0 }),
            home_win_prob: None,
            last_play: None,
            market: None,
            sources: SourceStatuses {
                espn: SourceHealth::Ok,
                kalshi: SourceHealth::Ok,
            },
            as_of: SourceTimes {
                espn: Some(UnixMicros(n as i64)),
                kalshi: None,
            },
        }
    }

    fn channel(history_bytes: usize) -> GameChannel {
        let info = GameInfo {
            id: GameId::parse("g1").unwrap(),
            league: League::Nba,
            home: Team {
                abbreviation: "BOS".into(),
                name: "Boston".into(),
            },
            away: Team {
                abbreviation: "MIL".into(),
                name: "Milwaukee".into(),
            },
            scheduled_at: "2024-11-17T00:30:00Z".into(),
        };
        GameChannel::new(
            info,
            point(0),
            HubConfig {
                queue: 8,
                history_bytes,
            },
            "e1".into(),
        )
    }

    fn after(since: u64) -> ResumeFrom<'static> {
        ResumeFrom { since, epoch: None }
    }

    fn seq_of(text: &str) -> (String, u64) {
        let head: FrameHead = serde_json::from_str(text).unwrap();
        (head.kind.into_owned(), head.seq)
    }

    #[test]
    fn resume_replays_exactly_the_missed_frames_then_a_snapshot() {
        let ch = channel(1 << 20);
        for n in 1..=5 {
            ch.publish_point(FrameType::Update, point(n));
        }
        let sub = ch.subscribe(Some(after(2)));
        let seqs: Vec<_> = sub.preamble.iter().map(|t| seq_of(t)).collect();
        assert_eq!(
            seqs,
            [
                ("update".into(), 3),
                ("update".into(), 4),
                ("update".into(), 5),
                ("snapshot".into(), 5)
            ]
        );
        assert_eq!(sub.resume, Resume::Complete { replayed: 3 });
        let same = ch.subscribe(Some(ResumeFrom {
            since: 2,
            epoch: Some("e1"),
        }));
        assert_eq!(same.resume, Resume::Complete { replayed: 3 });
    }

    #[test]
    fn a_resume_from_another_epoch_gets_epoch_changed_and_a_fresh_snapshot() {
        let ch = channel(1 << 20);
        for n in 1..=5 {
            ch.publish_point(FrameType::Update, point(n));
        }
        // seq 2 of the previous run is not seq 2 of this one: nothing is replayed.
        let sub = ch.subscribe(Some(ResumeFrom {
            since: 2,
            epoch: Some("e0"),
        }));
        assert_eq!(sub.resume, Resume::OtherEpoch);
        let frames: Vec<serde_json::Value> = sub
            .preamble
            .iter()
            .map(|t| serde_json::from_str(t).unwrap())
            .collect();
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert_eq!(
            (frames[0]["type"].as_str(), frames[0]["code"].as_str()),
            (Some("error"), Some("epoch_changed"))
        );
        assert_eq!(
            (frames[1]["type"].as_str(), frames[1]["epoch"].as_str()),
            (Some("snapshot"), Some("e1"))
        );
        assert_eq!(frames[1]["seq"], 5);
    }

    #[test]
    fn live_frames_after_subscribing_continue_the_sequence() {
        let ch = channel(1 << 20);
        ch.publish_point(FrameType::Update, point(1));
        let mut sub = ch.subscribe(None);
        ch.publish_point(FrameType::Update, point(2));
        let live = sub.rx.try_recv().unwrap();
        assert_eq!((sub.seq, live.seq), (1, 2));
    }

    #[test]
    fn history_is_bounded_and_old_resumes_report_a_gap() {
        let ch = channel(2_000);
        for n in 1..=50 {
            ch.publish_point(FrameType::Update, point(n));
        }
        let sub = ch.subscribe(Some(after(1)));
        let Resume::Gap {
            first_retained,
            replayed,
        } = sub.resume
        else {
            panic!("{:?}", sub.resume)
        };
        assert!(first_retained > 2 && replayed as u64 == 50 - first_retained + 1);
        assert_eq!(seq_of(&sub.preamble[0]).0, "error");
        let ahead = ch.subscribe(Some(after(99)));
        assert_eq!(ahead.resume, Resume::Ahead);
    }

    #[test]
    fn timeline_pages_points_in_update_shape() {
        let ch = channel(1 << 20);
        for n in 1..=5 {
            ch.publish_point(FrameType::Update, point(n));
        }
        let espn_down = Point {
            score: None,
            sources: SourceStatuses {
                espn: SourceHealth::Down,
                kalshi: SourceHealth::Ok,
            },
            ..point(5)
        };
        ch.publish_status(espn_down, "espn down");
        let t = ch.timeline(1, 2);
        assert_eq!(t.points.iter().map(|p| p.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(t.last_seq, 3);
        assert_eq!(
            ch.timeline(3, 100).points.len(),
            2,
            "status frames carry no point"
        );
    }

    #[test]
    fn a_status_replaces_the_latest_data_but_keeps_its_change_time_and_carries_the_ages() {
        let ch = channel(1 << 20);
        ch.publish_point(FrameType::Update, point(7));
        let mut sub = ch.subscribe(None);
        let down = Point {
            observed_at: UnixMicros(999),
            score: None,
            sources: SourceStatuses {
                espn: SourceHealth::Down,
                kalshi: SourceHealth::Ok,
            },
            ..point(7)
        };
        ch.publish_status(down, "espn is down");
        let (seq, latest) = ch.latest();
        assert_eq!(seq, 2);
        assert_eq!(latest.score, None, "a down source's fields are null");
        assert_eq!(latest.sources.espn, SourceHealth::Down);
        assert_eq!(
            latest.observed_at,
            UnixMicros(7),
            "still the latest change's"
        );
        let status: serde_json::Value =
            serde_json::from_str(&sub.rx.try_recv().unwrap().text).unwrap();
        assert_eq!(status["as_of"]["espn"], 7);
        assert_eq!(status["sources"]["espn"], "down");

        ch.heard(SourceTimes {
            espn: Some(UnixMicros(20)),
            kalshi: None,
        });
        assert_eq!(ch.latest().1.as_of.espn, Some(UnixMicros(20)));
        assert_eq!(ch.latest().0, 2, "hearing nothing new sends nothing");
    }

    #[test]
    fn heartbeats_only_when_idle_and_repeat_the_seq() {
        let ch = channel(1 << 20);
        ch.publish_point(FrameType::Update, point(1));
        let mut sub = ch.subscribe(None);
        let now = Instant::now();
        assert!(!ch.heartbeat_if_idle(Duration::from_secs(5), now));
        assert!(ch.heartbeat_if_idle(Duration::from_secs(5), now + Duration::from_secs(5)));
        let hb = sub.rx.try_recv().unwrap();
        assert_eq!((hb.kind, hb.seq), (FrameType::Heartbeat, 1));
    }
}
