//! Everything `serve` can be told, with the defaults `livegames serve` runs with.

use crate::influx::retention::DEFAULT_RETENTION;
use crate::influx::{InfluxTarget, Retention, WriterConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::advertise::Advertise;
use super::scores::ScoresConfig;
use super::stream::inbound::InboundRate;
use crate::contract::League;
use crate::feeds::kalshi::auth::Signer;
use crate::mocks::{FaultSpec, MockConfig};

/// Everything `serve` can be told. [`ServeConfig::default`] is what
/// `livegames serve` runs with no flags.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Replay seconds per wall second for the mock upstreams.
    pub speed: f64,
    /// Market ticks per second per live game (the stream's message rate).
    pub rate: f64,
    /// ESPN host (default: the built-in mock).
    pub espn_url: Option<String>,
    /// Kalshi REST base, e.g. `https://api.elections.kalshi.com/trade-api/v2`.
    pub kalshi_url: Option<String>,
    /// Kalshi WebSocket URL; derived from `kalshi_url` when not given.
    pub kalshi_ws_url: Option<String>,
    /// Signs Kalshi requests (`--kalshi-key-id`, `--kalshi-private-key`). Without it
    /// the real Kalshi is polled over REST; the mock signs with its own key.
    pub kalshi_signer: Option<Arc<Signer>>,
    /// How often Kalshi's REST API is polled when there is no key for the stream.
    pub kalshi_poll: Duration,
    /// How often the day's games are looked for again (without a games map).
    pub discover_every: Duration,
    /// The leagues whose games are found and followed (ESPN scoreboards, Kalshi game
    /// series), without a games map.
    pub leagues: Vec<League>,
    /// API-SPORTS base with a `{sport}` placeholder.
    pub apisports_url: Option<String>,
    /// API-SPORTS key; defaults to the mock's key when the mock is the upstream.
    pub apisports_key: Option<String>,
    /// Serve the mock upstreams on their own address instead of under `/mock`.
    pub mock_addr: Option<SocketAddr>,
    /// Read recordings from this folder instead of the built-in ones.
    pub mock_feeds: Option<PathBuf>,
    /// The game map (default: the recordings' `games.json`).
    pub games_map: Option<PathBuf>,
    /// Most concurrent WebSocket clients (503 beyond).
    pub max_conns: usize,
    /// Most open client connections of any kind; None: `max_conns` plus room for
    /// HTTP, within what the open-files limit allows.
    pub max_open: Option<usize>,
    /// A request head must be complete this long after the connection opened or the
    /// head's first byte arrived.
    pub header_timeout: Duration,
    /// A connection with no request in progress is closed after this long.
    pub idle_timeout: Duration,
    /// Frames a client may fall behind before it is closed with 4008.
    pub send_queue: usize,
    /// Serialized history kept per game for resume and the timeline, in bytes.
    pub history_bytes: usize,
    pub heartbeat: Duration,
    pub espn_poll: Duration,
    pub upstream_timeout: Duration,
    pub stale_after: Duration,
    pub down_after: Duration,
    /// The longest wait between retries of a failing upstream.
    pub retry_max: Duration,
    pub ws: WsSettings,
    /// SO_SNDBUF for client sockets: bounds kernel memory held for a slow reader.
    pub socket_send_buffer: Option<usize>,
    pub admin_token: Option<String>,
    /// The base of advertised URLs (`--public-url`, `--trust-proxy`).
    pub advertise: Advertise,
    pub faults: Vec<FaultSpec>,
    pub scores: ScoresConfig,
    /// Where live points and scores are written (`--influxdb`); nowhere when None.
    pub influxdb: Option<InfluxTarget>,
    /// Batching, queue and retries of the InfluxDB writer.
    pub influx: WriterConfig,
    /// How long shutdown waits for clients to get their goodbye.
    pub shutdown_grace: Duration,
    /// How often the ops page's figures are sampled (`--ops-every`).
    pub ops_every: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        let mocks = MockConfig::default();
        Self {
            speed: mocks.speed,
            rate: mocks.rate,
            espn_url: None,
            kalshi_url: None,
            kalshi_ws_url: None,
            kalshi_signer: None,
            kalshi_poll: Duration::from_secs(2),
            discover_every: Duration::from_secs(300),
            leagues: vec![League::Nba],
            apisports_url: None,
            apisports_key: None,
            mock_addr: None,
            mock_feeds: None,
            games_map: None,
            max_conns: 20_000,
            max_open: None,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            send_queue: 1024,
            history_bytes: 32 * 1024 * 1024,
            heartbeat: Duration::from_secs(crate::contract::HEARTBEAT_INTERVAL_SECS),
            espn_poll: Duration::from_secs(1),
            upstream_timeout: Duration::from_secs(2),
            stale_after: Duration::from_secs(5),
            down_after: Duration::from_secs(10),
            retry_max: Duration::from_secs(5),
            ws: WsSettings {
                read_buffer: 512,
                write_timeout: Duration::from_secs(5),
                close_grace: Duration::from_secs(2),
                inbound: InboundRate::per_second(DEFAULT_CLIENT_RATE),
                deflate: crate::wire::ServerMode::Shared,
                batch_window: Duration::from_millis(10),
            },
            socket_send_buffer: Some(64 * 1024),
            admin_token: None,
            advertise: Advertise::default(),
            faults: Vec::new(),
            scores: ScoresConfig {
                ttl: Duration::from_secs(15),
                daily_quota: 100,
                per_minute_quota: 10,
                breaker_failures: 3,
                breaker_open_for: Duration::from_secs(30),
            },
            influxdb: None,
            influx: WriterConfig {
                retention: Retention::For(DEFAULT_RETENTION),
                ..WriterConfig::default()
            },
            shutdown_grace: Duration::from_secs(5),
            ops_every: Duration::from_secs(5),
        }
    }
}

impl ServeConfig {
    /// Whether any upstream is one of the built-in mocks.
    pub fn uses_mocks(&self) -> bool {
        self.espn_url.is_none() || self.kalshi_url.is_none() || self.apisports_url.is_none()
    }

    /// The server `load` starts when given no URL: defaults with `rate` ticks/s.
    /// It takes any `--send-rate`: the client frame limit guards a shared server
    /// from strangers, and here the only client is the one measuring.
    pub fn embedded(rate: f64) -> Self {
        let defaults = Self::default();
        Self {
            rate,
            ws: WsSettings {
                inbound: None,
                ..defaults.ws
            },
            ..defaults
        }
    }
}

/// Per-connection socket settings.
#[derive(Debug, Clone, Copy)]
pub struct WsSettings {
    /// Bytes a socket reads at a time, held per connection: client frames are pings
    /// of a few dozen bytes, so 512 B reads them in one call and keeps memory per
    /// connection small (a larger frame grows the buffer while it arrives).
    pub read_buffer: usize,
    /// A write that does not complete in this time marks the client as slow.
    pub write_timeout: Duration,
    /// How long a goodbye (close frame) may take before the socket is dropped.
    pub close_grace: Duration,
    /// Client frames admitted per connection; None: no limit.
    pub inbound: Option<InboundRate>,
    /// How permessage-deflate offers are taken (`--ws-compress`).
    pub deflate: crate::wire::ServerMode,
    /// The shortest time between two writes of a game's stream to one socket
    /// (`--ws-batch-window`): frames published closer together go out together.
    pub batch_window: Duration,
}

/// Client frames per second per connection. The contract's only client frame is a
/// ping, and a client needs one every few seconds at most.
pub const DEFAULT_CLIENT_RATE: u32 = 100;
