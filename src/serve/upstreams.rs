//! Where `serve`'s data comes from: the games map, the mock upstreams (served on a
//! listener of their own), the ESPN and Kalshi feeds with the aggregator that merges
//! them, and the API-SPORTS client behind scores. One code path for the real
//! upstreams and the mocks: a mock is only a base URL the clients are given.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::aggregator::Aggregator;
use super::config::ServeConfig;
use super::error::ServeError;
use super::listen;
use super::observe::{Metrics, SourceBoard};
use super::scores::Scores;
use super::store::Store;
use super::stream::hub::Hub;
use crate::contract::Source;
use crate::feeds::apisports::ApiSportsClient;
use crate::feeds::catalog::{self, CatalogEntry};
use crate::feeds::espn::EspnFeed;
use crate::feeds::health::{HealthPolicy, Stalls};
use crate::feeds::kalshi::{Access, KalshiEndpoints, KalshiFeed};
use crate::feeds::{FEED_CHANNEL_CAPACITY, Feed};
use crate::mocks::{self, FaultPlan, MockConfig, MockState, Recordings};
use crate::retry::Backoff;
use crate::shutdown::Shutdown;

/// The upstreams of one server, once started.
pub(super) struct Upstreams {
    /// The games served, each joined to its ESPN event and Kalshi market.
    pub catalog: Vec<CatalogEntry>,
    /// Faults injected into the mocks (`--fault`, `/admin/faults`).
    pub faults: FaultPlan,
    /// The mock upstreams' state, also served under `/mock` on the public listener.
    pub mocks: MockState,
    /// The mocks' base URL on their own listener (empty when no upstream is a mock).
    pub mock_base: String,
    /// One HTTP client for every upstream.
    pub http: reqwest::Client,
    /// How the Kalshi feed reaches Kalshi: signed (the stream) or polling.
    pub kalshi: Access,
}

impl Upstreams {
    /// Reads the recordings and the games map, injects the configured faults, serves
    /// the mocks where any upstream is one, and builds the HTTP client.
    pub(super) async fn start(
        config: &ServeConfig,
        started: Instant,
        shutdown: &Shutdown,
    ) -> Result<Upstreams, ServeError> {
        let recordings = match &config.mock_feeds {
            Some(dir) => Recordings::from_dir(dir)?,
            None => Recordings::embedded()?,
        };
        let catalog = load_catalog(config, &recordings)?;
        let faults = FaultPlan::new();
        for spec in &config.faults {
            faults.inject(spec, started);
        }
        let kalshi = kalshi_access(config)?;
        let mocks = mock_upstreams(config, recordings, &faults, &kalshi, started, shutdown);
        // The feeds reach the mocks on a listener of their own: a crowd at the public
        // door must not cut the server off from its upstreams.
        let mock_addr = config
            .mock_addr
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let mock_base = if config.uses_mocks() {
            serve_mocks_apart(mock_addr, mocks.clone(), shutdown).await?
        } else {
            String::new()
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("livegames/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.upstream_timeout)
            .build()
            .map_err(|e| ServeError::HttpClient(e.to_string()))?;
        Ok(Upstreams {
            catalog,
            faults,
            mocks,
            mock_base,
            http,
            kalshi,
        })
    }
}

/// The mock upstreams replaying `recordings` at the configured speed and rate, with
/// the server's fault plan.
fn mock_upstreams(
    config: &ServeConfig,
    recordings: Recordings,
    faults: &FaultPlan,
    kalshi: &Access,
    started: Instant,
    shutdown: &Shutdown,
) -> MockState {
    // The mock Kalshi checks the signatures of the key the feed signs with.
    let kalshi_verifier = match (kalshi, &config.kalshi_url) {
        (Access::Signed(signer), None) => Some(signer.verifier()),
        _ => None,
    };
    let mock_config = MockConfig {
        speed: config.speed,
        rate: config.rate,
        kalshi_verifier,
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
pub(super) const MOCK_MAX_OPEN: usize = 32;

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

/// What the aggregator publishes into and reports through.
pub(super) struct Outlets {
    pub hub: Arc<Hub>,
    pub sources: Arc<SourceBoard>,
    pub metrics: Arc<Metrics>,
    pub store: Store,
}

impl Upstreams {
    /// Starts the ESPN and Kalshi feeds and the aggregator that merges them into
    /// `outlets`, each a task owned by the shutdown.
    pub(super) fn start_feeds(&self, config: &ServeConfig, outlets: Outlets, shutdown: &Shutdown) {
        // Each source publishes its own last success; all share one stall watch.
        let stalls = Stalls::default();
        shutdown.spawn(watch_stalls(stalls.clone(), shutdown.token().clone()));
        let health = |source: Source| {
            let policy = HealthPolicy {
                stalls: stalls.clone(),
                ..HealthPolicy::new(config.stale_after, config.down_after)
            };
            outlets.sources.watch(source, policy.liveness.clone());
            policy
        };
        let (events_tx, events_rx) = mpsc::channel(FEED_CHANNEL_CAPACITY);
        for feed in self.feeds(config, health) {
            tracing::debug!(source = %feed.source(), "starting feed");
            shutdown.spawn(feed.run(events_tx.clone(), shutdown.token().clone()));
        }
        let aggregator = Aggregator::new(
            outlets.hub,
            &self.catalog,
            outlets.sources,
            outlets.metrics,
            outlets.store,
            config.heartbeat,
        );
        shutdown.spawn(aggregator.run(events_rx, shutdown.token().clone()));
    }

    /// The ESPN and Kalshi clients, on the real APIs or on the mocks, each with the
    /// health policy `health` gives its source.
    fn feeds(
        &self,
        config: &ServeConfig,
        health: impl Fn(Source) -> HealthPolicy,
    ) -> Vec<Arc<dyn Feed>> {
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
            .filter_map(|c| c.kalshi_home_market.clone())
            .collect();
        let espn = EspnFeed::new(
            self.http.clone(),
            &espn_url,
            config.espn_poll,
            config.upstream_timeout,
            health(Source::Espn),
            backoff,
        );
        let endpoints = KalshiEndpoints {
            rest_url: kalshi_url,
            ws_url: kalshi_ws_url,
            access: self.kalshi.clone(),
            tickers,
        };
        let kalshi = KalshiFeed::new(
            self.http.clone(),
            endpoints,
            config.upstream_timeout,
            health(Source::Kalshi),
            backoff,
        );
        vec![Arc::new(espn), Arc::new(kalshi)]
    }

    /// The NFL/NHL scores behind their cache, quota and circuit breaker, on API-SPORTS
    /// or its mock (with the mock's key).
    pub(super) fn scores(
        &self,
        config: &ServeConfig,
        metrics: Arc<Metrics>,
        store: Store,
    ) -> Scores {
        let on_mock = config.apisports_url.is_none();
        let url = config
            .apisports_url
            .clone()
            .unwrap_or_else(|| format!("{}/apisports/{{sport}}", self.mock_base));
        let key = config
            .apisports_key
            .clone()
            .or_else(|| on_mock.then(|| mocks::DEFAULT_APISPORTS_KEY.to_owned()));
        let client = ApiSportsClient::new(self.http.clone(), &url, key, config.upstream_timeout);
        Scores::new(client, config.scores, metrics, store)
    }
}

/// How the feed reaches Kalshi: with the configured key; on the mock without one,
/// with the mock's own key (so the default run signs, as a deployment does); on the
/// real Kalshi without one, by polling its REST API, which is said at start.
fn kalshi_access(config: &ServeConfig) -> Result<Access, ServeError> {
    if let Some(signer) = &config.kalshi_signer {
        tracing::info!(
            key_id = signer.key_id(),
            "signing Kalshi requests; streaming tickers"
        );
        return Ok(Access::Signed(signer.clone()));
    }
    if config.kalshi_url.is_none() {
        return Ok(Access::Signed(Arc::new(mocks::mock_kalshi_signer()?)));
    }
    tracing::warn!(
        every = %crate::units::show_duration(config.kalshi_poll),
        "no Kalshi key (--kalshi-key-id, --kalshi-private-key): polling Kalshi's REST API instead of streaming; /health says so"
    );
    Ok(Access::Polling(config.kalshi_poll))
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
