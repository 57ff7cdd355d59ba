//! Where `serve`'s data comes from: the games map, the mock upstreams (served on a
//! listener of their own), the ESPN and Kalshi feeds with the aggregator that merges
//! them, and the API-SPORTS client behind scores. One code path for the real
//! upstreams and the mocks: a mock is only a base URL the clients are given.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::aggregator::Aggregator;
use super::config::ServeConfig;
use super::discovery::{Finder, say_unmatched};
use super::error::ServeError;
use super::listen;
use super::observe::{Metrics, SourceBoard};
use super::scores::Scores;
use super::store::Store;
use super::stream::hub::Hub;
use crate::contract::Source;
use crate::feeds::apisports::ApiSportsClient;
use crate::feeds::catalog::{self, CatalogEntry};
use crate::feeds::discovery::{Discovered, Teams};
use crate::feeds::espn::EspnFeed;
use crate::feeds::health::{HealthPolicy, Stalls};
use crate::feeds::kalshi::{Access, KalshiEndpoints, KalshiFeed};
use crate::feeds::rounds::Upstream;
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
    /// The ESPN and Kalshi clients (their loops start with [`Upstreams::start_feeds`]).
    pub espn: Arc<EspnFeed>,
    pub kalshi: Arc<KalshiFeed>,
    /// Where the Kalshi feed learns which markets to follow.
    tickers: watch::Sender<Vec<String>>,
    /// What measures the process' stalls for every source's health.
    stalls: Stalls,
    /// Finds the games again on a schedule; None with a games map.
    finder: Option<Arc<Finder>>,
    /// What the first discovery found (None with a games map).
    found: Option<Discovered>,
}

impl Upstreams {
    /// Reads the recordings and the games map, injects the configured faults, serves
    /// the mocks where any upstream is one, and builds the HTTP client.
    pub(super) async fn start(
        config: &ServeConfig,
        started: Instant,
        shutdown: &Shutdown,
    ) -> Result<Upstreams, ServeError> {
        let mut recordings = match &config.mock_feeds {
            Some(dir) => Recordings::from_dir(dir)?,
            None => Recordings::embedded()?,
        };
        // The mocks show today's games, as the real upstreams would.
        recordings.served_on(crate::clock::unix_seconds() as i64);
        let known = mock_games(config, &recordings)?;
        let names = known
            .iter()
            .map(|entry| (entry.espn_event_id.clone(), entry.info.id.clone()))
            .collect();
        let games_map = read_games_map(config)?;
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
        let stalls = Stalls::default();
        let (tickers, tickers_rx) = watch::channel(Vec::new());
        let clients = Clients {
            config,
            http: &http,
            mock_base: &mock_base,
            stalls: &stalls,
        };
        let espn = Arc::new(clients.espn());
        let kalshi = Arc::new(clients.kalshi(kalshi, tickers_rx));
        let (catalog, finder, found) = match games_map {
            Some(catalog) => (catalog, None, None),
            None => {
                let finder = Arc::new(Finder {
                    espn: espn.clone(),
                    kalshi: kalshi.clone(),
                    teams: Teams::builtin()?,
                    names,
                });
                let (catalog, found) = first_discovery(&finder, known).await;
                (catalog, Some(finder), found)
            }
        };
        Ok(Upstreams {
            catalog,
            faults,
            mocks,
            mock_base,
            http,
            espn,
            kalshi,
            tickers,
            stalls,
            finder,
            found,
        })
    }
}

/// The games to serve from the start, and what discovery found. When the upstreams do
/// not answer, the games `known` beforehand (the mock's own, on the mocks; none on the
/// real upstreams) and a warning: the schedule looks again.
async fn first_discovery(
    finder: &Finder,
    known: Vec<CatalogEntry>,
) -> (Vec<CatalogEntry>, Option<Discovered>) {
    match finder.find().await {
        Ok(found) => {
            say_unmatched(&found);
            (found.games.clone(), Some(found))
        }
        Err(e) => {
            tracing::warn!(error = %e, known = known.len(), "cannot find the day's games yet; serving the games known so far and looking again on schedule");
            (known, None)
        }
    }
}

/// A games map given with `--games-map`, read now.
fn read_games_map(config: &ServeConfig) -> Result<Option<Vec<CatalogEntry>>, ServeError> {
    let Some(path) = &config.games_map else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|source| ServeError::GamesMapRead {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Some(catalog::parse(&text)?))
}

/// The mock ESPN's games as its recordings' map names them (by their NBA game ids, so
/// the default run serves `0022400196`); none when ESPN is the real one, whose games
/// go by ESPN's event ids.
fn mock_games(
    config: &ServeConfig,
    recordings: &Recordings,
) -> Result<Vec<CatalogEntry>, ServeError> {
    if config.espn_url.is_some() {
        return Ok(Vec::new());
    }
    Ok(catalog::parse(&recordings.games_map)?)
}

/// What the ESPN and Kalshi clients are built from.
struct Clients<'a> {
    config: &'a ServeConfig,
    http: &'a reqwest::Client,
    mock_base: &'a str,
    stalls: &'a Stalls,
}

impl Clients<'_> {
    fn health(&self) -> HealthPolicy {
        HealthPolicy {
            stalls: self.stalls.clone(),
            ..HealthPolicy::new(self.config.stale_after, self.config.down_after)
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff {
            base: Duration::from_millis(100).min(self.config.retry_max),
            max: self.config.retry_max,
        }
    }

    fn espn(&self) -> EspnFeed {
        let config = self.config;
        let url = config
            .espn_url
            .clone()
            .unwrap_or_else(|| format!("{}/espn", self.mock_base));
        EspnFeed::new(
            self.http.clone(),
            &url,
            &config.leagues,
            config.espn_poll,
            config.upstream_timeout,
            self.health(),
            self.backoff(),
        )
    }

    fn kalshi(&self, access: Access, tickers: watch::Receiver<Vec<String>>) -> KalshiFeed {
        let config = self.config;
        let rest_url = config
            .kalshi_url
            .clone()
            .unwrap_or_else(|| format!("{}/kalshi/trade-api/v2", self.mock_base));
        let ws_url = config
            .kalshi_ws_url
            .clone()
            .unwrap_or_else(|| kalshi_ws_from_rest(&rest_url));
        let endpoints = KalshiEndpoints {
            rest_url,
            ws_url,
            access,
            tickers,
        };
        KalshiFeed::new(
            self.http.clone(),
            endpoints,
            config.upstream_timeout,
            self.health(),
            self.backoff(),
        )
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

/// What the aggregator publishes into and reports through.
pub(super) struct Outlets {
    pub hub: Arc<Hub>,
    pub sources: Arc<SourceBoard>,
    pub metrics: Arc<Metrics>,
    pub store: Store,
}

impl Upstreams {
    /// Starts the aggregator, the ESPN and Kalshi feeds that it merges into `outlets`,
    /// and (without a games map) the search for new games, each a task owned by the
    /// shutdown.
    pub(super) fn start_feeds(&self, config: &ServeConfig, outlets: Outlets, shutdown: &Shutdown) {
        // Each source publishes its own last success; all share one stall watch.
        shutdown.spawn(watch_stalls(self.stalls.clone(), shutdown.token().clone()));
        let feeds: [Arc<dyn Feed>; 2] = [self.espn.clone(), self.kalshi.clone()];
        outlets
            .sources
            .watch(Source::Espn, self.espn.policies().0.liveness.clone());
        outlets
            .sources
            .watch(Source::Kalshi, self.kalshi.policies().0.liveness.clone());
        if let Some(found) = &self.found {
            outlets.sources.set_discovery(found);
            outlets.metrics.set_discovery(found);
        }
        let (events_tx, events_rx) = mpsc::channel(FEED_CHANNEL_CAPACITY);
        // First, so the Kalshi feed's first round already knows its markets.
        let aggregator = Aggregator::new(
            outlets.hub,
            &self.catalog,
            (outlets.sources, outlets.metrics, outlets.store),
            self.tickers.clone(),
            config.heartbeat,
        );
        shutdown.spawn(aggregator.run(events_rx, shutdown.token().clone()));
        for feed in feeds {
            tracing::debug!(source = %feed.source(), "starting feed");
            shutdown.spawn(feed.run(events_tx.clone(), shutdown.token().clone()));
        }
        if let Some(finder) = &self.finder {
            let said = self
                .found
                .iter()
                .flat_map(|f| f.unmatched.clone())
                .collect();
            let finding = finder.clone().keep_finding(
                config.discover_every,
                said,
                events_tx,
                shutdown.token().clone(),
            );
            shutdown.spawn(finding);
        }
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
        // The built-in mock takes its own key only: a real one (APISPORTS_KEY left in
        // the environment of a staging run) would be refused, and every score a 502.
        let given = config.apisports_key.clone().filter(|k| !k.is_empty());
        if on_mock && given.is_some() {
            tracing::warn!(
                "an API-SPORTS key is set but --apisports-url is not: the key is unused, scores come from the built-in mock"
            );
        }
        let key = match on_mock {
            true => Some(mocks::DEFAULT_APISPORTS_KEY.to_owned()),
            false => given,
        };
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
