//! `livegames serve`: the live games server.
//!
//! [`run`] takes a bound listener and a [`Shutdown`], so tests start it on
//! `127.0.0.1:0` in-process; [`spawn`] does that and returns a [`ServerHandle`].
//!
//! Data path: feeds (ESPN poll, Kalshi stream) → bounded channel → [`aggregator`] →
//! per-game [`hub`] (seq, serialize once, history) → [`ws`] connections.

pub mod admin;
pub mod aggregator;
pub mod app;
pub mod dashboard;
pub mod error;
pub mod hub;
pub mod observe;
pub mod rest;
pub mod scores;
pub mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};

use crate::contract::Source;
use crate::feeds::apisports::ApiSportsClient;
use crate::feeds::catalog::{self, CatalogEntry};
use crate::feeds::espn::EspnFeed;
use crate::feeds::kalshi::KalshiFeed;
use crate::feeds::mock::{self, FaultPlan, FaultSpec, MockConfig, MockState, Recordings};
use crate::feeds::resilience::{Backoff, HealthPolicy};
use crate::feeds::{FEED_CHANNEL_CAPACITY, Feed};
use crate::shutdown::Shutdown;
use hub::{Hub, HubConfig};
use observe::{Metrics, SourceBoard};
use scores::{Scores, ScoresConfig};
use ws::WsSettings;

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
    pub max_conns: usize,
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
    pub faults: Vec<FaultSpec>,
    pub scores: ScoresConfig,
    /// How long shutdown waits for clients to get their goodbye.
    pub shutdown_grace: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            speed: 1.0,
            rate: 2.0,
            espn_url: None,
            kalshi_url: None,
            kalshi_ws_url: None,
            apisports_url: None,
            apisports_key: None,
            mock_addr: None,
            mock_feeds: None,
            games_map: None,
            max_conns: 20_000,
            send_queue: 1024,
            history_bytes: 32 * 1024 * 1024,
            heartbeat: Duration::from_secs(crate::contract::HEARTBEAT_INTERVAL_SECS),
            espn_poll: Duration::from_secs(1),
            upstream_timeout: Duration::from_secs(2),
            stale_after: Duration::from_secs(5),
            down_after: Duration::from_secs(10),
            retry_max: Duration::from_secs(5),
            ws: WsSettings {
                read_buffer: 4 * 1024,
                write_buffer: 8 * 1024,
                write_timeout: Duration::from_secs(5),
                close_grace: Duration::from_secs(2),
            },
            socket_send_buffer: Some(64 * 1024),
            admin_token: None,
            faults: Vec::new(),
            scores: ScoresConfig {
                ttl: Duration::from_secs(15),
                daily_quota: 100,
                per_minute_quota: 10,
                breaker_failures: 3,
                breaker_open_for: Duration::from_secs(30),
            },
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl ServeConfig {
    /// The server `load` starts when given no URL: defaults with `rate` ticks/s.
    pub fn embedded(rate: f64) -> Self {
        Self {
            rate,
            ..Self::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot load the mock recordings: {0}")]
    Recordings(#[from] mock::recordings::RecordingError),
    #[error("cannot read the games map {path}: {source}")]
    GamesMapRead {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Clone)]
pub struct AppState(pub(crate) Arc<AppInner>);

pub(crate) struct AppInner {
    pub hub: Arc<Hub>,
    pub sources: Arc<SourceBoard>,
    pub metrics: Arc<Metrics>,
    pub scores: Scores,
    pub faults: FaultPlan,
    pub admin_token: Option<String>,
    pub conns: Arc<Semaphore>,
    pub ws: WsSettings,
    pub shutdown: Shutdown,
    pub started: Instant,
    pub local_addr: SocketAddr,
}

/// A server running in this process.
pub struct ServerHandle {
    pub local_addr: SocketAddr,
    pub shutdown: Shutdown,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl ServerHandle {
    pub fn http_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.local_addr)
    }

    /// Shuts the server down gracefully and waits for it.
    pub async fn stop(self) -> Result<(), ServeError> {
        self.shutdown.trigger();
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(ServeError::Io(std::io::Error::other(e))),
        }
    }
}

/// How many connections may wait to be accepted. tokio's default (1024) overflows
/// when thousands of clients connect at once, and each overflow costs the client a
/// SYN retransmit (1 s); the kernel caps this at `net.core.somaxconn`.
pub const LISTEN_BACKLOG: u32 = 8192;

/// Binds a listener with [`LISTEN_BACKLOG`].
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Binds `addr` and runs the server in a task of this runtime.
pub async fn spawn(config: ServeConfig, addr: &str) -> Result<ServerHandle, ServeError> {
    let parsed: SocketAddr = addr.parse().map_err(|e| ServeError::Bind {
        addr: addr.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
    })?;
    let listener = bind(parsed).map_err(|source| ServeError::Bind {
        addr: addr.to_owned(),
        source,
    })?;
    let local_addr = listener.local_addr()?;
    let shutdown = Shutdown::new();
    let task = tokio::spawn(run(config, listener, shutdown.clone()));
    Ok(ServerHandle {
        local_addr,
        shutdown,
        task,
    })
}

/// Runs the server on `listener` until `shutdown` is triggered, then says goodbye to
/// every client (close 1001) and returns.
pub async fn run(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: Shutdown,
) -> Result<(), ServeError> {
    let local_addr = listener.local_addr()?;
    let started = Instant::now();
    let recordings = match &config.mock_feeds {
        Some(dir) => Recordings::from_dir(dir)?,
        None => Recordings::embedded()?,
    };
    let catalog = load_catalog(&config, &recordings)?;
    let faults = FaultPlan::new();
    for spec in &config.faults {
        faults.inject(spec, started);
    }
    let mock_config = MockConfig {
        speed: config.speed,
        rate: config.rate,
        ..MockConfig::default()
    };
    let mock_state = MockState::new(
        recordings,
        mock_config,
        faults.clone(),
        started,
        shutdown.clone(),
    );
    let mock_base = match config.mock_addr {
        Some(addr) => {
            let mock_listener =
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind {
                        addr: addr.to_string(),
                        source,
                    })?;
            let mock_addr = mock_listener.local_addr()?;
            let router = axum::Router::new().nest("/mock", mock::router(mock_state.clone()));
            let stop = shutdown.clone();
            shutdown.spawn(async move {
                let serve = axum::serve(mock_listener, router)
                    .with_graceful_shutdown(async move { stop.triggered().await });
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "mock upstream server failed");
                }
            });
            tracing::info!(%mock_addr, "mock upstreams listening");
            format!("http://{mock_addr}/mock")
        }
        None => format!("http://{local_addr}/mock"),
    };

    let metrics = Arc::new(Metrics::new());
    let sources = Arc::new(SourceBoard::new(&[Source::Espn, Source::Kalshi]));
    let infos = catalog.iter().map(|c| c.info.clone()).collect();
    let hub = Arc::new(Hub::new(
        infos,
        aggregator::initial_point(),
        HubConfig {
            queue: config.send_queue,
            history_bytes: config.history_bytes,
        },
    ));
    let http = reqwest::Client::builder()
        .user_agent(concat!("livegames/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(config.upstream_timeout)
        .build()
        .map_err(|e| ServeError::HttpClient(e.to_string()))?;

    let apisports_on_mock = config.apisports_url.is_none();
    let apisports_url = config
        .apisports_url
        .clone()
        .unwrap_or_else(|| format!("{mock_base}/apisports/{{sport}}"));
    let apisports_key = config
        .apisports_key
        .clone()
        .or_else(|| apisports_on_mock.then(|| mock::DEFAULT_APISPORTS_KEY.to_owned()));
    let scores = Scores::new(
        ApiSportsClient::new(
            http.clone(),
            &apisports_url,
            apisports_key,
            config.upstream_timeout,
        ),
        config.scores,
        metrics.clone(),
    );

    start_feeds(
        &config,
        &catalog,
        &mock_base,
        http,
        hub.clone(),
        sources.clone(),
        metrics.clone(),
        &shutdown,
    );

    let state = AppState(Arc::new(AppInner {
        hub,
        sources,
        metrics,
        scores,
        faults,
        admin_token: config.admin_token.clone(),
        conns: Arc::new(Semaphore::new(config.max_conns)),
        ws: config.ws,
        shutdown: shutdown.clone(),
        started,
        local_addr,
    }));
    let mut router = app::router(state);
    if config.mock_addr.is_none() {
        router = router.nest("/mock", mock::router(mock_state));
    }
    tracing::info!(%local_addr, speed = config.speed, rate = config.rate, games = catalog.len(), "serving live games");

    let send_buffer = config.socket_send_buffer;
    let listener = listener.tap_io(move |tcp| {
        let _ = tcp.set_nodelay(true);
        if let Some(bytes) = send_buffer {
            let _ = socket2::SockRef::from(&*tcp).set_send_buffer_size(bytes);
        }
    });
    let stop = shutdown.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.triggered().await })
        .await?;
    if !shutdown.drain(config.shutdown_grace).await {
        tracing::warn!(grace = ?config.shutdown_grace, "some tasks were still running when the shutdown grace period ended");
    }
    tracing::info!("server stopped");
    Ok(())
}

fn load_catalog(
    config: &ServeConfig,
    recordings: &Recordings,
) -> Result<Vec<CatalogEntry>, ServeError> {
    let text = match &config.games_map {
        Some(path) => std::fs::read_to_string(path).map_err(|source| ServeError::GamesMapRead {
            path: path.display().to_string(),
            source,
        })?,
        None => recordings.games_map.clone(),
    };
    Ok(catalog::parse(&text)?)
}

#[allow(clippy::too_many_arguments)] // wiring: each argument is a distinct shared part
fn start_feeds(
    config: &ServeConfig,
    catalog: &[CatalogEntry],
    mock_base: &str,
    http: reqwest::Client,
    hub: Arc<Hub>,
    sources: Arc<SourceBoard>,
    metrics: Arc<Metrics>,
    shutdown: &Shutdown,
) {
    let health = HealthPolicy {
        stale_after: config.stale_after,
        down_after: config.down_after,
    };
    let backoff = Backoff {
        base: Duration::from_millis(100).min(config.retry_max),
        max: config.retry_max,
    };
    let espn_url = config
        .espn_url
        .clone()
        .unwrap_or_else(|| format!("{mock_base}/espn"));
    let kalshi_url = config
        .kalshi_url
        .clone()
        .unwrap_or_else(|| format!("{mock_base}/kalshi/trade-api/v2"));
    let kalshi_ws_url = config
        .kalshi_ws_url
        .clone()
        .unwrap_or_else(|| kalshi_ws_from_rest(&kalshi_url));
    let tickers = catalog
        .iter()
        .map(|c| c.kalshi_home_market.clone())
        .collect();
    let feeds: Vec<Arc<dyn Feed>> = vec![
        Arc::new(EspnFeed::new(
            http.clone(),
            &espn_url,
            config.espn_poll,
            config.upstream_timeout,
            health,
            backoff,
        )),
        Arc::new(KalshiFeed::new(
            http,
            &kalshi_url,
            &kalshi_ws_url,
            tickers,
            config.upstream_timeout,
            health,
            backoff,
        )),
    ];
    let (events_tx, events_rx) = mpsc::channel(FEED_CHANNEL_CAPACITY);
    for feed in feeds {
        tracing::debug!(source = %feed.source(), "starting feed");
        shutdown.spawn(feed.run(events_tx.clone(), shutdown.token().clone()));
    }
    let aggregator = aggregator::Aggregator::new(hub, catalog, sources, metrics, config.heartbeat);
    shutdown.spawn(aggregator.run(events_rx, shutdown.token().clone()));
}

/// `https://host/trade-api/v2` → `wss://host/trade-api/ws/v2` (Kalshi's layout).
fn kalshi_ws_from_rest(rest: &str) -> String {
    let ws = rest
        .replacen("https://", "wss://", 1)
        .replacen("http://", "ws://", 1);
    match ws.strip_suffix("/trade-api/v2") {
        Some(base) => format!("{base}/trade-api/ws/v2"),
        None => format!("{}/ws", ws.trim_end_matches('/')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kalshi_ws_url_follows_the_rest_url() {
        assert_eq!(
            kalshi_ws_from_rest("https://api.elections.kalshi.com/trade-api/v2"),
            "wss://api.elections.kalshi.com/trade-api/ws/v2"
        );
        assert_eq!(
            kalshi_ws_from_rest("http://127.0.0.1:9/mock/kalshi/trade-api/v2"),
            "ws://127.0.0.1:9/mock/kalshi/trade-api/ws/v2"
        );
    }
}
