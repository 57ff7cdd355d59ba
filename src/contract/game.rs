//! Games, their state, and the data point every update carries.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Unix time in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixMicros(pub i64);

impl UnixMicros {
    pub fn from_system_time(t: std::time::SystemTime) -> Self {
        UnixMicros(crate::clock::micros_of(t))
    }
}

/// The longest game id the server accepts.
pub const MAX_GAME_ID_LEN: usize = 64;

/// A validated game id: 1 to 64 ASCII letters, digits, `-` or `_`.
///
/// Anything else (path-like, percent-encoded, very long ids) is rejected before it can
/// reach a lookup, a log line or a metric label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GameId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GameIdError {
    #[error("game id is empty")]
    Empty,
    #[error("game id is {len} bytes long; the limit is {MAX_GAME_ID_LEN}")]
    TooLong { len: usize },
    #[error(
        "game id has {found:?} at byte {index}; only ASCII letters, digits, '-' and '_' are allowed"
    )]
    InvalidChar { found: char, index: usize },
}

impl GameId {
    pub fn parse(raw: &str) -> Result<Self, GameIdError> {
        if raw.is_empty() {
            return Err(GameIdError::Empty);
        }
        if raw.len() > MAX_GAME_ID_LEN {
            return Err(GameIdError::TooLong { len: raw.len() });
        }
        if let Some((index, found)) = raw
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(GameIdError::InvalidChar { found, index });
        }
        Ok(GameId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GameId {
    type Error = GameIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        GameId::parse(&s)
    }
}

impl From<GameId> for String {
    fn from(id: GameId) -> String {
        id.0
    }
}

impl fmt::Display for GameId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum League {
    Nba,
    Nfl,
    Nhl,
}

impl League {
    pub const ALL: [League; 3] = [League::Nba, League::Nfl, League::Nhl];

    pub fn as_str(self) -> &'static str {
        match self {
            League::Nba => "nba",
            League::Nfl => "nfl",
            League::Nhl => "nhl",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GameState {
    Scheduled,
    /// In play; a delay that resumes (rain, a stoppage) stays live.
    Live,
    Final,
    /// Moved to another day (since 1.3.0).
    Postponed,
    /// Called off, or abandoned and not to be resumed (since 1.3.0).
    Canceled,
    /// Stopped during play, to be resumed later (since 1.3.0).
    Suspended,
}

impl GameState {
    pub fn as_str(self) -> &'static str {
        match self {
            GameState::Scheduled => "scheduled",
            GameState::Live => "live",
            GameState::Final => "final",
            GameState::Postponed => "postponed",
            GameState::Canceled => "canceled",
            GameState::Suspended => "suspended",
        }
    }
}

/// How fresh a source's data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceHealth {
    /// Answering, with recent data.
    Ok,
    /// Answering slowly or failing, but its last data is recent enough to show.
    Stale,
    /// Not answering; its fields in a [`Point`] are null.
    Down,
}

impl SourceHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceHealth::Ok => "ok",
            SourceHealth::Stale => "stale",
            SourceHealth::Down => "down",
        }
    }
}

/// The upstream sources a game's stream is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Espn,
    Kalshi,
    Apisports,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Espn, Source::Kalshi, Source::Apisports];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Espn => "espn",
            Source::Kalshi => "kalshi",
            Source::Apisports => "apisports",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|src| src.as_str() == s)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Team {
    /// League tricode, e.g. `BOS`.
    pub abbreviation: String,
    pub name: String,
}

/// What does not change during a game.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GameInfo {
    pub id: GameId,
    pub league: League,
    pub home: Team,
    pub away: Team,
    /// Scheduled start, RFC 3339 UTC.
    pub scheduled_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Score {
    pub home: u32,
    pub away: u32,
}

/// The latest Kalshi quote for the market on the home team winning. Prices in dollars (0..1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketQuote {
    pub ticker: String,
    /// Null (since 1.3.0): no bid, no ask, or never traded; a settled market has no book.
    pub yes_bid: Option<f64>,
    pub yes_ask: Option<f64>,
    pub last_price: Option<f64>,
    /// What a settled market paid for YES, 1 or 0 (since 1.3.0); null while it trades.
    #[serde(default)]
    pub settlement: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatuses {
    pub espn: SourceHealth,
    pub kalshi: SourceHealth,
}

/// When the server last heard from each source about one game (contract 1.2.0): how
/// old that source's fields are. Null until the source has said anything about it.
///
/// A source that is `stale` keeps its last values in a point, and `down` nulls them;
/// either way its time here says how long ago the server last had them, so a client
/// can show "as of 40 s ago" rather than a number that looks current. A quiet market's
/// quote can be old and still current while Kalshi is `ok`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceTimes {
    pub espn: Option<UnixMicros>,
    pub kalshi: Option<UnixMicros>,
}

/// What changed to produce a [`Point`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// A new play or game-state change from ESPN.
    Play,
    /// A new Kalshi quote.
    Market,
}

/// One data point of a game: the `data` of an `update`/`final` frame and one entry of
/// the timeline. Fields that come from a source that is `down` are null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Unix microseconds at which the server observed the upstream change.
    pub observed_at: UnixMicros,
    pub cause: Cause,
    pub state: GameState,
    /// ESPN: period number (NBA 1-4, 5+ overtime).
    pub period: Option<u32>,
    /// ESPN: game clock as displayed, e.g. `"5:32"` or `"24.3"`.
    pub clock: Option<String>,
    /// ESPN: score after the latest play.
    pub score: Option<Score>,
    /// ESPN: home win probability, a fraction 0..1.
    pub home_win_prob: Option<f64>,
    /// ESPN: the latest play's text.
    pub last_play: Option<String>,
    /// Kalshi: the latest quote.
    pub market: Option<MarketQuote>,
    pub sources: SourceStatuses,
    /// When each source's part of this point was last heard (1.2.0; absent from older
    /// servers, read as all null).
    #[serde(default)]
    pub as_of: SourceTimes,
}

/// One entry of `GET /api/live/games`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GameSummary {
    #[serde(flatten)]
    pub info: GameInfo,
    /// The latest `seq` of the game's stream.
    pub seq: u64,
    pub latest: Point,
    /// Where to stream this game (`ws://host/ws/live/{id}`).
    pub ws_url: String,
    pub timeline_url: String,
}

/// `GET /api/live/games`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GamesList {
    pub contract_version: String,
    /// The server's epoch (1.1.0; absent from 1.0.0 servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    pub games: Vec<GameSummary>,
}

/// `GET /api/games/{id}/timeline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub game_id: GameId,
    /// The server's epoch: `last_seq` belongs to it (1.1.0; absent from 1.0.0 servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    /// seq of the last point included; pass it as `since` to page on.
    pub last_seq: u64,
    /// Oldest seq still held (older points were dropped to bound memory).
    pub first_retained_seq: u64,
    pub points: Vec<TimelinePoint>,
}

/// A timeline entry: the seq of the frame that carried it, and its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    pub seq: u64,
    pub data: Point,
}

/// A team in a scores listing; `score` is null before the game starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredTeam {
    pub id: i64,
    pub name: String,
    pub score: Option<u32>,
}

/// One game of `GET /api/{nfl,nhl}/scores`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreGame {
    pub id: i64,
    pub status: GameState,
    /// The upstream's own status words, e.g. "Third Quarter".
    pub status_detail: String,
    pub clock: Option<String>,
    pub home: ScoredTeam,
    pub away: ScoredTeam,
}

/// `GET /api/{nfl,nhl}/scores`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoresBody {
    pub league: League,
    pub source: Source,
    pub games: Vec<ScoreGame>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn game_id_accepts_nba_and_slug_ids() {
        assert!(GameId::parse("0022400196").is_ok());
        assert!(GameId::parse("nba-2024_11").is_ok());
    }

    #[test]
    fn game_id_rejects_hostile_ids() {
        assert_eq!(GameId::parse(""), Err(GameIdError::Empty));
        assert_eq!(
            GameId::parse(&"9".repeat(65)),
            Err(GameIdError::TooLong { len: 65 })
        );
        assert!(matches!(
            GameId::parse("../etc/passwd"),
            Err(GameIdError::InvalidChar {
                found: '.',
                index: 0
            })
        ));
        assert!(matches!(
            GameId::parse("00224%2F0196"),
            Err(GameIdError::InvalidChar { found: '%', .. })
        ));
        assert!(GameId::parse("gäme").is_err());
    }
}
