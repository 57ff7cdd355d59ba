//! serve against an API-SPORTS that answers as the real one does (envelopes written
//! from its documentation: errors inside HTTP 200, per-minute limits also as 429,
//! quota headers on every answer), one scripted answer at a time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use livegames::serve::{ServeConfig, ServerHandle};
use serde_json::{Value, json};

use crate::support::*;

/// One scripted answer: status, body, and the daily quota left (header).
type Answer = (u16, Value, u32);

#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    asked: Arc<Mutex<Vec<std::collections::HashMap<String, String>>>>,
}

async fn games(
    State(script): State<Script>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    script.asked.lock().unwrap().push(query);
    let (status, body, left) = script.answers.lock().unwrap().pop_front().unwrap_or((
        200,
        envelope(json!([]), json!([])),
        100,
    ));
    let mut headers = HeaderMap::new();
    let number = |n: u32| HeaderValue::from_str(&n.to_string()).unwrap();
    headers.insert("x-ratelimit-requests-limit", number(100));
    headers.insert("x-ratelimit-requests-remaining", number(left));
    headers.insert("x-ratelimit-limit", number(10));
    headers.insert("x-ratelimit-remaining", number(9));
    (
        StatusCode::from_u16(status).unwrap(),
        headers,
        axum::Json(body),
    )
        .into_response()
}

fn envelope(errors: Value, response: Value) -> Value {
    let results = response.as_array().map_or(0, Vec::len);
    json!({"get": "games", "parameters": {"league": "1"}, "errors": errors,
           "results": results, "paging": {"current": 1, "total": 1}, "response": response})
}

async fn start_apisports(script: Script) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/{sport}/games", routing::get(games))
        .with_state(script);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/{{sport}}")
}

async fn serve_on(script: &Script) -> ServerHandle {
    let mut config = ServeConfig {
        apisports_url: Some(start_apisports(script.clone()).await),
        apisports_key: Some("test-key".into()),
        ..fast_config()
    };
    config.scores.ttl = std::time::Duration::ZERO;
    start(config).await
}

async fn scores(server: &ServerHandle) -> (u16, Option<String>, Value) {
    let response = get(&format!("{}/api/nfl/scores", server.http_url())).await;
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_league_day_is_asked_in_its_own_time_zone() {
    let script = Script::default();
    let server = serve_on(&script).await;
    let (status, _, body) = scores(&server).await;
    assert_eq!(status, 200, "{body}");
    let asked = script.asked.lock().unwrap()[0].clone();
    assert_eq!(asked["timezone"], "America/New_York");
    let today = livegames::clock::eastern_date(livegames::clock::unix_seconds());
    assert_eq!(asked["date"], today);
    assert_eq!(asked["league"], "1");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_daily_quota_waits_until_the_reset_and_the_gauge_says_zero() {
    let script = Script::default();
    let spent = "You have reached the request limit for the day, Go to https://dashboard.api-football.com to upgrade your plan.";
    script.answers.lock().unwrap().push_back((
        200,
        envelope(json!({"requests": spent}), json!([])),
        0,
    ));
    let server = serve_on(&script).await;
    let (status, retry, body) = scores(&server).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("quota_exhausted")),
        "{body}"
    );
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    let until_reset = 86_400 - livegames::clock::unix_seconds() % 86_400;
    assert!(
        retry.abs_diff(until_reset) <= 5,
        "Retry-After {retry}, reset in {until_reset}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("00:00 UTC"),
        "{body}"
    );
    let left = metric(
        &server,
        "livegames_apisports_quota_remaining{window=\"day\"}",
    )
    .await;
    assert_eq!(left, 0.0, "the upstream said 0 left");
    // Not an outage: the circuit stays closed.
    let circuit = metric(&server, "livegames_circuit_state{league=\"nfl\"}").await;
    assert_eq!(circuit, 0.0);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_error_is_a_setting_to_fix_with_the_upstreams_sentence_not_an_outage() {
    let script = Script::default();
    let plan = "Free plans do not have access to this season, try from 2022 to 2024.";
    for _ in 0..5 {
        script.answers.lock().unwrap().push_back((
            200,
            envelope(json!({"plan": plan}), json!([])),
            90,
        ));
    }
    let server = serve_on(&script).await;
    for _ in 0..5 {
        let (status, retry, body) = scores(&server).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("plan_unavailable")),
            "{body}"
        );
        assert!(body["message"].as_str().unwrap().contains(plan), "{body}");
        assert_eq!(retry, None, "retrying will not help");
    }
    let circuit = metric(&server, "livegames_circuit_state{league=\"nfl\"}").await;
    assert_eq!(circuit, 0.0, "five plan errors are not five failures");
    // The quota figures follow the header on error answers too.
    let left = metric(
        &server,
        "livegames_apisports_quota_remaining{window=\"day\"}",
    )
    .await;
    assert_eq!(left, 90.0);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_minute_limit_as_429_is_rate_limited_for_a_minute() {
    let script = Script::default();
    let limited = "Too many requests. Your rate limit is 10 requests per minute.";
    script.answers.lock().unwrap().push_back((
        429,
        envelope(json!({"rateLimit": limited}), json!([])),
        80,
    ));
    let server = serve_on(&script).await;
    let (status, retry, body) = scores(&server).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("upstream_rate_limited")),
        "{body}"
    );
    assert_eq!(retry.as_deref(), Some("60"));
    server.stop().await.unwrap();
}
