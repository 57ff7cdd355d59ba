//! `/admin/faults`: inject and clear faults in the mock upstreams at run time.
//! Requires `Authorization: Bearer <token>`; without a configured token the admin
//! API is off.

use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::contract::Source;
use crate::mocks::{FaultMode, FaultSpec, FaultView};
use crate::serve::error::{ApiError, Params};
use crate::serve::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/faults", get(list).post(inject).delete(clear))
        .route("/sources", get(sources))
        .route("/scores/cache", axum::routing::delete(clear_scores_cache))
}

/// `DELETE /admin/scores/cache`: the next scores request per league fetches afresh.
async fn clear_scores_cache(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&state, &headers)?;
    let cleared = state.0.scores.clear_cache();
    tracing::info!(cleared, "scores cache cleared through the admin API");
    Ok(Json(serde_json::json!({ "cleared": cleared })))
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.0.admin_token.as_deref() else {
        return Err(ApiError::NotFound(
            "the admin API is off; start serve with --admin-token (or LIVEGAMES_ADMIN_TOKEN)"
                .into(),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    match given {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized("wrong admin token".into())),
        None => Err(ApiError::Unauthorized(
            "missing 'Authorization: Bearer <admin token>' header".into(),
        )),
    }
}

/// The token of a `Bearer` credential; the scheme is case-insensitive (RFC 9110
/// section 11.1), so `bearer` and `BEARER` work too.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

/// Every source's state with its full detail (upstream URLs included): what
/// `/health` shows with URLs cut out, for the operator.
async fn sources(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&state, &headers)?;
    let body = state
        .source_entries()
        .into_iter()
        .map(|(source, entry)| {
            (
                source.as_str().to_owned(),
                serde_json::json!({"state": entry.state.as_str(), "detail": entry.detail}),
            )
        })
        .collect::<serde_json::Map<_, _>>();
    let mut body = serde_json::Value::from(body);
    if let Some((url, store)) = state.0.store.status() {
        let (state_name, detail) = match store.state {
            crate::influx::StoreState::Idle => ("idle", None),
            crate::influx::StoreState::Ok => ("ok", None),
            crate::influx::StoreState::Failing(why) => ("failing", Some(why)),
        };
        body["influxdb"] = serde_json::json!({"state": state_name, "detail": detail, "url": url, "queued_lines": store.queued});
    }
    Ok(Json(body))
}

/// Compares without an early exit, so timing does not reveal the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    source: Source,
    mode: FaultMode,
    /// humantime, e.g. "30s"; absent: until cleared.
    duration: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<FaultView>>, ApiError> {
    authorize(&state, &headers)?;
    Ok(Json(state.0.faults.list(Instant::now())))
}

async fn inject(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<FaultRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Vec<FaultView>>, ApiError> {
    authorize(&state, &headers)?;
    let Json(request) = body.map_err(|e| {
        ApiError::BadRequest(format!(
            "{}; expected {{\"source\": \"espn|kalshi|apisports\", \"mode\": \"down|slow|error|malformed|rate_limited\", \"duration\": \"30s\"}}",
            e.body_text()
        ))
    })?;
    let duration = request
        .duration
        .as_deref()
        .map(|d| crate::mocks::faults::parse_duration(d).map_err(ApiError::BadRequest))
        .transpose()?;
    let spec = FaultSpec {
        source: request.source,
        mode: request.mode,
        duration,
    };
    tracing::info!(source = %spec.source, mode = spec.mode.as_str(), duration = ?spec.duration, "fault injected");
    state.0.faults.inject(&spec, Instant::now());
    Ok(Json(state.0.faults.list(Instant::now())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClearQuery {
    source: Option<String>,
}

async fn clear(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Params<ClearQuery>, ApiError>,
) -> Result<Json<Vec<FaultView>>, ApiError> {
    authorize(&state, &headers)?;
    let Params(q) = params?;
    let source = q
        .source
        .map(|s| {
            Source::parse(&s).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "unknown source {s:?}; expected espn, kalshi or apisports"
                ))
            })
        })
        .transpose()?;
    state.0.faults.clear(source);
    Ok(Json(state.0.faults.list(Instant::now())))
}
