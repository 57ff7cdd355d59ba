//! Mock upstreams: ESPN's site API, Kalshi's trade API v2 (REST and the WebSocket
//! ticker channel) and API-SPORTS, replaying the recordings in `mock-feeds/` over
//! real HTTP, in the real APIs' shapes, with injectable faults.
//!
//! Paths mirror the real hosts under a prefix per upstream (the server nests this
//! router under `/mock`):
//! - `/espn/apis/site/v2/sports/basketball/nba/{scoreboard,summary}`,
//!   `/espn/apis/site/v2/sports/{football/nfl,hockey/nhl}/scoreboard`
//! - `/kalshi/trade-api/v2/{markets,markets/{ticker},markets/{ticker}/orderbook,events/{ticker}}`
//!   and `/kalshi/trade-api/ws/v2`
//! - `/apisports/{american-football,hockey}/games` (and `/status`)

mod apisports;
mod espn;
pub mod faults;
mod kalshi;
mod leagues;
mod prices;
pub mod recordings;
mod redate;
pub mod replay;
pub mod state;

use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

pub use faults::{FaultMode, FaultPlan, FaultSpec, FaultView};
pub use recordings::Recordings;
pub use state::{DEFAULT_APISPORTS_KEY, MockConfig, MockState, mock_kalshi_signer};

use crate::contract::Source;

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
