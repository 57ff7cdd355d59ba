//! `GET /health` and `GET /metrics`.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::contract::SourceHealth;
use crate::feeds::Link;
use crate::influx::{RetentionState, RetentionStatus, StoreState};
use crate::serve::error::without_urls;
use crate::serve::observe::GameLabel;
use crate::serve::state::AppState;

/// Unmatched games named on `/health`, at most (the metric counts them all).
const MAX_UNMATCHED_SHOWN: usize = 20;

pub async fn health(State(state): State<AppState>) -> Response {
    let mut sources = serde_json::Map::new();
    let mut healthy = true;
    let now = Instant::now();
    for (source, entry) in state.source_entries() {
        healthy &= entry.state == SourceHealth::Ok;
        let mut shown = json!({
            "state": entry.state.as_str(),
            "detail": entry.detail.as_deref().map(without_urls),
            "last_success_age_ms": entry.last_ok.map(|t| now.duration_since(t).as_millis() as u64),
        });
        // A stream is judged apart from the REST answers: down is degraded even while
        // the prices still come by REST.
        if let Some((link, detail)) = state.0.sources.link(source) {
            healthy &= link != Link::Down;
            shown["stream"] = json!({
                "state": link.as_str(),
                "detail": detail.as_deref().map(without_urls),
            });
        }
        sources.insert(source.as_str().into(), shown);
    }
    let mut body = json!({
        "status": "healthy",
        "uptime_s": state.0.started.elapsed().as_secs_f64(),
        "connections": state.0.metrics.ws_connections.get(),
        "sources": sources,
    });
    if let Some((_, store)) = state.0.store.status() {
        healthy &= !matches!(store.state, StoreState::Failing(_));
        // No URL here (this page is public); /admin/sources has it.
        body["store"] = json!({"influxdb": {
            "state": match store.state {
                StoreState::Idle => "idle",
                StoreState::Ok => "ok",
                StoreState::Failing(_) => "failing",
            },
            "detail": match &store.state {
                StoreState::Failing(why) => Some(without_urls(why)),
                _ => None,
            },
            "last_success_age_ms": store.last_success.map(|t| now.duration_since(t).as_millis() as u64),
            "queued_lines": store.queued,
            "retention": store.retention.as_ref().map(retention_json),
        }});
    }
    if let Some(found) = state.0.sources.discovery() {
        let matched = found.games - found.unmatched.len();
        // Games without any market: Kalshi's side of the product is missing.
        healthy &= found.games == 0 || matched > 0;
        body["games"] = json!({
            "discovered": found.games,
            "matched": matched,
            "unmatched": found.unmatched.iter().take(MAX_UNMATCHED_SHOWN).collect::<Vec<_>>(),
        });
    }
    if !healthy {
        body["status"] = json!("degraded");
    }
    Json(body).into_response()
}

/// The figures read at scrape time: uptime, what the games hold in memory, and each
/// game's silence and liveness
/// (what the "no frames for a live game" alert watches).
pub(crate) fn record_scrape_time_figures(state: &AppState) {
    let now = Instant::now();
    let metrics = &state.0.metrics;
    metrics
        .uptime
        .set(now.duration_since(state.0.started).as_secs_f64());
    let mut held = crate::serve::stream::hub::Held::default();
    for game in state.0.hub.games() {
        let game_held = game.held();
        held.history_frames += game_held.history_frames;
        held.history_bytes += game_held.history_bytes;
        held.queued = held.queued.max(game_held.queued);
        let (silence, game_state) = game.silence(now);
        let label = GameLabel {
            game: game.info.id.to_string(),
        };
        metrics
            .game_silence
            .get_or_create(&label)
            .set(silence.as_secs_f64());
        metrics
            .game_live
            .get_or_create(&label)
            .set(i64::from(game_state == crate::contract::GameState::Live));
    }
    metrics.history_bytes.set(held.history_bytes as i64);
    metrics.history_frames.set(held.history_frames as i64);
    metrics.send_queue_max.set(held.queued as i64);
}

/// `GET /metrics`: Prometheus text 0.0.4 by default (and for `text/plain`),
/// OpenMetrics for a scraper that asks for `application/openmetrics-text`.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    record_scrape_time_figures(&state);
    let wants_openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (body, content_type) = if wants_openmetrics {
        (
            state.0.metrics.render(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
    } else {
        (
            state.0.metrics.render_prometheus_text(),
            "text/plain; version=0.0.4; charset=utf-8",
        )
    };
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The retention wish and what became of it, as /health shows it.
fn retention_json(status: &RetentionStatus) -> Value {
    let mut shown = json!({"wanted": status.wanted});
    let (state, extra) = match &status.state {
        RetentionState::Pending => ("pending", json!({})),
        RetentionState::Matched { policy } => ("ok", json!({"policy": policy})),
        RetentionState::Applied { policy, was } => {
            ("applied", json!({"policy": policy, "was": was}))
        }
        RetentionState::Differs { policy, actual } => {
            ("differs", json!({"policy": policy, "actual": actual}))
        }
        RetentionState::Failed(why) => ("failed", json!({"detail": without_urls(why)})),
    };
    shown["state"] = json!(state);
    if let (Some(shown), Some(extra)) = (shown.as_object_mut(), extra.as_object()) {
        shown.extend(extra.clone());
    }
    shown
}
