use std::time::Duration;

use livegames::contract::schema::Body;
use serde_json::{Value, json};

use crate::support::*;

async fn scores(
    server: &livegames::serve::ServerHandle,
    league: &str,
) -> (u16, Option<String>, Option<String>, Value) {
    let response = get(&format!("{}/api/{league}/scores", server.http_url())).await;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (cache, retry) = (header("x-cache"), header("retry-after"));
    let body: Value = response.json().await.unwrap();
    let schema = if status == 200 {
        Body::Scores
    } else {
        Body::Error
    };
    assert_valid(schema, &body, std::panic::Location::caller());
    (status, cache, retry, body)
}

#[tokio::test]
async fn scores_are_cached_with_x_cache_miss_then_hit() {
    let server = start(fast_config()).await;
    let (status, cache, _, body) = scores(&server, "nfl").await;
    assert_eq!((status, cache.as_deref()), (200, Some("MISS")), "{body}");
    assert!(!body["games"].as_array().unwrap().is_empty());
    let (status, cache, _, _) = scores(&server, "nfl").await;
    assert_eq!((status, cache.as_deref()), (200, Some("HIT")));
    let (status, cache, _, body) = scores(&server, "nhl").await;
    assert_eq!((status, cache.as_deref()), (200, Some("MISS")));
    assert_eq!(body["league"], "nhl");
    assert!(
        metric(
            &server,
            "livegames_scores_cache_total{league=\"nfl\",result=\"hit\"}"
        )
        .await
            >= 1.0
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_client_side_quota_answers_503_with_a_reason_when_spent() {
    let mut config = fast_config();
    config.scores.ttl = Duration::ZERO;
    config.scores.per_minute_quota = 2;
    // The quota counts per wall-clock minute: three requests straddling a minute's
    // end would see it renewed. Start well inside a minute.
    let into_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if into_minute >= 45 {
        tokio::time::sleep(Duration::from_secs(61 - into_minute)).await;
    }
    let server = start(config).await;
    assert_eq!(scores(&server, "nfl").await.0, 200);
    assert_eq!(scores(&server, "nhl").await.0, 200);
    let (status, _, retry, body) = scores(&server, "nfl").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "rate_limited");
    assert!(retry.is_some());
    // issue 13: the quota as Prometheus series, and the requests by route and status.
    let quota = |name: &str, window: &str| {
        format!("livegames_apisports_quota_{name}{{window=\"{window}\"}}")
    };
    assert_eq!(metric(&server, &quota("limit", "minute")).await, 2.0);
    assert_eq!(metric(&server, &quota("used", "minute")).await, 2.0);
    assert_eq!(metric(&server, &quota("remaining", "minute")).await, 0.0);
    assert_eq!(metric(&server, &quota("used", "day")).await, 2.0);
    let requests = |route: &str, status: u16| {
        format!("livegames_http_requests_total{{route=\"{route}\",status=\"{status}\"}}")
    };
    assert_eq!(
        metric(&server, &requests("/api/nfl/scores", 200)).await,
        1.0
    );
    assert_eq!(
        metric(&server, &requests("/api/nfl/scores", 503)).await,
        1.0
    );
    assert_eq!(
        metric(&server, &requests("/api/nhl/scores", 200)).await,
        1.0
    );
    assert!(
        metric(
            &server,
            "livegames_http_request_duration_seconds_count{route=\"/api/nfl/scores\"}"
        )
        .await
            == 2.0
    );
    server.stop().await.unwrap();

    let mut config = fast_config();
    config.scores.ttl = Duration::ZERO;
    config.scores.daily_quota = 1;
    let server = start(config).await;
    assert_eq!(scores(&server, "nhl").await.0, 200);
    let (status, _, _, body) = scores(&server, "nhl").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("quota_exhausted")),
        "{body}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_circuit_opens_after_failures_and_closes_after_a_good_probe() {
    let mut config = fast_config();
    config.admin_token = Some("t".into());
    config.scores.ttl = Duration::ZERO;
    config.scores.breaker_failures = 2;
    config.scores.breaker_open_for = Duration::from_millis(500);
    let server = start(config).await;
    let admin = reqwest::Client::new();
    let faults = format!("{}/admin/faults", server.http_url());
    admin
        .post(&faults)
        .bearer_auth("t")
        .json(&json!({"source": "apisports", "mode": "error"}))
        .send()
        .await
        .unwrap();
    assert_eq!(scores(&server, "nfl").await.0, 502);
    assert_eq!(scores(&server, "nfl").await.0, 502);
    let (status, _, retry, body) = scores(&server, "nfl").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("circuit_open")),
        "{body}"
    );
    assert!(retry.is_some());
    assert_eq!(
        metric(&server, "livegames_circuit_state{league=\"nfl\"}").await,
        2.0
    );
    let (_, health) = get_valid(&format!("{}/health", server.http_url()), Body::Health).await;
    assert_eq!(health["sources"]["apisports"]["state"], "down");

    admin.delete(&faults).bearer_auth("t").send().await.unwrap();
    let body = wait_for("the half-open probe to succeed", || async {
        let (status, _, _, body) = scores(&server, "nfl").await;
        (status == 200).then_some(body)
    })
    .await;
    assert_eq!(body["league"], "nfl");
    assert_eq!(
        metric(&server, "livegames_circuit_state{league=\"nfl\"}").await,
        0.0
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn upstream_rate_limit_in_a_200_body_is_a_503() {
    let mut config = fast_config();
    config.faults = vec!["apisports=rate_limited".parse().unwrap()];
    let server = start(config).await;
    let (status, _, _, body) = scores(&server, "nhl").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("upstream_rate_limited")),
        "{body}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn without_a_key_for_a_foreign_upstream_scores_answer_503_no_api_key() {
    let mut config = fast_config();
    // Never contacted: the missing key is caught first.
    config.apisports_url = Some("http://127.0.0.1:9/{sport}".into());
    let server = start(config).await;
    let (status, _, _, body) = scores(&server, "nfl").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("no_api_key")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("APISPORTS_KEY"));
    server.stop().await.unwrap();
}

/// A real key in the environment of a server on the mocks (a staging run) is not sent
/// to the mock, which would refuse it: scores still answer.
#[tokio::test]
async fn a_key_meant_for_the_real_upstream_is_not_sent_to_the_mock() {
    let mut config = fast_config();
    config.apisports_key = Some("a-real-key".into());
    let server = start(config).await;
    let (status, _, _, body) = scores(&server, "nfl").await;
    assert_eq!(status, 200, "{body}");
    server.stop().await.unwrap();
}

/// issue 13: an operator can empty the scores cache (admin API); the next request
/// goes upstream again.
#[tokio::test]
async fn the_admin_api_clears_the_scores_cache() {
    let mut config = fast_config();
    config.admin_token = Some("ops".into());
    let server = start(config).await;
    assert_eq!(scores(&server, "nfl").await.1.as_deref(), Some("MISS"));
    assert_eq!(scores(&server, "nfl").await.1.as_deref(), Some("HIT"));
    let url = format!("{}/admin/scores/cache", server.http_url());
    let client = reqwest::Client::new();
    let refused = client.delete(&url).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let cleared = client.delete(&url).bearer_auth("ops").send().await.unwrap();
    assert_eq!(cleared.status(), 200);
    assert_eq!(
        cleared.json::<Value>().await.unwrap(),
        json!({"cleared": 1})
    );
    assert_eq!(scores(&server, "nfl").await.1.as_deref(), Some("MISS"));
    server.stop().await.unwrap();
}
