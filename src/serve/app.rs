//! The router: every route of `serve` in one place.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;

use super::api::{admin, dashboard, ops, probes, rest, sse, websocket};
use super::error::ApiError;
use super::state::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/assets/dashboard.js", get(dashboard::script))
        .route("/assets/chart.js", get(dashboard::chart))
        .route("/assets/livegames.css", get(dashboard::style))
        .route("/health", get(probes::health))
        .route("/metrics", get(probes::metrics))
        .route("/api/ops", get(ops::view))
        .route("/api/live/games", get(rest::list_games))
        .route("/api/games/{game_id}/timeline", get(rest::timeline))
        .route("/api/nfl/scores", get(rest::nfl))
        .route("/api/nhl/scores", get(rest::nhl))
        .route("/ws/live/{game_id}", get(websocket::upgrade))
        .route("/sse/live/{game_id}", get(sse::stream))
        .nest("/admin", admin::router())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .fallback(not_found)
        .with_state(state)
}

/// Counts every routed request by its route pattern and status, and times it (to the
/// response head: a WebSocket counts its upgrade, not its life).
async fn count_requests(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let route = match matched.as_ref().map(MatchedPath::as_str) {
        Some(p) if p.starts_with("/assets/") => "/assets/{file}",
        Some(p) => p,
        None => "other",
    }
    .to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .0
        .metrics
        .count_request(&route, response.status().as_u16(), started.elapsed());
    response
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    let path = crate::text::cut(uri.path(), 200);
    ApiError::NotFound(format!(
        "no route for {method} {path}; the dashboard is /#/live; the API is /api/live/games, /api/games/{{id}}/timeline, /api/nfl/scores, /api/nhl/scores, /api/ops, /ws/live/{{id}}, /health, /metrics"
    ))
}
