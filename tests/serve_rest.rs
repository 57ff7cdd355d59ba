use livegames::contract::schema::Body;
use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn games_list_is_valid_and_has_the_recorded_nba_games() {
    let server = start(fast_config()).await;
    let url = format!("{}/api/live/games", server.http_url());
    let _ = live_game(&server).await;
    let (status, list) = get_valid(&url, Body::GamesList).await;
    assert_eq!(status, 200);
    let games = list["games"].as_array().unwrap();
    assert!(games.len() >= 6, "{list}");
    let ids: Vec<&str> = games.iter().map(|g| g["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"0022400196"), "{ids:?}");
    let first = &games[0];
    assert_eq!(
        first["ws_url"],
        format!(
            "ws://{}/ws/live/{}",
            server.local_addr,
            first["id"].as_str().unwrap()
        )
    );
    let states: Vec<&str> = games
        .iter()
        .map(|g| g["latest"]["state"].as_str().unwrap())
        .collect();
    assert!(states.contains(&"live"), "{states:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn replay_shows_scheduled_live_and_final_games_at_once() {
    let server = start(fast_config()).await;
    let url = format!("{}/api/live/games", server.http_url());
    let states = wait_for("every game to have a state from ESPN", || async {
        let list: Value = get(&url).await.json().await.ok()?;
        let games = list["games"].as_array()?;
        games
            .iter()
            .all(|g| g["latest"]["sources"]["espn"] == "ok")
            .then(|| {
                games
                    .iter()
                    .map(|g| g["latest"]["state"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            })
    })
    .await;
    for s in ["scheduled", "live", "final"] {
        assert!(states.iter().any(|x| x == s), "no {s} game in {states:?}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn timeline_points_have_the_shape_of_update_data() {
    let server = start(fast_config()).await;
    let game = live_game(&server).await;
    let base = format!("{}/api/games/{game}/timeline", server.http_url());
    let (status, timeline) = wait_for("a timeline with points", || async {
        let (status, t) = get_valid(&base, Body::Timeline).await;
        (t["points"].as_array()?.len() >= 3).then_some((status, t))
    })
    .await;
    assert_eq!(status, 200);
    let points = timeline["points"].as_array().unwrap();
    for w in points.windows(2) {
        assert!(
            w[0]["seq"].as_u64() < w[1]["seq"].as_u64(),
            "points in seq order"
        );
    }
    assert_point_shape(&points[0]["data"]);
    // The same seq in a live stream resumed before it carries the very same data.
    let seq = points[1]["seq"].as_u64().unwrap();
    let mut client = connect(&server, &format!("/ws/live/{game}?since={}", seq - 1)).await;
    let replayed = client.next_frame().await;
    assert_eq!(replayed.seq, seq);
    assert_eq!(replayed.value["data"], points[1]["data"]);
    // Paging.
    let (_, page) = get_valid(&format!("{base}?since={seq}&limit=1"), Body::Timeline).await;
    assert_eq!(page["points"].as_array().unwrap().len(), 1);
    assert!(page["points"][0]["seq"].as_u64().unwrap() > seq);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn timeline_errors_are_json_and_specific() {
    let server = start(fast_config()).await;
    let base = server.http_url();
    let (status, body) = get_valid(
        &format!("{base}/api/games/0099999999/timeline"),
        Body::Error,
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("/api/live/games"),
        "{body}"
    );
    let (status, body) =
        get_valid(&format!("{base}/api/games/bad%20id/timeline"), Body::Error).await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("invalid game id"),
        "{body}"
    );
    let (status, body) = get_valid(
        &format!("{base}/api/games/0022400196/timeline?since=-3"),
        Body::Error,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("since"),
        "{body}"
    );
    let (status, _) = get_valid(
        &format!("{base}/api/games/0022400196/timeline?limit=0"),
        Body::Error,
    )
    .await;
    assert_eq!(status, 400);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn health_is_healthy_within_two_seconds_on_default_mocks() {
    // Default timings, as `livegames serve` runs.
    let server = start(livegames::serve::ServeConfig::default()).await;
    let url = format!("{}/health", server.http_url());
    let started = std::time::Instant::now();
    let body = wait_for("healthy", || async {
        let (_, body) = get_valid(&url, Body::Health).await;
        (body["status"] == "healthy").then_some(body)
    })
    .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "took {:?}: {body}",
        started.elapsed()
    );
    for source in ["espn", "kalshi", "apisports"] {
        assert_eq!(body["sources"][source]["state"], "ok", "{body}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_expose_connections_frames_sources_and_latency() {
    let server = start(fast_config()).await;
    let game = live_game(&server).await;
    let mut client = connect(&server, &format!("/ws/live/{game}")).await;
    client.next_of("update").await;
    let response = get(&format!("{}/metrics", server.http_url())).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for name in [
        "livegames_ws_connections ",
        "livegames_ws_frames_sent_total",
        "livegames_ws_bytes_sent_total",
        "livegames_broadcast_latency_seconds_bucket",
        "livegames_source_state{source=\"espn\"}",
        "livegames_ws_slow_consumer_closes_total",
        "livegames_ws_handed_back_total",
        "livegames_frames_published_total",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
    assert!(metric(&server, "livegames_ws_frames_sent_total").await >= 2.0);
    assert_eq!(metric(&server, "livegames_ws_connections ").await, 1.0);
    server.stop().await.unwrap();
}

/// issue 11: /metrics speaks what the scraper asks for: Prometheus text 0.0.4 by
/// default (which `promtool check metrics` accepts), OpenMetrics when asked; every
/// series is there from the start.
#[tokio::test]
async fn metrics_negotiate_their_format_and_pass_promtool() {
    let server = start(fast_config()).await;
    let url = format!("{}/metrics", server.http_url());
    let plain = reqwest::Client::new().get(&url).send().await.unwrap();
    assert_eq!(
        plain.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = plain.text().await.unwrap();
    assert!(!text.contains("# EOF"), "{text}");
    assert!(
        text.contains("# TYPE livegames_ws_rejected_total counter")
            && text.contains("livegames_ws_rejected_total{reason=\"max_conns\"} 0"),
        "a counter family is named with _total, and present at 0 before any rejection:\n{text}"
    );
    let om = reqwest::Client::new()
        .get(&url)
        .header(
            "accept",
            "application/openmetrics-text; version=1.0.0,text/plain;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert!(
        om.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(om.text().await.unwrap().ends_with("# EOF\n"));
    if let Some(promtool) = crate::support::tools::tool("promtool", "prometheus") {
        use std::io::Write;
        let mut child = std::process::Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_paths_answer_404_json() {
    let server = start(fast_config()).await;
    let (status, body) =
        get_valid(&format!("{}/no/such/thing", server.http_url()), Body::Error).await;
    assert_eq!(status, 404);
    assert!(body["message"].as_str().unwrap().contains("/no/such/thing"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn mock_upstreams_answer_in_the_real_apis_shapes() {
    let server = start(fast_config()).await;
    let base = format!("{}/mock", server.http_url());
    let board: Value = get(&format!(
        "{base}/espn/apis/site/v2/sports/basketball/nba/scoreboard"
    ))
    .await
    .json()
    .await
    .unwrap();
    let event = &board["events"][0];
    assert!(
        event["id"].is_string() && event["competitions"][0]["competitors"][0]["score"].is_string(),
        "{event}"
    );
    let summary: Value = get(&format!(
        "{base}/espn/apis/site/v2/sports/basketball/nba/summary?event=401704823"
    ))
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        summary["plays"].as_array().unwrap().len(),
        summary["winprobability"].as_array().unwrap().len()
    );
    // The recorded game is served on today's date, its market tickers with it.
    let event = summary["header"]["competitions"][0]["date"]
        .as_str()
        .unwrap();
    let start = livegames::feeds::espn::parse_time(event).unwrap();
    let ticker_date = livegames::feeds::discovery::kalshi_date(start);
    let markets: Value = get(&format!(
        "{base}/kalshi/trade-api/v2/markets?event_ticker=KXNBAGAME-{ticker_date}MILBOS"
    ))
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(markets["markets"].as_array().unwrap().len(), 2);
    assert!(
        markets["markets"][0]["yes_bid_dollars"]
            .as_str()
            .unwrap()
            .starts_with("0.")
    );
    let no_key = get(&format!("{base}/apisports/hockey/games")).await;
    assert_eq!(no_key.status(), 403);
    let games = reqwest::Client::new()
        .get(format!("{base}/apisports/hockey/games?league=57"))
        .header("x-apisports-key", "livegames-mock-key")
        .send()
        .await
        .unwrap();
    assert!(
        games
            .headers()
            .contains_key("x-ratelimit-requests-remaining")
    );
    let games: Value = games.json().await.unwrap();
    assert_eq!(games["get"], "games");
    assert_eq!(games["errors"], serde_json::json!([]));
    assert_eq!(
        games["results"].as_u64().unwrap() as usize,
        games["response"].as_array().unwrap().len()
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn mock_upstreams_can_listen_on_their_own_address() {
    let mut config = fast_config();
    config.mock_addr = Some("127.0.0.1:0".parse().unwrap());
    let server = start(config).await;
    let url = format!("{}/health", server.http_url());
    wait_for("healthy through the separate mock listener", || async {
        let (_, h) = get_valid(&url, Body::Health).await;
        (h["status"] == "healthy").then_some(())
    })
    .await;
    let moved = get(&format!(
        "{}/mock/espn/apis/site/v2/sports/basketball/nba/scoreboard",
        server.http_url()
    ))
    .await;
    assert_eq!(
        moved.status(),
        404,
        "the mocks are not on the main address any more"
    );
    server.stop().await.unwrap();
}
