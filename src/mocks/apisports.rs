//! Mock API-SPORTS (american-football v1 and hockey v1): the `games` envelope, the
//! `x-apisports-key` header, plan quotas and rate-limit headers, with recorded games
//! replayed live.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::recordings::ApiSportsRecording;
use super::replay::{Phase, Schedule};
use super::state::MockState;
use crate::feeds::quota::QuotaError;

pub(super) fn router() -> Router<MockState> {
    Router::new()
        .route("/{sport}/games", get(games))
        .route("/{sport}/status", get(status))
}

/// The envelope API-SPORTS answers errors with (HTTP 200 except for a missing key).
pub(crate) fn error_envelope(key: &str, message: &str) -> Value {
    json!({"get": "games", "parameters": [], "errors": {key: message}, "results": 0,
           "paging": {"current": 1, "total": 1}, "response": []})
}

/// Checks the key and takes one request from the plan; Err is the answer to send.
#[allow(clippy::result_large_err)] // the Err is the HTTP answer itself, built once per request
fn admit(state: &MockState, headers: &HeaderMap) -> Result<HeaderMap, Response> {
    let key = headers.get("x-apisports-key").and_then(|v| v.to_str().ok());
    match key {
        None => {
            let body = error_envelope(
                "token",
                "Missing application key, Check our documentation on how to add your API key in headers.",
            );
            return Err((StatusCode::FORBIDDEN, Json(body)).into_response());
        }
        Some(k) if k != state.0.config.apisports_key => {
            let body = error_envelope(
                "token",
                "Error/Missing application key. Go to https://www.api-football.com/documentation-v3 to learn how to get your API application key.",
            );
            return Err((StatusCode::OK, Json(body)).into_response());
        }
        Some(_) => {}
    }
    let mut usage = state
        .0
        .apisports_usage
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let verdict = usage.try_acquire(crate::clock::unix_seconds());
    let (per_day, per_minute) = usage.limits();
    let mut out = HeaderMap::new();
    let mut put = |name: &'static str, v: u32| {
        out.insert(name, HeaderValue::from(v));
    };
    put("x-ratelimit-requests-limit", per_day);
    put("x-ratelimit-requests-remaining", usage.remaining_today());
    put("x-ratelimit-limit", per_minute);
    put("x-ratelimit-remaining", usage.remaining_this_minute());
    match verdict {
        Ok(()) => Ok(out),
        Err(QuotaError::DailySpent { .. }) => {
            let body = error_envelope(
                "requests",
                "You have reached the request limit for the day, Go to https://dashboard.api-football.com to upgrade your plan.",
            );
            Err((StatusCode::OK, out, Json(body)).into_response())
        }
        Err(QuotaError::MinuteSpent { .. }) => {
            let body = error_envelope(
                "rateLimit",
                &format!("Too many requests. Your rate limit is {per_minute} requests per minute."),
            );
            Err((StatusCode::OK, out, Json(body)).into_response())
        }
    }
}

fn league<'a>(
    state: &'a MockState,
    sport: &str,
) -> Option<(&'a ApiSportsRecording, &'a Schedule, bool)> {
    match sport {
        "american-football" => Some((&state.0.recordings.nfl, &state.0.nfl, true)),
        "hockey" => Some((&state.0.recordings.nhl, &state.0.nhl, false)),
        _ => None,
    }
}

async fn games(
    State(state): State<MockState>,
    Path(sport): Path<String>,
    Query(query): Query<Map<String, Value>>,
    headers: HeaderMap,
) -> Response {
    let Some((recording, schedule, football)) = league(&state, &sport) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "Endpoint not found."})),
        )
            .into_response();
    };
    let rate_headers = match admit(&state, &headers) {
        Ok(h) => h,
        Err(answer) => return answer,
    };
    let replay_s = state.replay_s();
    let response: Vec<Value> = (0..recording.games.len())
        .map(|i| game_now(recording, schedule, football, i, replay_s).0)
        .collect();
    let parameters = if query.is_empty() {
        json!([])
    } else {
        Value::Object(query)
    };
    let body = json!({"get": "games", "parameters": parameters, "errors": [], "results": response.len(), "response": response});
    (rate_headers, Json(body)).into_response()
}

async fn status(State(state): State<MockState>, headers: HeaderMap) -> Response {
    let rate_headers = match admit(&state, &headers) {
        Ok(h) => h,
        Err(answer) => return answer,
    };
    let usage = state
        .0
        .apisports_usage
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let (per_day, _) = usage.limits();
    let body = json!({"get": "status", "parameters": [], "errors": [], "results": 1, "paging": {"current": 1, "total": 1},
        "response": {"account": {"firstname": "Mock", "lastname": "User", "email": "mock@example.invalid"},
                     "subscription": {"plan": "Pro", "end": "2099-01-01T00:00:00+00:00", "active": true},
                     "requests": {"current": per_day - usage.remaining_today(), "limit_day": per_day}}});
    (rate_headers, Json(body)).into_response()
}

/// Game `i` of a league as API-SPORTS shows it at `replay_s`, and how far it is played
/// (None: not started; 1: over).
pub(super) fn game_now(
    recording: &ApiSportsRecording,
    schedule: &Schedule,
    football: bool,
    i: usize,
    replay_s: f64,
) -> (Value, Option<f64>) {
    let (phase, _) = schedule.phase(i, replay_s);
    let progress = match phase {
        Phase::Scheduled { .. } => None,
        Phase::Live { elapsed_s } => Some((elapsed_s / recording.duration_s).clamp(0.0, 0.999)),
        Phase::Final { .. } => Some(1.0),
    };
    let game = &recording.games[i];
    let view = if football {
        football_game(game, progress)
    } else {
        hockey_game(game, progress)
    };
    (view, progress)
}

const QUARTERS: [&str; 4] = ["quarter_1", "quarter_2", "quarter_3", "quarter_4"];
const QUARTER_NAMES: [&str; 4] = [
    "First Quarter",
    "Second Quarter",
    "Third Quarter",
    "Fourth Quarter",
];

/// How much of period `k` of `n` has been played at `progress` (0..1 of the game).
pub(super) fn period_share(progress: f64, k: usize, n: usize) -> f64 {
    (progress * n as f64 - k as f64).clamp(0.0, 1.0)
}

fn football_game(recorded: &Value, progress: Option<f64>) -> Value {
    let mut g = recorded.clone();
    let Some(p) = progress else {
        g["game"]["status"] = json!({"short": "NS", "long": "Not Started", "timer": null});
        for side in ["home", "away"] {
            for q in QUARTERS.iter().chain(&["overtime", "total"]) {
                g["scores"][side][*q] = Value::Null;
            }
        }
        return g;
    };
    if p < 1.0 {
        let quarter = ((p * 4.0) as usize).min(3);
        let left_s = ((1.0 - period_share(p, quarter, 4)) * 900.0) as u64;
        g["game"]["status"] = json!({"short": format!("Q{}", quarter + 1), "long": QUARTER_NAMES[quarter],
                                     "timer": format!("{:02}:{:02}", left_s / 60, left_s % 60)});
    }
    for side in ["home", "away"] {
        let mut total = 0;
        for (k, q) in QUARTERS.iter().enumerate() {
            let share = period_share(p, k, 4);
            let full = recorded["scores"][side][*q].as_i64().unwrap_or(0);
            let now = points_scored_by(full, share);
            g["scores"][side][*q] = if share > 0.0 { json!(now) } else { Value::Null };
            total += now;
        }
        g["scores"][side]["total"] = json!(total);
    }
    g
}

/// Points on the board after `share` of a quarter in which a team scores `full`:
/// the quarter's scores (touchdowns of 7, then field goals of 3, then the rest) land
/// one by one, evenly spread, so a replayed score is always a real football score.
fn points_scored_by(full: i64, share: f64) -> i64 {
    let mut scores = Vec::new();
    let mut left = full.max(0);
    while left >= 7 {
        scores.push(7);
        left -= 7;
    }
    while left >= 3 {
        scores.push(3);
        left -= 3;
    }
    if left > 0 {
        scores.push(left);
    }
    let landed = ((scores.len() + 1) as f64 * share).floor() as usize;
    scores.iter().take(landed.min(scores.len())).sum()
}

const HOCKEY_PERIODS: [&str; 3] = ["first", "second", "third"];
const HOCKEY_NAMES: [&str; 3] = ["First Period", "Second Period", "Third Period"];

fn hockey_game(recorded: &Value, progress: Option<f64>) -> Value {
    let mut g = recorded.clone();
    let Some(p) = progress else {
        g["status"] = json!({"long": "Not Started", "short": "NS"});
        g["scores"] = json!({"home": null, "away": null});
        for k in HOCKEY_PERIODS {
            g["periods"][k] = Value::Null;
        }
        return g;
    };
    let (mut home, mut away) = (0, 0);
    for (k, name) in HOCKEY_PERIODS.iter().enumerate() {
        let share = period_share(p, k, 3);
        let (h, a) = recorded["periods"][*name]
            .as_str()
            .and_then(|s| s.split_once('-'))
            .map(|(h, a)| (h.parse().unwrap_or(0), a.parse().unwrap_or(0)))
            .unwrap_or((0i64, 0i64));
        let (h, a) = (
            (h as f64 * share).floor() as i64,
            (a as f64 * share).floor() as i64,
        );
        g["periods"][*name] = if share > 0.0 {
            json!(format!("{h}-{a}"))
        } else {
            Value::Null
        };
        home += h;
        away += a;
    }
    g["scores"] = json!({"home": home, "away": away});
    if p < 1.0 {
        let period = ((p * 3.0) as usize).min(2);
        let minutes = ((period_share(p, period, 3)) * 20.0) as u64;
        g["status"] = json!({"long": HOCKEY_NAMES[period], "short": format!("P{}", period + 1)});
        g["timer"] = json!(minutes.to_string());
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn football_replay_fills_quarters_in_order() {
        let rec = json!({"game": {"status": {}}, "scores": {
            "home": {"quarter_1": 7, "quarter_2": 14, "quarter_3": 3, "quarter_4": 0, "overtime": null, "total": 24},
            "away": {"quarter_1": 0, "quarter_2": 3, "quarter_3": 7, "quarter_4": 7, "overtime": null, "total": 17}}});
        let mid = football_game(&rec, Some(0.5));
        assert_eq!(mid["game"]["status"]["short"], "Q3");
        assert_eq!(mid["scores"]["home"]["total"], 21);
        assert_eq!(points_scored_by(10, 0.4), 7);
        assert_eq!(points_scored_by(10, 0.99), 10);
        assert_eq!(points_scored_by(10, 0.2), 0);
        assert_eq!(mid["scores"]["home"]["quarter_4"], Value::Null);
        let done = football_game(&rec, Some(1.0));
        assert_eq!(done["scores"]["away"]["total"], 17);
        let pre = football_game(&rec, None);
        assert_eq!(pre["game"]["status"]["short"], "NS");
        assert_eq!(pre["scores"]["home"]["total"], Value::Null);
    }

    #[test]
    fn hockey_replay_uses_period_strings() {
        let rec = json!({"status": {}, "scores": {"home": 3, "away": 1},
                         "periods": {"first": "1-0", "second": "2-1", "third": "0-0"}});
        let g = hockey_game(&rec, Some(0.5));
        assert_eq!(g["status"]["short"], "P2");
        assert_eq!(g["periods"]["first"], "1-0");
        assert_eq!(g["periods"]["third"], Value::Null);
        assert_eq!(hockey_game(&rec, Some(1.0))["scores"]["home"], 3);
    }
}
