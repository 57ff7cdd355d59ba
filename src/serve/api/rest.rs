//! The REST API: `GET /api/live/games`, `GET /api/games/{id}/timeline` and
//! `GET /api/{nfl,nhl}/scores`.

use axum::extract::{Path, State};
use axum::http::header::HeaderName;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;

use crate::contract::{CONTRACT_VERSION, GameId, GameSummary, GamesList, League, Timeline};
use crate::serve::advertise::Bases;
use crate::serve::error::{ApiError, Params};
use crate::serve::listen::ConnAddrs;
use crate::serve::scores::CacheStatus;
use crate::serve::state::AppState;

/// Most points one timeline request returns; page with `since`.
pub const MAX_TIMELINE_LIMIT: usize = 100_000;

pub async fn list_games(
    State(state): State<AppState>,
    conn: Option<Extension<ConnAddrs>>,
    headers: HeaderMap,
) -> Json<GamesList> {
    let reached = conn.map_or(state.0.local_addr, |Extension(c)| c.local);
    let Bases { http, ws } = state.0.advertise.bases(&headers, reached);
    let games = state
        .0
        .hub
        .games()
        .iter()
        .map(|game| {
            let (seq, latest) = game.latest();
            GameSummary {
                info: game.info.clone(),
                seq,
                latest,
                ws_url: format!("{ws}/ws/live/{}", game.info.id),
                timeline_url: format!("{http}/api/games/{}/timeline", game.info.id),
            }
        })
        .collect();
    Json(GamesList {
        contract_version: CONTRACT_VERSION.to_owned(),
        epoch: Some(state.0.hub.epoch().to_owned()),
        games,
    })
}

#[derive(Deserialize)]
pub struct TimelineQuery {
    since: Option<String>,
    limit: Option<String>,
}

pub async fn timeline(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    Params(q): Params<TimelineQuery>,
) -> Result<Json<Timeline>, ApiError> {
    let id = GameId::parse(&raw_id)
        .map_err(|e| ApiError::BadRequest(format!("invalid game id: {e}")))?;
    let game = state.0.hub.get(&id).ok_or_else(|| {
        ApiError::NotFound(format!(
            "unknown game id {:?}; list valid ids with GET /api/live/games",
            id.as_str()
        ))
    })?;
    let since = parse_param(q.since.as_deref(), "since", 0)?;
    let limit = parse_param(q.limit.as_deref(), "limit", MAX_TIMELINE_LIMIT as u64)?;
    if limit == 0 || limit > MAX_TIMELINE_LIMIT as u64 {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1..={MAX_TIMELINE_LIMIT}, got {limit}"
        )));
    }
    Ok(Json(game.timeline(since, limit as usize)))
}

fn parse_param(raw: Option<&str>, name: &str, default: u64) -> Result<u64, ApiError> {
    match raw {
        None => Ok(default),
        Some(s) => s.parse().map_err(|_| {
            ApiError::BadRequest(format!(
                "{name} must be a non-negative integer, got {:?}",
                crate::text::cut(s, 40)
            ))
        }),
    }
}

/// The scores of `league`, with `X-Cache: HIT|MISS` and `Age` (seconds since they
/// were fetched), or the 503 that says why not.
async fn scores(state: AppState, league: League) -> Response {
    match state.0.scores.get(league).await {
        Ok((body, cache)) => {
            let mut response = Json(body).into_response();
            let (value, age) = match cache {
                CacheStatus::Hit { age } => ("HIT", age.as_secs()),
                CacheStatus::Miss => ("MISS", 0),
            };
            let headers = response.headers_mut();
            headers.insert(
                HeaderName::from_static("x-cache"),
                HeaderValue::from_static(value),
            );
            headers.insert(axum::http::header::AGE, HeaderValue::from(age));
            response
        }
        Err(e) => e.into_response(),
    }
}

pub async fn nfl(State(state): State<AppState>) -> Response {
    scores(state, League::Nfl).await
}

pub async fn nhl(State(state): State<AppState>) -> Response {
    scores(state, League::Nhl).await
}
