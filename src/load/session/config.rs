//! What every connection of a stage shares ([`VuConfig`]): how it connects, what it
//! sends and when, how it reads frames, when it pings and reconnects; and the stream a
//! connection is for ([`StreamTarget`]).

use std::time::Duration;

use url::Url;

use super::frame::{Decode, FrameReader};
use super::link::Protocol;
use super::script::{Reply, Step};
use super::socketio::SocketIoOptions;
use crate::client::ConnectOptions;
use crate::client::template::Template;
use crate::retry::Backoff;

/// How long reconnects wait: 100 ms after the first failure, doubling up to 5 s.
pub const RECONNECT_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(100),
    max: Duration::from_secs(5),
};

#[derive(Debug, Clone)]
pub struct VuConfig {
    /// How each connection is opened.
    pub connect: ConnectOptions,
    /// No frame at all for this long ends the connection as a `timeout` error.
    pub idle_timeout: Duration,
    /// Client messages per second per connection (open model), or none.
    pub send_rate: Option<f64>,
    /// The scheduled client message ([`Template`] placeholders); default our
    /// contract's ping.
    pub send_template: Template,
    /// Sent once right after each handshake (and each reconnect), before any scheduled
    /// message; the same placeholders (`{game_id}`, `{since}`: the last seq or null).
    pub subscribe: Option<Template>,
    /// How frames are read: our contract, or the pointers of another layout.
    pub reader: FrameReader,
    /// Reconnect (with `?since=`) after a disconnect, with this backoff.
    pub reconnect: Option<Backoff>,
    /// Each connection closes itself after this long and resumes with `?since=`
    /// (clients that come and go, as on mobile networks); implies reconnecting.
    pub churn: Option<Duration>,
    /// WebSocket protocol Ping interval per connection (RTT any server answers), or none.
    pub ws_ping: Option<Duration>,
    /// With `--ws-ping auto`: the most pings a second all connections together send;
    /// each stage stretches `ws_ping` to stay within it.
    pub ws_ping_budget: Option<u32>,
    /// Connections that end before the run and do not come back are expected (the
    /// `stayed` run check reports them without failing).
    pub drops_allowed: bool,
    /// What the connections speak: WebSocket, or Server-Sent Events.
    pub protocol: Protocol,
    /// The HTTP client of Server-Sent Events streams (the engine makes one per run).
    pub sse_client: Option<reqwest::Client>,
    /// How socket.io is spoken (`--protocol socketio`).
    pub socketio: SocketIoOptions,
    /// What a connection says and waits for before it measures (after `subscribe`).
    pub session: Vec<Step>,
    /// Frames answered while measuring (a server's application pings).
    pub replies: Vec<Reply>,
    /// How frames are decoded before they are read.
    pub decode: Decode,
}

/// `--ws-ping auto`: a ping every 10 s per connection...
pub const AUTO_PING_EVERY: Duration = Duration::from_secs(10);
/// ...but no more than this many a second over all connections (each connection's
/// interval is stretched): 1,200 `ws_rtt` samples a minute from 200 connections up.
/// A ping and its pong cost a client two to four frames' worth of CPU (two system
/// calls and a wake-up of their own), so the budget keeps them a small share of a
/// slow feed's messages (docs/PERFORMANCE.md measures it). Telling a quiet connection
/// from a dead one does not depend on this rate: the idle check pings a connection
/// that said nothing for `--idle-timeout`.
pub const AUTO_PINGS_PER_SECOND: u32 = 20;

/// The ping interval for `conns` connections within `budget` pings a second.
pub fn ping_interval(every: Duration, conns: usize, budget: Option<u32>) -> Duration {
    match budget {
        Some(per_second) if per_second > 0 => every.max(Duration::from_secs_f64(
            conns as f64 / f64::from(per_second),
        )),
        _ => every,
    }
}

impl Default for VuConfig {
    /// Our contract's defaults: `ts` in µs, pings as the client frame, a small read
    /// buffer, no client traffic, no reconnects, protocol pings on the `auto` budget.
    fn default() -> Self {
        Self {
            connect: ConnectOptions::default(),
            idle_timeout: Duration::from_secs(30),
            send_rate: None,
            send_template: Template::contract_ping(),
            ws_ping: Some(AUTO_PING_EVERY),
            ws_ping_budget: Some(AUTO_PINGS_PER_SECOND),
            subscribe: None,
            reader: FrameReader::Contract,
            reconnect: None,
            churn: None,
            drops_allowed: false,
            protocol: Protocol::Ws,
            sse_client: None,
            socketio: SocketIoOptions::default(),
            session: Vec::new(),
            replies: Vec::new(),
            decode: Decode::Json,
        }
    }
}

/// One stream to connect to, and the game it is about (when known).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamTarget {
    pub url: Url,
    pub game: Option<String>,
}

impl From<Url> for StreamTarget {
    fn from(url: Url) -> Self {
        Self { url, game: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_pings_stay_within_their_budget_however_many_connections() {
        let auto = |conns| ping_interval(AUTO_PING_EVERY, conns, Some(AUTO_PINGS_PER_SECOND));
        assert_eq!(
            auto(50),
            Duration::from_secs(10),
            "few connections: every 10 s"
        );
        assert_eq!(auto(200), Duration::from_secs(10));
        assert_eq!(auto(1_000), Duration::from_secs(50));
        assert_eq!(auto(10_000), Duration::from_secs(500));
        for conns in [1, 199, 201, 7_777, 100_000] {
            let per_second = conns as f64 / auto(conns).as_secs_f64();
            assert!(per_second <= 20.0 + 1e-9, "{conns}: {per_second}/s");
        }
        let fixed = ping_interval(Duration::from_secs(1), 10_000, None);
        assert_eq!(fixed, Duration::from_secs(1), "a chosen interval is kept");
    }
}
