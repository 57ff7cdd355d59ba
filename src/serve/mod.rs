//! `livegames serve`: the live games server.
//!
//! [`run`] takes a bound listener and a [`Shutdown`], so tests start it on
//! `127.0.0.1:0` in-process; [`spawn`] does that and returns a [`ServerHandle`].
//!
//! Data path: feeds (ESPN poll, Kalshi stream) → bounded channel → [`aggregator`] →
//! per-game [`hub`] (seq, serialize once, history) → [`ws`] connections.

pub mod admin;
pub mod advertise;
pub mod aggregator;
pub mod app;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod hub;
pub mod inbound;
pub mod listen;
pub mod observe;
pub mod probes;
pub mod rest;
pub mod scores;
pub mod state;
pub mod store;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};

use crate::contract::Source;
use crate::feeds::apisports::ApiSportsClient;
use crate::feeds::catalog::{self, CatalogEntry};
use crate::feeds::espn::EspnFeed;
use crate::feeds::health::{HealthPolicy, Stalls};
use crate::feeds::kalshi::KalshiFeed;
use crate::feeds::{FEED_CHANNEL_CAPACITY, Feed};
use crate::influx::Writer;
use crate::mocks::{self, FaultPlan, MockConfig, MockState, Recordings};
use crate::retry::Backoff;
use crate::shutdown::Shutdown;
pub use config::{ServeConfig, WsSettings};
use hub::{Hub, HubConfig};
use observe::{Metrics, SourceBoard};
use scores::Scores;
use state::{AppInner, AppState};
use store::Store;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot load the mock recordings: {0}")]
    Recordings(#[from] mocks::recordings::RecordingError),
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
    let mock_state = mock_upstreams(&config, recordings, &faults, started, &shutdown);
    // The feeds reach the mocks on a listener of their own: a crowd at the public
    // door must not cut the server off from its upstreams.
    let mock_addr = config
        .mock_addr
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let mock_base = if config.uses_mocks() {
        serve_mocks_apart(mock_addr, mock_state.clone(), &shutdown).await?
    } else {
        String::new()
    };
    let http = reqwest::Client::builder()
        .user_agent(concat!("livegames/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(config.upstream_timeout)
        .build()
        .map_err(|e| ServeError::HttpClient(e.to_string()))?;
    let metrics = Arc::new(Metrics::new());
    let public_metrics = metrics.clone();
    let sources = Arc::new(SourceBoard::new(&[Source::Espn, Source::Kalshi]));
    let hub = Arc::new(Hub::new(
        catalog.iter().map(|c| c.info.clone()).collect(),
        aggregator::initial_point(),
        HubConfig {
            queue: config.send_queue,
            history_bytes: config.history_bytes,
        },
        &new_epoch(),
    ));
    let store = start_store(&config, &http, &metrics, &shutdown);
    let scores = scores_service(
        &config,
        &mock_base,
        http.clone(),
        metrics.clone(),
        store.clone(),
    );
    let wiring = Wiring {
        config: &config,
        catalog: &catalog,
        mock_base: &mock_base,
        hub: hub.clone(),
        sources: sources.clone(),
        metrics: metrics.clone(),
        store: store.clone(),
        shutdown: &shutdown,
    };
    wiring.start_feeds(http);
    let state = AppState(Arc::new(AppInner {
        hub,
        sources,
        metrics,
        scores,
        store,
        faults,
        admin_token: config.admin_token.clone(),
        advertise: config.advertise.clone(),
        conns: Arc::new(Semaphore::new(config.max_conns)),
        ws: config.ws,
        shutdown: shutdown.clone(),
        started,
        local_addr,
    }));
    let mut router = app::router(state);
    if config.mock_addr.is_none() && config.uses_mocks() {
        // For people to look at; the feeds use their own listener.
        router = router.nest("/mock", mocks::router(mock_state));
    }
    let settings = listen_settings(&config);
    tracing::info!(%local_addr, speed = config.speed, rate = config.rate, games = catalog.len(), max_open = settings.max_open, "serving live games");
    serve_until_shutdown(
        &config,
        listener,
        router,
        settings,
        public_metrics,
        &shutdown,
    )
    .await
}

/// The mock upstreams replaying `recordings` at the configured speed and rate, with
/// the server's fault plan.
fn mock_upstreams(
    config: &ServeConfig,
    recordings: Recordings,
    faults: &FaultPlan,
    started: Instant,
    shutdown: &Shutdown,
) -> MockState {
    let mock_config = MockConfig {
        speed: config.speed,
        rate: config.rate,
        ..MockConfig::default()
    };
    MockState::new(
        recordings,
        mock_config,
        faults.clone(),
        started,
        shutdown.clone(),
    )
}

/// Serves the mock upstreams on their own address (`--mock-addr`, else an ephemeral
/// loopback port); returns their base URL.
async fn serve_mocks_apart(
    addr: SocketAddr,
    mock_state: MockState,
    shutdown: &Shutdown,
) -> Result<String, ServeError> {
    let mock_listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let mock_addr = mock_listener.local_addr()?;
    let router = axum::Router::new().nest("/mock", mocks::router(mock_state));
    let settings = listen::ListenSettings {
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(90),
        max_open: MOCK_MAX_OPEN,
        send_buffer: None,
    };
    // Their own counters: the mocks' connections are not the server's clients.
    let metrics = Arc::new(Metrics::new());
    let stop = shutdown.clone();
    shutdown.spawn(async move {
        if let Err(e) = listen::serve(mock_listener, router, settings, metrics, stop).await {
            tracing::error!(error = %e, "mock upstream server failed");
        }
    });
    tracing::info!(%mock_addr, "mock upstreams listening");
    Ok(format!("http://{mock_addr}/mock"))
}

/// Connections the mock upstreams take at once (the feeds use a handful).
const MOCK_MAX_OPEN: usize = 32;

/// File descriptors kept back from `--max-open` for everything else: the mocks'
/// listener and their connections, upstream clients, logs, the runtime.
pub const RESERVED_FILES: usize = 64 + 2 * MOCK_MAX_OPEN;

/// The public listener's settings: `--max-open` (or `--max-conns` plus room for
/// HTTP) within what the open-files limit leaves.
fn listen_settings(config: &ServeConfig) -> listen::ListenSettings {
    let wanted = config
        .max_open
        .unwrap_or(config.max_conns.saturating_add(1024));
    let (max_open, files) = listen::max_open_within_files(wanted, RESERVED_FILES);
    if max_open < wanted {
        tracing::warn!(
            wanted,
            max_open,
            open_files_limit = files,
            "fewer open connections than asked: the open-files limit leaves room for {max_open} (raise it with `ulimit -n` or LimitNOFILE=)"
        );
    }
    listen::ListenSettings {
        header_timeout: config.header_timeout,
        idle_timeout: config.idle_timeout,
        max_open,
        send_buffer: config.socket_send_buffer,
    }
}

/// The NFL/NHL scores behind their cache, quota and circuit breaker, on API-SPORTS or
/// its mock (with the mock's key).
fn scores_service(
    config: &ServeConfig,
    mock_base: &str,
    http: reqwest::Client,
    metrics: Arc<Metrics>,
    store: Store,
) -> Scores {
    let on_mock = config.apisports_url.is_none();
    let url = config
        .apisports_url
        .clone()
        .unwrap_or_else(|| format!("{mock_base}/apisports/{{sport}}"));
    let key = config
        .apisports_key
        .clone()
        .or_else(|| on_mock.then(|| mocks::DEFAULT_APISPORTS_KEY.to_owned()));
    let client = ApiSportsClient::new(http, &url, key, config.upstream_timeout);
    Scores::new(client, config.scores, metrics, store)
}

/// The InfluxDB writer (`--influxdb`), its sending task owned by the shutdown so the
/// queue is drained on the way out; without `--influxdb`, a store that keeps nothing.
fn start_store(
    config: &ServeConfig,
    http: &reqwest::Client,
    metrics: &Arc<Metrics>,
    shutdown: &Shutdown,
) -> Store {
    let Some(target) = config.influxdb.clone() else {
        return Store::default();
    };
    tracing::info!(influxdb = %target.display, "writing live points and scores to InfluxDB");
    let observer = Arc::new(store::StoreMetrics(metrics.clone()));
    let (writer, task) = Writer::new(target, config.influx.clone(), http.clone(), observer);
    shutdown.spawn(task.run(shutdown.token().clone()));
    Store::new(Some(writer))
}

/// Accepts clients until the shutdown, then waits (up to the grace period) for every
/// owned task to say goodbye.
async fn serve_until_shutdown(
    config: &ServeConfig,
    listener: TcpListener,
    router: axum::Router,
    settings: listen::ListenSettings,
    metrics: Arc<Metrics>,
    shutdown: &Shutdown,
) -> Result<(), ServeError> {
    listen::serve(listener, router, settings, metrics, shutdown.clone()).await?;
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

/// The shared parts the feeds and the aggregator are started with.
struct Wiring<'a> {
    config: &'a ServeConfig,
    catalog: &'a [CatalogEntry],
    mock_base: &'a str,
    hub: Arc<Hub>,
    sources: Arc<SourceBoard>,
    metrics: Arc<Metrics>,
    store: Store,
    shutdown: &'a Shutdown,
}

impl Wiring<'_> {
    /// Starts the ESPN and Kalshi feeds and the aggregator that merges them, each a
    /// task owned by the shutdown.
    fn start_feeds(self, http: reqwest::Client) {
        let config = self.config;
        // Each source publishes its own last success; all share one stall watch.
        let stalls = Stalls::default();
        self.shutdown
            .spawn(watch_stalls(stalls.clone(), self.shutdown.token().clone()));
        let health = |source: Source| {
            let policy = HealthPolicy {
                stalls: stalls.clone(),
                ..HealthPolicy::new(config.stale_after, config.down_after)
            };
            self.sources.watch(source, policy.liveness.clone());
            policy
        };
        let backoff = Backoff {
            base: Duration::from_millis(100).min(config.retry_max),
            max: config.retry_max,
        };
        let espn_url = config
            .espn_url
            .clone()
            .unwrap_or_else(|| format!("{}/espn", self.mock_base));
        let kalshi_url = config
            .kalshi_url
            .clone()
            .unwrap_or_else(|| format!("{}/kalshi/trade-api/v2", self.mock_base));
        let kalshi_ws_url = config
            .kalshi_ws_url
            .clone()
            .unwrap_or_else(|| kalshi_ws_from_rest(&kalshi_url));
        let tickers = self
            .catalog
            .iter()
            .map(|c| c.kalshi_home_market.clone())
            .collect();
        let feeds: Vec<Arc<dyn Feed>> = vec![
            Arc::new(EspnFeed::new(
                http.clone(),
                &espn_url,
                config.espn_poll,
                config.upstream_timeout,
                health(Source::Espn),
                backoff,
            )),
            Arc::new(KalshiFeed::new(
                http,
                &kalshi_url,
                &kalshi_ws_url,
                tickers,
                config.upstream_timeout,
                health(Source::Kalshi),
                backoff,
            )),
        ];
        let (events_tx, events_rx) = mpsc::channel(FEED_CHANNEL_CAPACITY);
        for feed in feeds {
            tracing::debug!(source = %feed.source(), "starting feed");
            self.shutdown
                .spawn(feed.run(events_tx.clone(), self.shutdown.token().clone()));
        }
        let aggregator = aggregator::Aggregator::new(
            self.hub,
            self.catalog,
            self.sources,
            self.metrics,
            self.store,
            config.heartbeat,
        );
        self.shutdown
            .spawn(aggregator.run(events_rx, self.shutdown.token().clone()));
    }
}

/// A name for this run of the server, different at each start (and between replicas):
/// the start time in µs, the process id, and which server of this process it is.
fn new_epoch() -> String {
    static STARTED_IN_THIS_PROCESS: std::sync::atomic::AtomicU32 =
        std::sync::atomic::AtomicU32::new(0);
    let micros = crate::clock::unix_micros();
    let nth = STARTED_IN_THIS_PROCESS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{micros:x}-{:x}-{nth}", std::process::id())
}

/// How often the stall watch looks at the clock (well under `Stalls::AFTER`).
const STALL_WATCH_EVERY: Duration = Duration::from_millis(100);

/// Measures the time this process did not run (a `kill -STOP`, a starved machine), so
/// that source health does not count it as the sources' silence.
async fn watch_stalls(stalls: Stalls, stop: tokio_util::sync::CancellationToken) {
    let mut ticker = tokio::time::interval(STALL_WATCH_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Some(gap) = stalls.observe(Instant::now()) {
            tracing::info!(stalled = ?gap, "the process did not run for a while; source health does not count it");
        }
    }
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
