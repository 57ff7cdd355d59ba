//! Frame types of the live stream and their encoding.

use serde::{Deserialize, Serialize};

use super::game::{GameInfo, GameState, Point, SourceStatuses, SourceTimes, UnixMicros};

/// The `type` of a server frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameType {
    Snapshot,
    Update,
    Status,
    Heartbeat,
    Final,
    Error,
    Pong,
}

impl FrameType {
    pub const ALL: [FrameType; 7] = [
        FrameType::Snapshot,
        FrameType::Update,
        FrameType::Status,
        FrameType::Heartbeat,
        FrameType::Final,
        FrameType::Error,
        FrameType::Pong,
    ];

    /// Data-bearing frames advance `seq` by exactly one and are replayed on resume.
    pub fn is_data_bearing(self) -> bool {
        matches!(
            self,
            FrameType::Update | FrameType::Status | FrameType::Final
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FrameType::Snapshot => "snapshot",
            FrameType::Update => "update",
            FrameType::Status => "status",
            FrameType::Heartbeat => "heartbeat",
            FrameType::Final => "final",
            FrameType::Error => "error",
            FrameType::Pong => "pong",
        }
    }

    pub fn parse(s: &str) -> Option<FrameType> {
        FrameType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// The envelope every frame carries, with a type-specific body flattened into it.
#[derive(Debug, Serialize)]
pub struct Frame<'a, B: Serialize> {
    #[serde(rename = "type")]
    pub kind: FrameType,
    pub game_id: &'a str,
    pub seq: u64,
    pub ts: UnixMicros,
    #[serde(flatten)]
    pub body: B,
}

impl<B: Serialize> Frame<'_, B> {
    /// Serializes the frame. Done once per broadcast, never once per client.
    pub fn encode(&self) -> String {
        // Our bodies have only string keys and plain values, so this cannot fail.
        serde_json::to_string(self).expect("frame bodies serialize infallibly")
    }
}

#[derive(Debug, Serialize)]
pub struct SnapshotBody<'a> {
    /// The server's epoch (contract 1.1.0): new at each start, so a resuming client
    /// can tell a restart (seq numbering began again) from lost frames.
    pub epoch: &'a str,
    pub game: &'a GameInfo,
    pub data: &'a Point,
}

#[derive(Debug, Serialize)]
pub struct DataBody<'a> {
    pub data: &'a Point,
}

#[derive(Debug, Serialize)]
pub struct StatusBody<'a> {
    pub state: GameState,
    pub sources: SourceStatuses,
    /// When the game's data from each source was last heard (1.2.0).
    pub as_of: SourceTimes,
    pub message: &'a str,
}

#[derive(Debug, Serialize)]
pub struct EmptyBody {}

#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub code: ErrorCode,
    pub message: &'a str,
}

#[derive(Debug, Serialize)]
pub struct PongBody<'a> {
    /// The ping's `id`, as the client wrote it.
    pub id: &'a serde_json::value::RawValue,
}

/// Machine-readable reason in an `error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The game id is well-formed but no such game exists (followed by close 4404).
    UnknownGame,
    /// The game id is malformed (followed by close 4404).
    InvalidGameId,
    /// A client text frame was not JSON.
    InvalidJson,
    /// A client frame was JSON but not a frame the server accepts.
    UnsupportedFrame,
    /// A client sent a binary frame.
    BinaryNotSupported,
    /// `since` is older than the retained history: frames in between are gone.
    ResumeGap,
    /// `since` is newer than the latest seq (the server may have restarted).
    ResumeAhead,
    /// `since` is not a non-negative integer.
    InvalidSince,
    /// `epoch` names another run of the server: `since` means nothing here (1.1.0).
    EpochChanged,
    /// The client sent frames faster than its allowance (followed by close 1008 if it
    /// goes on).
    RateLimited,
}

/// The one frame a client may send: `{"type":"ping","id":ID}`, answered with a `pong`
/// that echoes `id` for round-trip measurement. `id` is any JSON value and comes back
/// exactly as written (`18446744073709551616` stays that, not a float).
#[derive(Debug, Deserialize)]
pub struct ClientPing<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub id: &'a serde_json::value::RawValue,
}

impl<'a> ClientPing<'a> {
    /// The ping in `text`, or None when it is not one.
    pub fn parse(text: &'a str) -> Option<Self> {
        serde_json::from_str::<Self>(text)
            .ok()
            .filter(|ping| ping.kind == "ping")
    }
}

/// The envelope of a received frame, decoded without building a DOM of the body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FrameHead<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub game_id: std::borrow::Cow<'a, str>,
    pub seq: u64,
    pub ts: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::game::*;

    fn point() -> Point {
        Point {
            observed_at: UnixMicros(1),
            cause: Cause::Market,
            state: GameState::Live,
            period: Some(2),
            clock: Some("5:32".into()),
            score: Some(Score { home: 61, away: 58 }),
            home_win_prob: Some(0.53),
            last_play: None,
            market: None,
            sources: SourceStatuses {
                espn: SourceHealth::Ok,
                kalshi: SourceHealth::Down,
            },
            as_of: SourceTimes {
                espn: Some(UnixMicros(1)),
                kalshi: None,
            },
        }
    }

    #[test]
    fn update_frame_has_envelope_and_data() {
        let p = point();
        let text = Frame {
            kind: FrameType::Update,
            game_id: "0022400196",
            seq: 7,
            ts: UnixMicros(42),
            body: DataBody { data: &p },
        }
        .encode();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "update");
        assert_eq!(v["game_id"], "0022400196");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["ts"], 42);
        assert_eq!(v["data"]["score"]["home"], 61);
        assert_eq!(v["data"]["sources"]["kalshi"], "down");
        let head: FrameHead = serde_json::from_str(&text).unwrap();
        assert_eq!((head.kind.as_ref(), head.seq), ("update", 7));
    }

    #[test]
    fn only_update_status_final_are_data_bearing() {
        let bearing: Vec<_> = FrameType::ALL
            .into_iter()
            .filter(|t| t.is_data_bearing())
            .collect();
        assert_eq!(
            bearing,
            [FrameType::Update, FrameType::Status, FrameType::Final]
        );
    }

    #[test]
    fn client_ping_parses_and_others_do_not() {
        let ping = ClientPing::parse(r#"{"type":"ping","id":3}"#).unwrap();
        assert_eq!(ping.id.get(), "3");
        assert!(ClientPing::parse(r#"{"type":"subscribe","id":3}"#).is_none());
        assert!(ClientPing::parse(r#"{"id":3}"#).is_none());
        assert!(ClientPing::parse(r#"{"type":"ping"}"#).is_none());
        assert!(ClientPing::parse(r#"{"type":"p\u0069ng","id":1}"#).is_some());
    }

    #[test]
    fn ping_ids_come_back_exactly_as_written() {
        for id in [
            "18446744073709551616",
            "-9223372036854775809",
            "1e400",
            "0.1000000000000000055511151231257827",
            r#"{"nested":[1,2.50]}"#,
            r#""text \" with a quote""#,
        ] {
            let text = format!(r#"{{"type":"ping","id":{id}}}"#);
            let ping = ClientPing::parse(&text).unwrap();
            let pong = serde_json::to_string(&PongBody { id: ping.id }).unwrap();
            assert_eq!(pong, format!(r#"{{"id":{id}}}"#));
        }
    }
}
