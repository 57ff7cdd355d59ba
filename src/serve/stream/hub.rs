//! Per-game fan-out: assigns `seq`, serializes each frame once, keeps the history
//! that `?since=` resumes from, and hands every subscriber the same bytes.
//!
//! Each game has a `tokio::sync::broadcast` ring: the ring's capacity is every
//! subscriber's send queue, shared, so memory does not grow with slow clients. A
//! subscriber that falls a full ring behind gets `Lagged` and is closed (4008).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::direct::Fanout;
use super::history::{History, Retained};
use super::lanes::Lanes;
use super::outgoing::Outgoing;

use crate::contract::{
    DataBody, EmptyBody, ErrorBody, ErrorCode, Frame, FrameType, GameId, GameInfo, Point,
    SourceTimes, StatusBody, Timeline, TimelinePoint, UnixMicros,
};

#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    /// Frames a subscriber may fall behind before it is closed as a slow consumer.
    pub queue: usize,
    /// Bytes of serialized history kept per game for `?since=` and the timeline.
    pub history_bytes: usize,
}

/// All games' channels: those known at start, and those discovery adds later (a game
/// is never removed while the server runs: clients may still resume it).
pub struct Hub {
    games: RwLock<Games>,
    initial: Point,
    config: HubConfig,
    epoch: Arc<str>,
}

#[derive(Default)]
struct Games {
    list: Vec<Arc<GameChannel>>,
    by_id: HashMap<GameId, usize>,
}

impl Hub {
    /// `epoch` names this run of the server: every channel's seqs belong to it.
    pub fn new(games: Vec<GameInfo>, initial: Point, config: HubConfig, epoch: &str) -> Self {
        let hub = Self {
            games: RwLock::default(),
            initial,
            config,
            epoch: epoch.into(),
        };
        for info in games {
            hub.add(info);
        }
        hub
    }

    /// The channel of `info`'s game, made now unless the game has one already.
    pub fn add(&self, info: GameInfo) -> Arc<GameChannel> {
        let mut games = self.games.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&i) = games.by_id.get(&info.id) {
            return games.list[i].clone();
        }
        let id = info.id.clone();
        let channel = Arc::new(GameChannel::new(
            info,
            self.initial.clone(),
            self.config,
            self.epoch.clone(),
        ));
        let i = games.list.len();
        games.list.push(channel.clone());
        games.by_id.insert(id, i);
        channel
    }

    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    pub fn get(&self, id: &GameId) -> Option<Arc<GameChannel>> {
        let games = self.games.read().unwrap_or_else(|e| e.into_inner());
        games.by_id.get(id).map(|i| games.list[*i].clone())
    }

    /// Every game's channel, in the order they were added.
    pub fn games(&self) -> Vec<Arc<GameChannel>> {
        self.games
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .list
            .clone()
    }
}

pub(super) struct ChannelState {
    pub(super) seq: u64,
    pub(super) latest: Point,
    pub(super) history: History,
    /// When anything was last broadcast, for heartbeats.
    last_sent: Instant,
    /// The subscribers, sent every frame while this state is locked (so a new
    /// subscriber's snapshot and its first live frame never miss one another).
    pub(super) lanes: Lanes<Outgoing>,
}

/// A game's memory, for the metrics: see [`GameChannel::held`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Held {
    pub history_frames: usize,
    pub history_bytes: usize,
    pub queued: usize,
}

pub struct GameChannel {
    pub info: GameInfo,
    pub(super) epoch: Arc<str>,
    /// The game's writer and the viewers it serves.
    pub fanout: Arc<Fanout>,
    state: Mutex<ChannelState>,
}

impl GameChannel {
    fn new(info: GameInfo, initial: Point, config: HubConfig, epoch: Arc<str>) -> Self {
        Self {
            info,
            epoch,
            fanout: Arc::default(),
            state: Mutex::new(ChannelState {
                seq: 0,
                latest: initial,
                history: History::new(config.history_bytes),
                last_sent: Instant::now(),
                lanes: Lanes::new(config.queue),
            }),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, ChannelState> {
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
        self.lock().lanes.subscribers()
    }

    /// What the game holds in memory: frames and bytes of history, and frames in its
    /// broadcast queue that some subscriber has not read yet (the slowest one's lag).
    pub fn held(&self) -> Held {
        let s = self.lock();
        let (history_frames, history_bytes) = s.history.held();
        Held {
            history_frames,
            history_bytes,
            queued: s.lanes.queued(),
        }
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
        s.history.push(Retained {
            seq: s.seq,
            text: text.clone(),
            data,
        });
        s.last_sent = Instant::now();
        // No subscribers is fine: the frame is in the history for later resumes.
        let out = Outgoing::new(s.seq, kind, text, s.last_sent);
        s.lanes.send(out);
        self.fanout.wake();
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
        let out = Outgoing::new(s.seq, FrameType::Heartbeat, text.into(), now);
        s.lanes.send(out);
        self.fanout.wake();
        true
    }

    pub(super) fn error_frame(&self, seq: u64, code: ErrorCode, message: &str) -> Utf8Bytes {
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
            .after(since)
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
            first_retained_seq: s.history.first_seq(s.seq + 1),
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
    pub fn pong(&self, seq: u64, id: &serde_json::value::RawValue) -> Utf8Bytes {
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
    use crate::serve::stream::resume::{Resume, ResumeFrom};

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
            serde_json::from_str(sub.rx.try_recv().unwrap().text()).unwrap();
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
