//! `livegames serve`: the live games server.
//!
//! [`run`] takes a bound listener and a [`Shutdown`], so tests start it on
//! `127.0.0.1:0` in-process; [`spawn`] does that and returns a [`ServerHandle`].
//!
//! Data path: [`upstreams`] (ESPN poll, Kalshi stream, or their mocks) → bounded
//! channel → [`aggregator`] → per-game [`stream::hub`] (seq, serialize once, history)
//! → [`api::websocket`] sessions, one per client. Around it: the accept loop
//! ([`listen`]), the router ([`app`]) and its HTTP [`api`], [`scores`] from
//! API-SPORTS, what is [`observe`]d, and the InfluxDB [`store`].

pub mod advertise;
pub mod aggregator;
pub mod api;
pub mod app;
pub mod config;
mod discovery;
pub mod error;
pub mod listen;
pub mod observe;
pub mod scores;
pub mod state;
pub mod store;
pub mod stream;
mod upstreams;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::contract::Source;
use crate::influx::Writer;
use crate::mocks;
use crate::shutdown::Shutdown;
pub use config::{ServeConfig, WsSettings};
pub use error::ServeError;
use observe::ops::OpsHistory;
use observe::{Metrics, SourceBoard};
use state::{AppInner, AppState};
use store::Store;
use stream::hub::{Hub, HubConfig};
use upstreams::{MOCK_MAX_OPEN, Outlets, Upstreams};

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
    let upstreams = Upstreams::start(&config, started, &shutdown).await?;
    let metrics = Arc::new(Metrics::new());
    let sources = Arc::new(SourceBoard::new(&[Source::Espn, Source::Kalshi]));
    let hub = Arc::new(Hub::new(
        upstreams.catalog.iter().map(|c| c.info.clone()).collect(),
        aggregator::initial_point(),
        HubConfig {
            queue: config.send_queue,
            history_bytes: config.history_bytes,
        },
        &new_epoch(),
    ));
    let store = start_store(&config, &upstreams.http, &metrics, &shutdown);
    let scores = upstreams.scores(&config, metrics.clone(), store.clone());
    let outlets = Outlets {
        hub: hub.clone(),
        sources: sources.clone(),
        metrics: metrics.clone(),
        store: store.clone(),
    };
    upstreams.start_feeds(&config, outlets, &shutdown);
    let state = AppState(Arc::new(AppInner {
        hub,
        sources,
        metrics: metrics.clone(),
        scores,
        store,
        faults: upstreams.faults.clone(),
        admin_token: config.admin_token.clone(),
        advertise: config.advertise.clone(),
        conns: Arc::new(Semaphore::new(config.max_conns)),
        ws: config.ws,
        shutdown: shutdown.clone(),
        started,
        local_addr,
        ops: OpsHistory::default(),
    }));
    shutdown.spawn(api::ops::sample_every(
        state.clone(),
        config.ops_every,
        shutdown.token().clone(),
    ));
    let mut router = app::router(state);
    if config.mock_addr.is_none() && config.uses_mocks() {
        // For people to look at; the feeds use their own listener.
        router = router.nest("/mock", mocks::router(upstreams.mocks.clone()));
    }
    let settings = listen_settings(&config);
    tracing::info!(%local_addr, speed = config.speed, rate = config.rate, games = upstreams.catalog.len(), max_open = settings.max_open, "serving live games");
    serve_until_shutdown(&config, listener, router, settings, metrics, &shutdown).await
}

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

/// A name for this run of the server, different at each start (and between replicas):
/// the start time in µs, the process id, and which server of this process it is.
fn new_epoch() -> String {
    static STARTED_IN_THIS_PROCESS: std::sync::atomic::AtomicU32 =
        std::sync::atomic::AtomicU32::new(0);
    let micros = crate::clock::unix_micros();
    let nth = STARTED_IN_THIS_PROCESS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{micros:x}-{:x}-{nth}", std::process::id())
}
