//! `livegames serve`: its flags, their lowering into a [`ServeConfig`], and the run
//! (logs, signals, the server). Every default is read from [`ServeConfig::default`],
//! so `--help` shows what the library runs with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::runtime::{block_on, cancel_on_signal};
use super::telemetry::LogFormat;
use super::values::{self, duration, league, nonzero_duration, positive, rate, url};
use crate::contract::League;
use crate::feeds::kalshi::auth::Signer;
use crate::influx::Retention;
use crate::influx::retention::DEFAULT_RETENTION;
use crate::mocks::FaultSpec;
use crate::outcome::{Classify, CommandResult, Verdict};
use crate::serve::ServeConfig;
use crate::serve::config::DEFAULT_CLIENT_RATE;
use crate::shutdown::Shutdown;
use crate::units::show_duration;

fn show_leagues(leagues: &[League]) -> String {
    leagues
        .iter()
        .map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Each league once, in the order given.
fn unique(leagues: &[League]) -> Vec<League> {
    let mut out: Vec<League> = Vec::with_capacity(leagues.len());
    for league in leagues {
        if !out.contains(league) {
            out.push(*league);
        }
    }
    out
}

/// What `livegames serve` runs with when no flag says otherwise.
static DEFAULTS: LazyLock<ServeConfig> = LazyLock::new(ServeConfig::default);

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LIVEGAMES_ADDR", default_value = "127.0.0.1:8000")]
    pub addr: SocketAddr,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Replay speed of the mock upstreams (60 plays a game in about two minutes).
    #[arg(long, default_value_t = DEFAULTS.speed, value_parser = positive)]
    pub speed: f64,
    /// Market ticks per second per live game: the stream's message rate.
    #[arg(long, default_value_t = DEFAULTS.rate, value_parser = rate)]
    pub rate: f64,
    /// ESPN site API host [default: the built-in mock].
    #[arg(long, value_parser = url)]
    pub espn_url: Option<String>,
    /// Kalshi trade API v2 base, e.g. https://api.elections.kalshi.com/trade-api/v2 [default: the built-in mock].
    #[arg(long, value_parser = url)]
    pub kalshi_url: Option<String>,
    /// Kalshi WebSocket URL [default: derived from --kalshi-url].
    #[arg(long, value_parser = url)]
    pub kalshi_ws_url: Option<String>,
    /// Kalshi API key ID: with --kalshi-private-key, every Kalshi request is signed and
    /// prices stream over the WebSocket; without, the real Kalshi is polled over REST.
    #[arg(long, env = "KALSHI_KEY_ID", requires = "kalshi_private_key")]
    pub kalshi_key_id: Option<String>,
    /// The RSA private key (PEM, PKCS#8 or PKCS#1) of --kalshi-key-id.
    #[arg(
        long,
        env = "KALSHI_PRIVATE_KEY_FILE",
        value_name = "FILE",
        requires = "kalshi_key_id"
    )]
    pub kalshi_private_key: Option<PathBuf>,
    /// How often Kalshi's REST API is polled when there is no key for the stream.
    #[arg(long, default_value = show_duration(DEFAULTS.kalshi_poll), value_parser = nonzero_duration)]
    pub kalshi_poll: Duration,
    /// How often the day's games are looked for again on ESPN's scoreboard and
    /// Kalshi's markets (without --games-map).
    #[arg(long, default_value = show_duration(DEFAULTS.discover_every), value_parser = nonzero_duration)]
    pub discover_every: Duration,
    /// The leagues whose games are found on ESPN's scoreboards and Kalshi's game
    /// series, comma-separated (nba, nfl, nhl; without --games-map).
    #[arg(long, value_delimiter = ',', default_value = show_leagues(&DEFAULTS.leagues), value_parser = league)]
    pub leagues: Vec<League>,
    /// API-SPORTS base with a {sport} placeholder, e.g. https://v1.{sport}.api-sports.io [default: the built-in mock].
    #[arg(long)]
    pub apisports_url: Option<String>,
    /// API-SPORTS key (needed with --apisports-url; the mock's key is used otherwise).
    #[arg(long, env = "APISPORTS_KEY", hide_env_values = true)]
    pub apisports_key: Option<String>,
    /// Serve the mock upstreams on their own address instead of under /mock.
    #[arg(long)]
    pub mock_addr: Option<SocketAddr>,
    /// Read recordings from this folder (laid out like mock-feeds/) instead of the built-in ones.
    #[arg(long)]
    pub mock_feeds: Option<PathBuf>,
    /// Game map joining NBA, ESPN and Kalshi ids [default: the recordings' games.json].
    #[arg(long)]
    pub games_map: Option<PathBuf>,
    /// Most concurrent WebSocket clients; more get 503 with Retry-After.
    #[arg(long, default_value_t = DEFAULTS.max_conns as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_conns: u32,
    /// Most open client connections of any kind (HTTP and WebSocket); at the limit the
    /// longest-waiting connection without a request makes room, else 503
    /// [default: --max-conns + 1024, within the open-files limit].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_open: Option<u32>,
    /// Time a client gets to send a complete request head, from connecting or from
    /// the head's first byte.
    #[arg(long, default_value = show_duration(DEFAULTS.header_timeout), value_parser = duration)]
    pub header_timeout: Duration,
    /// An HTTP connection with no request in progress is closed after this long.
    #[arg(long, default_value = show_duration(DEFAULTS.idle_timeout), value_parser = duration)]
    pub idle_timeout: Duration,
    /// Frames a client may fall behind before it is closed with 4008.
    #[arg(long, default_value_t = DEFAULTS.send_queue as u32,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub send_queue: u32,
    /// History kept per game for ?since= and the timeline, in MiB.
    #[arg(long, default_value_t = (DEFAULTS.history_bytes >> 20) as u32,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub history_mib: u32,
    /// Longest silence on a stream before a heartbeat.
    #[arg(long, default_value = show_duration(DEFAULTS.heartbeat), value_parser = duration)]
    pub heartbeat: Duration,
    /// How often the ESPN scoreboard is polled.
    #[arg(long, default_value = show_duration(DEFAULTS.espn_poll), value_parser = duration)]
    pub espn_poll: Duration,
    /// Timeout of each upstream request.
    #[arg(long, default_value = show_duration(DEFAULTS.upstream_timeout), value_parser = duration)]
    pub upstream_timeout: Duration,
    /// A source with no good answer for this long is stale.
    #[arg(long, default_value = show_duration(DEFAULTS.stale_after), value_parser = duration)]
    pub stale_after: Duration,
    /// A source with no good answer for this long is down (its fields become null).
    #[arg(long, default_value = show_duration(DEFAULTS.down_after), value_parser = duration)]
    pub down_after: Duration,
    /// Longest wait between retries of a failing upstream.
    #[arg(long, default_value = show_duration(DEFAULTS.retry_max), value_parser = duration)]
    pub retry_max: Duration,
    /// A client write that takes longer marks the client as slow (close 4008).
    #[arg(long, default_value = show_duration(DEFAULTS.ws.write_timeout), value_parser = duration)]
    pub write_timeout: Duration,
    /// The base URL clients reach this server by (e.g. https://live.example.com),
    /// advertised in ws_url and timeline_url; default: the address the request reached.
    #[arg(long, env = "LIVEGAMES_PUBLIC_URL", value_name = "URL", value_parser = crate::serve::advertise::parse_public_url)]
    pub public_url: Option<url::Url>,
    /// A proxy in front sets Forwarded / X-Forwarded-Proto / X-Forwarded-Host:
    /// advertised URLs follow them. Only with a proxy that overwrites those headers.
    #[arg(long)]
    pub trust_proxy: bool,
    /// Client frames per second each WebSocket may send (bursts of twice that); the
    /// first frame over gets a rate_limited error, a client that goes on is closed
    /// with 1008. 0 turns the limit off.
    #[arg(long, default_value_t = DEFAULT_CLIENT_RATE)]
    pub client_rate: u32,
    /// permessage-deflate for WebSocket clients that offer it: `shared` compresses
    /// each broadcast frame once for every such client (no context kept between
    /// frames), `per-client` keeps a compressor per client (better ratio, its memory
    /// and CPU per client), `off` declines.
    #[arg(long, value_enum, default_value = "shared", value_name = "MODE")]
    pub ws_compress: crate::wire::ServerMode,
    /// Frames of one game published closer together than this reach each client in
    /// one write: fewer system calls and wake-ups on both ends at hundreds of frames
    /// a second, at the cost of up to this much latency for such frames (a game
    /// publishing less often never waits). 0 writes every frame at once.
    #[arg(long, default_value = show_duration(DEFAULTS.ws.batch_window), value_parser = duration)]
    pub ws_batch_window: Duration,
    /// Bearer token for /admin; the admin API is off without one.
    #[arg(long, env = "LIVEGAMES_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Fault to inject at start: SOURCE=MODE[:DURATION], e.g. espn=down:30s (repeatable).
    #[arg(long = "fault", value_name = "SOURCE=MODE[:DURATION]")]
    pub faults: Vec<FaultSpec>,
    /// How long scores stay cached.
    #[arg(long, default_value = show_duration(DEFAULTS.scores.ttl), value_parser = duration)]
    pub scores_ttl: Duration,
    /// API-SPORTS requests allowed per UTC day (client-side quota).
    #[arg(long, default_value_t = DEFAULTS.scores.daily_quota)]
    pub apisports_daily_quota: u32,
    /// API-SPORTS requests allowed per minute (client-side quota).
    #[arg(long, default_value_t = DEFAULTS.scores.per_minute_quota)]
    pub apisports_minute_quota: u32,
    /// Failed API-SPORTS fetches in a row (per league) that open its circuit breaker.
    #[arg(long, default_value_t = DEFAULTS.scores.breaker_failures,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub apisports_breaker_failures: u32,
    /// How long an open circuit refuses fetches before one probe is let through.
    #[arg(long, default_value = show_duration(DEFAULTS.scores.breaker_open_for), value_parser = nonzero_duration)]
    pub apisports_breaker_open_for: Duration,
    /// Write live points, source health and scores to InfluxDB: http://host:8086/DB
    /// (1.x; user and password in the URL or LIVEGAMES_INFLUXDB_USER/_PASSWORD) or
    /// http://host:8086?org=ORG&bucket=BUCKET (2.x; token in LIVEGAMES_INFLUXDB_TOKEN).
    #[arg(long, env = "LIVEGAMES_INFLUXDB", value_name = "URL")]
    pub influxdb: Option<String>,
    /// Lines per InfluxDB write request.
    #[arg(long, default_value_t = DEFAULTS.influx.batch_lines as u32,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub influxdb_batch: u32,
    /// The longest a line waits before it is written.
    #[arg(long, default_value = show_duration(DEFAULTS.influx.flush_every), value_parser = duration)]
    pub influxdb_flush: Duration,
    /// Lines held while InfluxDB is unreachable; past this the oldest are dropped.
    #[arg(long, default_value_t = DEFAULTS.influx.queue_lines as u32,
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub influxdb_queue: u32,
    /// How long InfluxDB keeps what serve writes: the 1.x database's default
    /// retention policy is set to it; a 2.x bucket's is checked. 0 keeps forever.
    #[arg(long, default_value = show_duration(DEFAULT_RETENTION), value_parser = values::retention)]
    pub influxdb_retention: Duration,
    /// How often the ops page (`#/ops`, `/api/ops`) samples the metrics: its charts'
    /// resolution. 16 minutes are kept.
    #[arg(long, default_value = show_duration(DEFAULTS.ops_every), value_parser = nonzero_duration)]
    pub ops_every: Duration,
    /// How long shutdown waits for clients to get their close frame.
    #[arg(long, default_value = show_duration(DEFAULTS.shutdown_grace), value_parser = duration)]
    pub shutdown_grace: Duration,
}

/// A flag whose value cannot work with the others.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{flag}: {message}")]
pub struct LowerError {
    pub flag: &'static str,
    pub message: String,
}

impl LowerError {
    fn new(flag: &'static str, message: impl Into<String>) -> Self {
        Self {
            flag,
            message: message.into(),
        }
    }
}

pub fn run(args: ServeArgs) -> CommandResult {
    super::telemetry::init(args.log_format);
    let config = args.lower().usage()?;
    block_on(async move {
        let listener = crate::serve::bind(args.addr)
            .with_context(|| format!("cannot listen on {}", args.addr))
            .failed()?;
        let shutdown = Shutdown::new();
        let requested = CancellationToken::new();
        let _signals = cancel_on_signal(requested.clone())?;
        let on_request = shutdown.clone();
        tokio::spawn(async move {
            requested.cancelled().await;
            // Trigger first: a log line that cannot be written must not stop the shutdown.
            on_request.trigger();
            tracing::info!("shutdown requested; closing client connections");
        });
        crate::serve::run(config, listener, shutdown)
            .await
            .failed()?;
        Ok(Verdict::Pass)
    })?
}

impl ServeArgs {
    /// Builds the server config, checking relations between flags.
    pub fn lower(&self) -> Result<ServeConfig, LowerError> {
        self.check_timing()?;
        if let Some(url) = &self.apisports_url
            && self.apisports_key.is_none()
        {
            tracing::warn!(%url, "--apisports-url without a key: the scores endpoints will answer 503 no_api_key");
        }
        let influxdb = match self.influxdb.as_deref().filter(|u| !u.is_empty()) {
            Some(raw) => Some(
                crate::influx::parse(raw, |name| std::env::var(name).ok())
                    .map_err(|message| LowerError::new("--influxdb", message))?,
            ),
            None => None,
        };
        let kalshi_signer = self.kalshi_signer()?;
        let defaults = ServeConfig::default();
        Ok(ServeConfig {
            speed: self.speed,
            rate: self.rate,
            espn_url: self.espn_url.clone(),
            kalshi_url: self.kalshi_url.clone(),
            kalshi_ws_url: self.kalshi_ws_url.clone(),
            kalshi_signer,
            kalshi_poll: self.kalshi_poll,
            discover_every: self.discover_every,
            leagues: unique(&self.leagues),
            apisports_url: self.apisports_url.clone(),
            apisports_key: self.apisports_key.clone(),
            mock_addr: self.mock_addr,
            mock_feeds: self.mock_feeds.clone(),
            games_map: self.games_map.clone(),
            max_conns: self.max_conns as usize,
            max_open: self.max_open.map(|n| n as usize),
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            send_queue: self.send_queue as usize,
            history_bytes: self.history_mib as usize * 1024 * 1024,
            heartbeat: self.heartbeat,
            espn_poll: self.espn_poll,
            upstream_timeout: self.upstream_timeout,
            stale_after: self.stale_after,
            down_after: self.down_after,
            retry_max: self.retry_max,
            ws: crate::serve::WsSettings {
                write_timeout: self.write_timeout,
                inbound: crate::serve::stream::inbound::InboundRate::per_second(self.client_rate),
                deflate: self.ws_compress,
                batch_window: self.ws_batch_window,
                ..defaults.ws
            },
            admin_token: self.admin_token.clone().filter(|t| !t.is_empty()),
            advertise: crate::serve::advertise::Advertise {
                public_url: self.public_url.clone(),
                trust_proxy: self.trust_proxy,
            },
            faults: self.faults.clone(),
            scores: crate::serve::scores::ScoresConfig {
                ttl: self.scores_ttl,
                daily_quota: self.apisports_daily_quota,
                per_minute_quota: self.apisports_minute_quota,
                breaker_failures: self.apisports_breaker_failures,
                breaker_open_for: self.apisports_breaker_open_for,
            },
            influxdb,
            influx: crate::influx::WriterConfig {
                batch_lines: self.influxdb_batch as usize,
                flush_every: self.influxdb_flush,
                queue_lines: self.influxdb_queue as usize,
                retention: Retention::from_flag(self.influxdb_retention),
                ..defaults.influx.clone()
            },
            shutdown_grace: self.shutdown_grace,
            ops_every: self.ops_every,
            ..defaults
        })
    }

    /// The Kalshi key, read now so a missing or unusable file is a usage error that
    /// names it, not a failure later.
    fn kalshi_signer(&self) -> Result<Option<Arc<Signer>>, LowerError> {
        let (Some(key_id), Some(path)) = (&self.kalshi_key_id, &self.kalshi_private_key) else {
            return Ok(None);
        };
        let signer = Signer::load(key_id, path)
            .map_err(|e| LowerError::new("--kalshi-private-key", e.to_string()))?;
        Ok(Some(Arc::new(signer)))
    }

    /// Timeouts and intervals that are too short to work, or contradict each other.
    fn check_timing(&self) -> Result<(), LowerError> {
        if self.down_after < self.stale_after {
            return Err(LowerError::new(
                "--down-after",
                format!(
                    "must not be shorter than --stale-after ({:?})",
                    self.stale_after
                ),
            ));
        }
        for (flag, value) in [
            ("--header-timeout", self.header_timeout),
            ("--idle-timeout", self.idle_timeout),
        ] {
            if value < Duration::from_millis(100) {
                return Err(LowerError::new(
                    flag,
                    format!("must be at least 100ms, got {value:?}"),
                ));
            }
        }
        if self.heartbeat < Duration::from_millis(500) {
            return Err(LowerError::new("--heartbeat", "must be at least 500ms"));
        }
        if self.influxdb_flush < Duration::from_millis(10) {
            return Err(LowerError::new("--influxdb-flush", "must be at least 10ms"));
        }
        if self.ops_every < Duration::from_millis(100) {
            return Err(LowerError::new("--ops-every", "must be at least 100ms"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn serve(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let argv = ["livegames", "serve"].iter().chain(args).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::Serve(a) => Ok(*a),
            _ => unreachable!(),
        }
    }

    #[test]
    fn serve_defaults_lower_to_the_default_config() {
        let c = serve(&[]).unwrap().lower().unwrap();
        assert_eq!((c.rate, c.speed, c.max_conns), (2.0, 1.0, 20_000));
    }

    /// Every flag's default, lowered, is the library's default, field by field (the
    /// fields are compared as `Debug` shows them, one line each).
    #[test]
    fn every_serve_default_is_the_configs() {
        let lowered = format!("{:#?}", serve(&[]).unwrap().lower().unwrap());
        let default = format!("{:#?}", ServeConfig::default());
        let differ: Vec<String> = lowered
            .lines()
            .zip(default.lines())
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("flags: {}\nconfig: {}", a.trim(), b.trim()))
            .collect();
        assert!(differ.is_empty(), "{}", differ.join("\n"));
        assert_eq!(lowered.lines().count(), default.lines().count());
    }

    #[test]
    fn leagues_are_a_comma_list_each_taken_once() {
        let config = serve(&["--leagues", "nfl,NBA,nfl"])
            .unwrap()
            .lower()
            .unwrap();
        assert_eq!(config.leagues, [League::Nfl, League::Nba]);
        let e = serve(&["--leagues", "nba,mlb"]).unwrap_err().to_string();
        assert!(
            e.contains("--leagues") && e.contains("unknown league \"mlb\""),
            "{e}"
        );
    }

    #[test]
    fn serve_rejects_bad_values_naming_the_flag() {
        let e = serve(&["--rate", "0"]).unwrap_err().to_string();
        assert!(e.contains("--rate") && e.contains("positive"), "{e}");
        let e = serve(&["--speed", "fast"]).unwrap_err().to_string();
        assert!(e.contains("--speed"), "{e}");
        let e = serve(&["--heartbeat", "5 parsecs"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--heartbeat"), "{e}");
        let e = serve(&["--fault", "espn=exploded"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown fault mode"), "{e}");
        let e = serve(&["--espn-url", "ftp://x"]).unwrap_err().to_string();
        assert!(e.contains("unsupported scheme"), "{e}");
    }

    #[test]
    fn the_scores_circuit_breaker_is_tuned_by_flags() {
        let c = serve(&[
            "--apisports-breaker-failures",
            "1",
            "--apisports-breaker-open-for",
            "2s",
        ])
        .unwrap()
        .lower()
        .unwrap();
        assert_eq!(c.scores.breaker_failures, 1);
        assert_eq!(c.scores.breaker_open_for, Duration::from_secs(2));
        let e = serve(&["--apisports-breaker-failures", "0"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--apisports-breaker-failures"), "{e}");
        let e = serve(&["--apisports-breaker-open-for", "0s"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--apisports-breaker-open-for"), "{e}");
    }

    #[test]
    fn retention_is_zero_for_forever_or_at_least_an_hour() {
        let e = serve(&["--influxdb-retention", "10m"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--influxdb-retention") && e.contains("at least 1h"),
            "{e}"
        );
        let lowered = |v: &str| {
            serve(&["--influxdb-retention", v])
                .unwrap()
                .lower()
                .unwrap()
        };
        assert_eq!(lowered("0").influx.retention, Retention::Forever);
        let e = serve(&["--ops-every", "10ms"])
            .unwrap()
            .lower()
            .unwrap_err();
        assert!(e.to_string().contains("--ops-every"), "{e}");
        assert_eq!(
            lowered("30d").influx.retention,
            Retention::For(Duration::from_secs(30 * 86_400))
        );
    }

    #[test]
    fn connection_limits_lower_with_their_defaults_and_zero_turns_the_rate_off() {
        let c = serve(&[]).unwrap().lower().unwrap();
        assert_eq!(c.header_timeout, Duration::from_secs(10));
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.max_open, None);
        let rate = c.ws.inbound.expect("a client frame limit by default");
        assert_eq!((rate.per_second, rate.burst), (100.0, 200.0));
        let c = serve(&["--client-rate", "0", "--max-open", "300"])
            .unwrap()
            .lower()
            .unwrap();
        assert_eq!((c.ws.inbound, c.max_open), (None, Some(300)));
        let e = serve(&["--header-timeout", "10ms"])
            .unwrap()
            .lower()
            .unwrap_err();
        assert_eq!(e.flag, "--header-timeout");
    }

    #[test]
    fn down_after_must_not_be_shorter_than_stale_after() {
        let e = serve(&["--stale-after", "10s", "--down-after", "5s"])
            .unwrap()
            .lower()
            .unwrap_err();
        assert_eq!(e.flag, "--down-after");
    }
}
