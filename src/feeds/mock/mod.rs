//! Mock upstreams: ESPN's site API, Kalshi's trade API v2 (REST and the WebSocket
//! ticker channel) and API-SPORTS, replaying the recordings in `mock-feeds/` over
//! real HTTP, in the real APIs' shapes, with injectable faults.
//!
//! Paths mirror the real hosts under a prefix per upstream (the server nests this
//! router under `/mock`):
//! - `/espn/apis/site/v2/sports/basketball/nba/{scoreboard,summary}`
//! - `/kalshi/trade-api/v2/{markets,markets/{ticker},markets/{ticker}/orderbook,events/{ticker}}`
//!   and `/kalshi/trade-api/ws/v2`
//! - `/apisports/{american-football,hockey}/games` (and `/status`)

mod apisports;
mod espn;
pub mod faults;
mod kalshi;
pub mod recordings;
pub mod replay;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

pub use faults::{FaultMode, FaultPlan, FaultSpec, FaultView};
pub use recordings::Recordings;
use replay::{ReplayClock, Schedule};

use crate::contract::Source;
use crate::shutdown::Shutdown;

/// The key the mock API-SPORTS accepts unless told otherwise; `serve` gives it to its
/// own scores client so the scores endpoints work out of the box.
pub const DEFAULT_APISPORTS_KEY: &str = "livegames-mock-key";

#[derive(Debug, Clone)]
pub struct MockConfig {
    /// Replay seconds per wall second.
    pub speed: f64,
    /// Kalshi ticker messages per second per live market.
    pub rate: f64,
    pub apisports_key: String,
    /// API-SPORTS plan limits the mock enforces (requests per day and per minute).
    pub apisports_per_day: u32,
    pub apisports_per_minute: u32,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            speed: 1.0,
            rate: 2.0,
            apisports_key: DEFAULT_APISPORTS_KEY.to_owned(),
            apisports_per_day: 7_500,
            apisports_per_minute: 300,
        }
    }
}

/// Shared state of the mock upstreams.
#[derive(Clone)]
pub struct MockState(Arc<Inner>);

struct Inner {
    recordings: Recordings,
    clock: ReplayClock,
    nba: Schedule,
    nfl: Schedule,
    nhl: Schedule,
    faults: FaultPlan,
    config: MockConfig,
    apisports_usage: Mutex<crate::feeds::resilience::QuotaLimiter>,
    shutdown: Shutdown,
}

impl MockState {
    pub fn new(
        recordings: Recordings,
        config: MockConfig,
        faults: FaultPlan,
        started: Instant,
        shutdown: Shutdown,
    ) -> Self {
        let durations: Vec<f64> = recordings.nba.iter().map(|g| g.duration_s).collect();
        let staggered = |n: usize, d: f64| Schedule::new(&vec![d; n]);
        let nfl = staggered(recordings.nfl.games.len(), recordings.nfl.duration_s);
        let nhl = staggered(recordings.nhl.games.len(), recordings.nhl.duration_s);
        let usage = crate::feeds::resilience::QuotaLimiter::new(
            config.apisports_per_day,
            config.apisports_per_minute,
        );
        MockState(Arc::new(Inner {
            clock: ReplayClock::new(started, config.speed),
            nba: Schedule::new(&durations),
            nfl,
            nhl,
            recordings,
            faults,
            config,
            apisports_usage: Mutex::new(usage),
            shutdown,
        }))
    }

    pub fn faults(&self) -> &FaultPlan {
        &self.0.faults
    }

    pub fn recordings(&self) -> &Recordings {
        &self.0.recordings
    }

    fn replay_s(&self) -> f64 {
        self.0.clock.replay_s(Instant::now())
    }
}

/// The mock upstreams' routes, each behind its fault injector.
pub fn router(state: MockState) -> Router {
    Router::new()
        .nest("/espn", with_faults(espn::router(), &state, Source::Espn))
        .nest(
            "/kalshi",
            with_faults(kalshi::router(), &state, Source::Kalshi),
        )
        .nest(
            "/apisports",
            with_faults(apisports::router(), &state, Source::Apisports),
        )
        .with_state(state)
}

fn with_faults(routes: Router<MockState>, state: &MockState, source: Source) -> Router<MockState> {
    routes.layer(middleware::from_fn_with_state(
        (state.clone(), source),
        inject_fault,
    ))
}

async fn inject_fault(
    State((state, source)): State<(MockState, Source)>,
    request: Request,
    next: Next,
) -> Response {
    match state.faults().active(source, Instant::now()) {
        None => next.run(request).await,
        Some(FaultMode::Slow) => {
            tokio::time::sleep(faults::SLOW_DELAY).await;
            next.run(request).await
        }
        Some(mode) => fault_response(source, mode),
    }
}

/// What each upstream answers when a fault is injected, as close to the real thing as
/// known (see shared/reference/upstream-feeds.md).
fn fault_response(source: Source, mode: FaultMode) -> Response {
    let json =
        |status: StatusCode, body: serde_json::Value| (status, axum::Json(body)).into_response();
    match (source, mode) {
        (_, FaultMode::Malformed) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            "{\"events\":[{\"id\":\"4017",
        )
            .into_response(),
        (Source::Apisports, FaultMode::RateLimited) => json(
            StatusCode::OK,
            apisports::error_envelope(
                "rateLimit",
                "Too many requests. Your rate limit is 10 requests per minute.",
            ),
        ),
        (Source::Kalshi, FaultMode::RateLimited) => json(
            StatusCode::TOO_MANY_REQUESTS,
            serde_json::json!({"error": "too many requests"}),
        ),
        (_, FaultMode::RateLimited) => json(
            StatusCode::TOO_MANY_REQUESTS,
            serde_json::json!({"error": "rate limited"}),
        ),
        (_, FaultMode::Down) => {
            (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response()
        }
        (_, FaultMode::Error | FaultMode::Slow) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"code": "internal_server_error", "message": "injected fault", "details": "", "service": source.as_str()}),
        ),
    }
}

/// Linear interpolation of the home price history at `elapsed_s` after tip-off.
fn price_at(history: &[[f64; 4]], elapsed_s: f64) -> [f64; 3] {
    let i = history.partition_point(|row| row[0] <= elapsed_s);
    match (
        i.checked_sub(1).and_then(|j| history.get(j)),
        history.get(i),
    ) {
        (Some(a), Some(b)) if b[0] > a[0] => {
            let f = (elapsed_s - a[0]) / (b[0] - a[0]);
            [0, 1, 2].map(|k| a[k + 1] + f * (b[k + 1] - a[k + 1]))
        }
        (Some(a), _) => [a[1], a[2], a[3]],
        (None, Some(b)) => [b[1], b[2], b[3]],
        (None, None) => [0.49, 0.51, 0.5],
    }
}

/// A deterministic small jitter in cents (-1, 0 or +1) for tick `n` of `key`.
fn jitter_cents(key: &str, n: u64) -> f64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.bytes().chain(n.to_le_bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    ((h >> 33) % 3) as f64 - 1.0
}

/// Rounds to whole cents and keeps a price tradable (0.01..0.99).
fn cents(p: f64) -> f64 {
    ((p * 100.0).round() / 100.0).clamp(0.01, 0.99)
}

fn dollars(p: f64) -> String {
    format!("{p:.4}")
}

/// The delay between two messages on a stream at `rate` per second.
fn tick_interval(rate: f64) -> Duration {
    Duration::from_secs_f64(1.0 / rate.clamp(0.01, 10_000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_interpolates_between_recorded_points() {
        let h = [[0.0, 0.4, 0.42, 0.41], [10.0, 0.6, 0.62, 0.61]];
        let p = price_at(&h, 5.0);
        assert!((p[0] - 0.5).abs() < 1e-9 && (p[2] - 0.51).abs() < 1e-9);
        assert_eq!(price_at(&h, 99.0), [0.6, 0.62, 0.61]);
        assert_eq!(price_at(&h, -1.0), [0.4, 0.42, 0.41]);
    }

    #[test]
    fn jitter_is_deterministic_and_small() {
        assert_eq!(jitter_cents("T", 7), jitter_cents("T", 7));
        assert!((0..100).all(|n| (-1.0..=1.0).contains(&jitter_cents("T", n))));
    }
}
