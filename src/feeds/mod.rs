//! Upstream sources behind one trait: the clients of ESPN, Kalshi and API-SPORTS.
//!
//! Each [`Feed`] runs the same loop (`rounds`: a round of talking to its upstream,
//! a poll for ESPN, a snapshot then a stream for Kalshi; after a failure, a back-off)
//! and pushes [`FeedEvent`]s into a bounded channel that the aggregator drains. A
//! feed reports its own health ([`health`]) as events, so the aggregator never has to
//! guess. Upstream DTOs stay inside each feed's file: only contract types and the
//! events below leave it. The mock upstreams (`crate::mocks`) import these clients'
//! types, never the reverse.

pub mod apisports;
pub mod catalog;
pub mod discovery;
pub mod espn;
pub mod health;
pub mod kalshi;
pub mod quota;
pub mod rounds;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::contract::{GameState, Score, Source, SourceHealth, UnixMicros};

/// How many events may wait for the aggregator before feeds are slowed down.
/// A second of ticks at 50/s for a dozen games fits with room to spare.
pub const FEED_CHANNEL_CAPACITY: usize = 1024;

/// What a feed observed.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedEvent {
    Game(GameObservation),
    Quote(QuoteObservation),
    Health {
        source: Source,
        health: SourceHealth,
        detail: Option<String>,
    },
    /// The games discovery found (all of them, known ones included), and those
    /// without a market.
    Discovered(discovery::Discovered),
    /// Every game the source lists now (a scoreboard poll's event ids): a live game
    /// that drops off it is stale for that game, however well the source answers.
    Listed {
        source: Source,
        ids: Vec<String>,
    },
    /// The source sent an error frame on its stream (the stream stays open).
    ErrorFrame {
        source: Source,
        code: String,
    },
    /// How a streaming source is reached now, told when it changes: its stream can
    /// fail while its REST API answers, and `/health` shows the two apart.
    Link {
        source: Source,
        link: Link,
        detail: Option<String>,
    },
}

/// How a source that streams is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Its stream is open.
    Streaming,
    /// By polling its REST API, on purpose (no key for the stream).
    Polling,
    /// Its stream cannot be opened, is refused or keeps failing.
    Down,
}

impl Link {
    pub fn as_str(self) -> &'static str {
        match self {
            Link::Streaming => "streaming",
            Link::Polling => "polling",
            Link::Down => "down",
        }
    }
}

/// One game as the scoreboard feed (ESPN) shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GameObservation {
    pub espn_event_id: String,
    pub state: GameState,
    pub period: Option<u32>,
    pub clock: Option<String>,
    pub score: Option<Score>,
    pub home_win_prob: Option<f64>,
    pub last_play_id: Option<String>,
    pub last_play: Option<String>,
    pub observed_at: UnixMicros,
}

/// One quote of a prediction market (Kalshi).
#[derive(Debug, Clone, PartialEq)]
pub struct QuoteObservation {
    pub ticker: String,
    /// None: no bid, no ask, or (last price) never traded; a settled market has no book.
    pub yes_bid: Option<f64>,
    pub yes_ask: Option<f64>,
    pub last_price: Option<f64>,
    /// What a settled market paid out for YES (1.0 or 0.0); None while it trades.
    pub settlement: Option<f64>,
    /// The market has settled or is about to (the game is over).
    pub settled: bool,
    pub observed_at: UnixMicros,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("rate limited by the upstream")]
    RateLimited,
    #[error("malformed response: {0}")]
    Malformed(String),
    #[error("upstream error: {0}")]
    Upstream(String),
    /// The upstream refused our credentials (HTTP 401/403); retrying will not help
    /// until the key is fixed.
    #[error("{0}")]
    Refused(String),
    /// The day's request quota is spent upstream; it comes back at the day's reset.
    #[error("the daily request quota is spent: {0}")]
    QuotaSpent(String),
    /// What was asked is outside the account's plan (a season, a league): a setting
    /// to change, not an outage.
    #[error("{0}")]
    Plan(String),
}

impl FeedError {
    pub(crate) fn from_reqwest(e: reqwest::Error, timeout: std::time::Duration) -> Self {
        if e.is_timeout() {
            FeedError::Timeout(timeout)
        } else if e.is_decode() {
            FeedError::Malformed(e.to_string())
        } else if let Some(status) = e.status() {
            FeedError::Status(status.as_u16())
        } else {
            FeedError::Connect(crate::feeds::error_chain(&e))
        }
    }
}

/// An error and its causes on one line (`a: b: c`).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Where a feed sends what it sees.
pub type FeedSink = mpsc::Sender<FeedEvent>;

/// A source of live data. `run` loops until `stop` is cancelled; it handles its own
/// retries and reports its health through the sink.
pub trait Feed: Send + Sync + 'static {
    fn source(&self) -> Source;
    fn run(
        self: Arc<Self>,
        sink: FeedSink,
        stop: CancellationToken,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Sends to the aggregator; a closed channel means the server is stopping.
pub(crate) async fn send(sink: &FeedSink, event: FeedEvent) {
    let _ = sink.send(event).await;
}

/// Tells the aggregator about a health change, if there was one.
pub(crate) async fn report_health(
    sink: &FeedSink,
    source: Source,
    change: Option<SourceHealth>,
    detail: Option<String>,
) {
    if let Some(health) = change {
        send(
            sink,
            FeedEvent::Health {
                source,
                health,
                detail,
            },
        )
        .await;
    }
}
