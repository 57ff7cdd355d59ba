//! The Prometheus counters, gauges and histograms `/metrics` shows, registered once;
//! every labelled series exists from the start, at 0.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::sharded::{ShardedCounter, ShardedHistogram};
use crate::contract::{Source, SourceHealth, close};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceCodeLabel {
    pub source: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabel {
    pub league: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeagueLabel {
    pub league: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteOnlyLabel {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GameLabel {
    pub game: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WindowLabel {
    pub window: String,
}

/// The routes HTTP metrics are kept for (anything else counts as `other`), so a
/// client requesting random paths cannot grow the label set.
pub const ROUTES: [&str; 15] = [
    "/",
    "/assets/{file}",
    "/health",
    "/metrics",
    "/api/live/games",
    "/api/games/{game_id}/timeline",
    "/api/nfl/scores",
    "/api/nhl/scores",
    "/api/ops",
    "/ws/live/{game_id}",
    "/admin/faults",
    "/admin/sources",
    "/admin/scores/cache",
    "/mock",
    "other",
];

/// Why the server drops a client connection (`livegames_connections_dropped_total`).
pub const DROP_REASONS: [&str; 4] = ["header_timeout", "idle_timeout", "evicted", "over_limit"];

/// Registers each named field of `$metrics` in its registry, with its name and help.
macro_rules! register {
    ($metrics:ident, $($field:ident: $name:literal, $help:literal;)*) => {
        $( $metrics.registry.register($name, $help, $metrics.$field.clone()); )*
    };
}

pub struct Metrics {
    registry: Registry,
    pub tcp_connections: Gauge,
    pub connections_dropped: Family<ReasonLabel, Counter>,
    pub accept_errors: Counter,
    pub ws_connections: Gauge,
    pub sse_connections: Gauge,
    pub sse_events_sent: Counter,
    pub sse_slow_consumers: Counter,
    pub ws_connections_opened: Counter,
    pub ws_rejected: Family<ReasonLabel, Counter>,
    // Added to for every write by the games' writers and the clients' tasks: sharded
    // (see `sharded`).
    pub ws_frames_sent: ShardedCounter,
    pub ws_bytes_sent: ShardedCounter,
    pub ws_wire_bytes_sent: ShardedCounter,
    pub ws_deflate_connections: Counter,
    pub ws_deflate_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    pub ws_closes: Family<CodeLabel, Counter>,
    pub slow_consumer_closes: Counter,
    pub ws_handed_back: Counter,
    pub ws_rate_limited: Counter,
    pub broadcast_latency: ShardedHistogram,
    pub frames_published: Counter,
    pub source_state: Family<SourceLabel, Gauge>,
    pub upstream_failures: Family<SourceLabel, Counter>,
    pub stream_up: Family<SourceLabel, Gauge>,
    pub stream_reconnects: Family<SourceLabel, Counter>,
    pub stream_error_frames: Family<SourceCodeLabel, Counter>,
    pub games_unlisted: Family<SourceLabel, Gauge>,
    pub games_discovered: Gauge,
    pub games_matched: Gauge,
    pub games_unmatched: Gauge,
    pub scores_cache: Family<CacheLabel, Counter>,
    pub circuit_state: Family<LeagueLabel, Gauge>,
    pub http_requests: Family<RouteLabel, Counter>,
    pub http_duration: Family<RouteOnlyLabel, Histogram>,
    pub quota_limit: Family<WindowLabel, Gauge>,
    pub quota_used: Family<WindowLabel, Gauge>,
    pub quota_remaining: Family<WindowLabel, Gauge>,
    pub influxdb_lines: Family<ResultLabel, Counter>,
    pub influxdb_writes: Family<ResultLabel, Counter>,
    pub influxdb_queue: Gauge,
    pub game_silence: Family<GameLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub game_live: Family<GameLabel, Gauge>,
    pub uptime: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub history_bytes: Gauge,
    pub history_frames: Gauge,
    pub send_queue_max: Gauge,
    pub scores_cache_evictions: Family<CacheLabel, Counter>,
    pub scores_refused: Family<CodeLabel, Counter>,
    pub circuit_failures: Family<LeagueLabel, Gauge>,
    pub circuit_opens: Family<LeagueLabel, Counter>,
    pub circuit_recovery: Family<LeagueLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub influxdb_write_seconds: Histogram,
    pub influxdb_batch_lines: Histogram,
}

fn http_duration_histogram() -> Histogram {
    // 0.5 ms .. ~16 s
    Histogram::new(exponential_buckets(0.000_5, 2.0, 16))
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::with_prefix("livegames");
        let m = Metrics {
            tcp_connections: Gauge::default(),
            connections_dropped: Family::default(),
            accept_errors: Counter::default(),
            ws_connections: Gauge::default(),
            sse_connections: Gauge::default(),
            sse_events_sent: Counter::default(),
            sse_slow_consumers: Counter::default(),
            ws_connections_opened: Counter::default(),
            ws_rejected: Family::default(),
            ws_frames_sent: ShardedCounter::default(),
            ws_bytes_sent: ShardedCounter::default(),
            ws_wire_bytes_sent: ShardedCounter::default(),
            ws_deflate_connections: Counter::default(),
            ws_deflate_seconds: Counter::default(),
            ws_closes: Family::default(),
            slow_consumer_closes: Counter::default(),
            ws_handed_back: Counter::default(),
            ws_rate_limited: Counter::default(),
            // 50 µs .. ~1.6 s
            broadcast_latency: ShardedHistogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            frames_published: Counter::default(),
            source_state: Family::default(),
            upstream_failures: Family::default(),
            stream_up: Family::default(),
            stream_reconnects: Family::default(),
            stream_error_frames: Family::default(),
            games_unlisted: Family::default(),
            games_discovered: Gauge::default(),
            games_matched: Gauge::default(),
            games_unmatched: Gauge::default(),
            scores_cache: Family::default(),
            circuit_state: Family::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(http_duration_histogram),
            quota_limit: Family::default(),
            quota_used: Family::default(),
            quota_remaining: Family::default(),
            influxdb_lines: Family::default(),
            influxdb_writes: Family::default(),
            influxdb_queue: Gauge::default(),
            game_silence: Family::default(),
            game_live: Family::default(),
            uptime: Gauge::default(),
            history_bytes: Gauge::default(),
            history_frames: Gauge::default(),
            send_queue_max: Gauge::default(),
            scores_cache_evictions: Family::default(),
            scores_refused: Family::default(),
            circuit_failures: Family::default(),
            circuit_opens: Family::default(),
            circuit_recovery: Family::default(),
            // 1 ms .. ~33 s
            influxdb_write_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            // 1 .. 16,384 lines
            influxdb_batch_lines: Histogram::new(exponential_buckets(1.0, 2.0, 15)),
            registry: Registry::default(),
        };
        let mut metrics = Metrics { registry, ..m };
        metrics.register_clients();
        metrics.register_upstreams();
        metrics.start_every_series_at_zero();
        metrics
    }

    /// The series of the server's own clients: connections, WebSockets, HTTP, games.
    fn register_clients(&mut self) {
        register!(self,
            tcp_connections: "tcp_connections",
                "Open client TCP connections, HTTP and WebSocket (at most --max-open)";
            connections_dropped: "connections_dropped",
                "Client connections the server dropped: header_timeout, idle_timeout, evicted (to make room at --max-open), over_limit (503 at --max-open)";
            accept_errors: "accept_errors",
                "Failed accepts (e.g. out of file descriptors); the server backs off";
            ws_connections: "ws_connections",
                "Open WebSocket connections";
            sse_connections: "sse_connections",
                "Open Server-Sent Events streams (GET /sse/live/{game_id})";
            sse_events_sent: "sse_events_sent",
                "Live frames sent as Server-Sent Events";
            sse_slow_consumers: "sse_slow_consumers",
                "SSE streams ended for falling behind (the client resumes with Last-Event-ID)";
            ws_connections_opened: "ws_connections_opened",
                "WebSocket connections accepted";
            ws_rejected: "ws_rejected",
                "WebSocket upgrades refused, by reason";
            ws_frames_sent: "ws_frames_sent",
                "Frames written to WebSocket clients";
            ws_bytes_sent: "ws_bytes_sent",
                "Payload bytes written to WebSocket clients";
            ws_wire_bytes_sent: "ws_wire_bytes_sent",
                "Bytes written to WebSocket clients as they went on the wire: frame headers and payloads, compressed where agreed";
            ws_deflate_connections: "ws_deflate_connections",
                "WebSocket connections that agreed permessage-deflate";
            ws_deflate_seconds: "ws_deflate_seconds",
                "Time spent compressing frames for WebSocket clients (a shared broadcast frame is compressed once)";
            ws_closes: "ws_closes",
                "WebSocket connections closed by the server, by close code";
            slow_consumer_closes: "ws_slow_consumer_closes",
                "Clients closed with 4008 for not keeping up";
            ws_handed_back: "ws_handed_back",
                "Times a game's writer found a client's socket full (or its receiver a ring behind) and gave the client's stream back to the client's own task";
            ws_rate_limited: "ws_rate_limited",
                "Clients warned for sending frames over --client-rate (closed with 1008 if they went on)";
            broadcast_latency: "broadcast_latency_seconds",
                "Time from serializing a frame to handing it to a client socket";
            frames_published: "frames_published",
                "Frames published by the hub (once per game, not per client)";
            http_requests: "http_requests",
                "HTTP requests answered, by route and status (a WebSocket upgrade counts once, as 101)";
            http_duration: "http_request_duration_seconds",
                "Time to answer an HTTP request (to the response head), by route";
            game_silence: "game_frame_age_seconds",
                "Seconds since the game's stream last sent a frame (heartbeats included; over 5 s means it stalled), at scrape time";
            game_live: "game_live",
                "1 while the game is live, else 0";
            uptime: "uptime_seconds",
                "Seconds since the server started, at scrape time";
            history_bytes: "history_bytes",
                "Memory the games' histories take for resumes and timelines: frames, points and slots (each game at most --history-mib), at scrape time";
            history_frames: "history_frames",
                "Frames every game keeps for resumes, at scrape time";
            send_queue_max: "send_queue_frames_max",
                "The longest broadcast queue of any game: frames its slowest client has not read (at --send-queue it is closed 4008), at scrape time";
        );
    }

    /// The series of what the server depends on: sources, scores, quota, InfluxDB.
    fn register_upstreams(&mut self) {
        register!(self,
            stream_up: "upstream_stream_up",
                "1 while the source's stream is open, 0 while it is down or polled instead (streaming sources only)";
            stream_reconnects: "upstream_stream_reconnects",
                "Times a source's stream opened again after it was down";
            stream_error_frames: "upstream_stream_error_frames",
                "Error frames a source sent on its stream, by code (the stream stays open)";
            games_unlisted: "upstream_games_unlisted",
                "Live games the source no longer lists (each is stale for that game)";
            games_discovered: "games_discovered",
                "Games the last discovery found on ESPN's scoreboards";
            games_matched: "games_matched",
                "Of those, the games matched to a Kalshi market";
            games_unmatched: "games_unmatched",
                "Of those, the games with no Kalshi market (served with ESPN's data alone)";
            source_state: "source_state",
                "Upstream source state: 0 ok, 1 stale, 2 down";
            upstream_failures: "upstream_failures",
                "Failed upstream calls, by source";
            scores_cache: "scores_cache",
                "Scores cache lookups, by league and hit/miss";
            circuit_state: "circuit_state",
                "Scores circuit breaker: 0 closed, 1 half-open, 2 open";
            circuit_failures: "circuit_failures",
                "Failures in a row counted by the scores circuit breaker (it opens at --breaker-failures)";
            circuit_opens: "circuit_opens",
                "Times the scores circuit breaker opened";
            circuit_recovery: "circuit_recovery_seconds",
                "How long the breaker's last open spell lasted, from opening to the probe that closed it";
            scores_cache_evictions: "scores_cache_evictions",
                "Scores cache entries removed, by league and reason (expired: found past --scores-ttl; cleared: the admin API)";
            scores_refused: "scores_refused",
                "Scores requests answered 503 without data, by code (rate_limited and quota_exhausted are rate-limit hits)";
            quota_limit: "apisports_quota_limit",
                "API-SPORTS requests allowed, by window (day, minute)";
            quota_used: "apisports_quota_used",
                "API-SPORTS requests used in the current window (day as the upstream reports it)";
            quota_remaining: "apisports_quota_remaining",
                "API-SPORTS requests left in the current window";
            influxdb_lines: "influxdb_lines",
                "Lines for InfluxDB: written, or dropped (queue full, refused, or unsent at shutdown)";
            influxdb_writes: "influxdb_writes",
                "Write requests to InfluxDB, by result (ok, failed)";
            influxdb_queue: "influxdb_queue_lines",
                "Lines waiting to be written to InfluxDB";
            influxdb_write_seconds: "influxdb_write_seconds",
                "Time of each write request to InfluxDB, answered or failed";
            influxdb_batch_lines: "influxdb_batch_lines",
                "Lines per successful write request to InfluxDB";
        );
    }

    /// Every labelled series the server can produce exists from the start, at 0:
    /// alert rules on a series that is absent until its first event never fire.
    fn start_every_series_at_zero(&self) {
        for reason in DROP_REASONS {
            let _ = self.connections_dropped.get_or_create(&ReasonLabel {
                reason: reason.into(),
            });
        }
        for reason in ["max_conns", "shutting_down"] {
            let _ = self.ws_rejected.get_or_create(&ReasonLabel {
                reason: reason.into(),
            });
        }
        for code in [
            close::GOING_AWAY,
            close::POLICY_VIOLATION,
            close::MESSAGE_TOO_BIG,
            close::SLOW_CONSUMER,
            close::UNKNOWN_GAME,
        ] {
            let _ = self.ws_closes.get_or_create(&CodeLabel {
                code: code.to_string(),
            });
        }
        for source in [Source::Espn, Source::Kalshi, Source::Apisports] {
            let label = SourceLabel {
                source: source.as_str().into(),
            };
            let _ = self.source_state.get_or_create(&label);
            let _ = self.upstream_failures.get_or_create(&label);
        }
        let kalshi = SourceLabel {
            source: Source::Kalshi.as_str().into(),
        };
        let _ = self.stream_up.get_or_create(&kalshi);
        let _ = self.stream_reconnects.get_or_create(&kalshi);
        let _ = self.games_unlisted.get_or_create(&SourceLabel {
            source: Source::Espn.as_str().into(),
        });
        for league in ["nfl", "nhl"] {
            for result in ["hit", "miss"] {
                let _ = self.scores_cache.get_or_create(&CacheLabel {
                    league: league.into(),
                    result: result.into(),
                });
            }
            for reason in ["expired", "cleared"] {
                let _ = self.scores_cache_evictions.get_or_create(&CacheLabel {
                    league: league.into(),
                    result: reason.into(),
                });
            }
            let label = LeagueLabel {
                league: league.into(),
            };
            let _ = self.circuit_state.get_or_create(&label);
            let _ = self.circuit_failures.get_or_create(&label);
            let _ = self.circuit_opens.get_or_create(&label);
        }
        for code in ["rate_limited", "quota_exhausted", "circuit_open"] {
            let _ = self
                .scores_refused
                .get_or_create(&CodeLabel { code: code.into() });
        }
        for result in ["written", "dropped"] {
            let _ = self.influxdb_lines.get_or_create(&ResultLabel {
                result: result.into(),
            });
        }
        for result in ["ok", "failed"] {
            let _ = self.influxdb_writes.get_or_create(&ResultLabel {
                result: result.into(),
            });
        }
        for window in ["day", "minute"] {
            let label = WindowLabel {
                window: window.into(),
            };
            let _ = self.quota_limit.get_or_create(&label);
            let _ = self.quota_used.get_or_create(&label);
            let _ = self.quota_remaining.get_or_create(&label);
        }
    }

    /// One answered HTTP request: `route` is the matched route pattern (never the raw
    /// path), or `other`.
    pub fn count_request(&self, route: &str, status: u16, took: std::time::Duration) {
        let route = ROUTES
            .iter()
            .find(|r| **r == route)
            .copied()
            .unwrap_or("other");
        self.http_requests
            .get_or_create(&RouteLabel {
                route: route.into(),
                status: status.to_string(),
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteOnlyLabel {
                route: route.into(),
            })
            .observe(took.as_secs_f64());
    }

    /// The API-SPORTS quota after a request: limits, and what is left of each window.
    pub fn set_quota(&self, window: &str, limit: u32, remaining: u32) {
        let label = WindowLabel {
            window: window.into(),
        };
        self.quota_limit.get_or_create(&label).set(limit.into());
        self.quota_remaining
            .get_or_create(&label)
            .set(remaining.into());
        self.quota_used
            .get_or_create(&label)
            .set(limit.saturating_sub(remaining).into());
    }

    /// A client connection the server dropped, by one of [`DROP_REASONS`].
    pub fn count_dropped(&self, reason: &'static str) {
        debug_assert!(DROP_REASONS.contains(&reason));
        self.connections_dropped
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    pub fn set_source_state(&self, source: Source, health: SourceHealth) {
        let v = match health {
            SourceHealth::Ok => 0,
            SourceHealth::Stale => 1,
            SourceHealth::Down => 2,
        };
        self.source_state
            .get_or_create(&SourceLabel {
                source: source.as_str().into(),
            })
            .set(v);
    }

    /// What the last discovery found.
    pub fn set_discovery(&self, found: &crate::feeds::discovery::Discovered) {
        let (games, unmatched) = (found.games.len(), found.unmatched.len());
        self.games_discovered.set(games as i64);
        self.games_matched
            .set(games.saturating_sub(unmatched) as i64);
        self.games_unmatched.set(unmatched as i64);
    }

    pub fn count_close(&self, code: u16) {
        self.ws_closes
            .get_or_create(&CodeLabel {
                code: code.to_string(),
            })
            .inc();
    }

    /// The metrics in OpenMetrics text (`application/openmetrics-text`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The metrics in the Prometheus text format 0.0.4 (`text/plain`), which is what
    /// Prometheus 2.x scrapers and `promtool check metrics` read by default.
    pub fn render_prometheus_text(&self) -> String {
        openmetrics_to_prometheus(&self.render())
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// OpenMetrics text as Prometheus text 0.0.4: a counter family is named with its
/// `_total` in HELP and TYPE (OpenMetrics names it without), `# UNIT` and `# EOF` lines
/// go, exemplars are dropped, and types 0.0.4 lacks become the nearest it has.
pub fn openmetrics_to_prometheus(text: &str) -> String {
    let counters: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = line
            .strip_prefix("# HELP ")
            .map(|rest| ("HELP", rest))
            .or_else(|| line.strip_prefix("# TYPE ").map(|rest| ("TYPE", rest)));
        let rewritten = match meta {
            Some((kind, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let name = if counters.contains(name) {
                    format!("{name}_total")
                } else {
                    name.to_owned()
                };
                let tail = match (kind, tail) {
                    ("TYPE", "info" | "stateset") => "gauge",
                    ("TYPE", "gaugehistogram") => "histogram",
                    ("TYPE", "unknown") => "untyped",
                    (_, tail) => tail,
                };
                format!("# {kind} {name} {tail}")
            }
            // A sample: its exemplar (` # {...} value`) is OpenMetrics only.
            None => line.split(" # ").next().unwrap_or(line).to_owned(),
        };
        out.push_str(&rewritten);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_becomes_prometheus_text() {
        let om = "# HELP x_opened WebSocket connections accepted.\n# TYPE x_opened counter\nx_opened_total 3 # {trace=\"a\"} 1\n# HELP x_open Open.\n# TYPE x_open gauge\n# UNIT x_open seconds\nx_open 2\n# EOF\n";
        assert_eq!(
            openmetrics_to_prometheus(om),
            "# HELP x_opened_total WebSocket connections accepted.\n# TYPE x_opened_total counter\nx_opened_total 3\n# HELP x_open Open.\n# TYPE x_open gauge\nx_open 2\n"
        );
    }

    #[test]
    fn every_series_exists_from_the_start() {
        let text = Metrics::new().render_prometheus_text();
        for series in [
            "livegames_ws_rejected_total{reason=\"max_conns\"} 0",
            "livegames_ws_closes_total{code=\"4008\"} 0",
            "livegames_upstream_failures_total{source=\"kalshi\"} 0",
            "livegames_scores_cache_total{league=\"nhl\",result=\"miss\"} 0",
            "livegames_circuit_state{league=\"nfl\"} 0",
        ] {
            assert!(text.contains(series), "{series} missing:\n{text}");
        }
    }
}
