use livegames::contract::schema::Body;
use serde_json::{Value, json};

use crate::support::*;

const TOKEN: &str = "test-admin-token";

fn admin_config() -> livegames::serve::ServeConfig {
    let mut c = fast_config();
    c.admin_token = Some(TOKEN.into());
    c
}

async fn admin(
    server: &livegames::serve::ServerHandle,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", server.http_url()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn inject(server: &livegames::serve::ServerHandle, source: &str, mode: &str) {
    let (status, body) = admin(
        server,
        reqwest::Method::POST,
        "/admin/faults",
        Some(json!({"source": source, "mode": mode})),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

async fn clear(server: &livegames::serve::ServerHandle, source: &str) {
    let (status, body) = admin(
        server,
        reqwest::Method::DELETE,
        &format!("/admin/faults?source={source}"),
        None,
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Reads until a status frame says `source` is `state`.
async fn status_until(client: &mut Client, source: &str, state: &str) -> Received {
    loop {
        let f = client.next_of("status").await;
        if f.value["sources"][source] == state {
            return f;
        }
    }
}

#[tokio::test]
async fn espn_down_the_stream_continues_with_prices_and_recovers() {
    let server = start(admin_config()).await;
    let game = live_game(&server).await;
    let mut client = connect(&server, &format!("/ws/live/{game}")).await;
    client.next_of("snapshot").await;

    inject(&server, "espn", "down").await;
    let down = status_until(&mut client, "espn", "down").await;
    assert!(
        down.value["message"].as_str().unwrap().contains("espn"),
        "{}",
        down.value
    );
    for _ in 0..5 {
        let u = client.next_of("update").await;
        let data = &u.value["data"];
        assert_eq!(data["sources"]["espn"], "down");
        assert_eq!(
            data["cause"], "market",
            "only Kalshi moves while ESPN is down"
        );
        assert!(
            data["score"].is_null() && data["home_win_prob"].is_null(),
            "ESPN fields are marked unavailable: {data}"
        );
        assert!(!data["market"].is_null());
    }
    let (_, health) = get_valid(&format!("{}/health", server.http_url()), Body::Health).await;
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["sources"]["espn"]["state"], "down");

    clear(&server, "espn").await;
    status_until(&mut client, "espn", "ok").await;
    loop {
        let u = client.next_of("update").await;
        if !u.value["data"]["score"].is_null() {
            assert_eq!(u.value["data"]["sources"]["espn"], "ok");
            break;
        }
    }
    wait_for("healthy again", || async {
        let (_, h) = get_valid(&format!("{}/health", server.http_url()), Body::Health).await;
        (h["status"] == "healthy").then_some(())
    })
    .await;
    server.stop().await.unwrap();
}

/// The game as `/api/live/games` lists it.
async fn listed(server: &livegames::serve::ServerHandle, game: &str) -> Value {
    let (_, list) = get_valid(
        &format!("{}/api/live/games", server.http_url()),
        Body::GamesList,
    )
    .await;
    let entry = list["games"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == game)
        .cloned();
    let entry = entry.expect("the game is listed");
    assert_point_shape(&entry["latest"]);
    entry["latest"].clone()
}

/// Issue 12: during an ESPN outage the values beside `"espn": "stale"` say how old
/// they are, a `down` source's values are withheld everywhere (stream, list,
/// snapshot) with the time ESPN was last heard, and they come back with the `ok`.
#[tokio::test]
async fn during_an_espn_outage_the_data_says_how_old_it_is() {
    let server = start(admin_config()).await;
    let game = live_game(&server).await;
    let mut client = connect(&server, &format!("/ws/live/{game}")).await;
    let snapshot = client.next_of("snapshot").await;
    let heard_before = snapshot.value["data"]["as_of"]["espn"]
        .as_i64()
        .expect("a live game's snapshot says when ESPN was heard");
    wait_for(
        "ESPN heard again with nothing new (the ages move on)",
        || async {
            let latest = listed(&server, &game).await;
            (latest["as_of"]["espn"].as_i64()? > heard_before).then_some(())
        },
    )
    .await;

    let injected_at = now_micros();
    inject(&server, "espn", "down").await;
    let stale = status_until(&mut client, "espn", "stale").await;
    let last_heard = stale.value["as_of"]["espn"]
        .as_i64()
        .expect("a stale status says when ESPN was last heard");
    assert!(
        last_heard <= stale.ts && last_heard > heard_before,
        "{}",
        stale.value
    );
    // An answer already on its way when the fault went in may land just after it.
    assert!(
        last_heard < injected_at + 1_500_000,
        "last heard {} µs after the fault went in",
        last_heard - injected_at
    );
    let during_stale = listed(&server, &game).await;
    if during_stale["sources"]["espn"] == "stale" {
        assert!(
            !during_stale["score"].is_null(),
            "stale keeps the values: {during_stale}"
        );
        assert_eq!(during_stale["as_of"]["espn"], last_heard, "with their age");
    }

    let down = status_until(&mut client, "espn", "down").await;
    assert_eq!(
        down.value["as_of"]["espn"], last_heard,
        "down: still the last time ESPN was heard"
    );
    let during_down = listed(&server, &game).await;
    assert_eq!(during_down["sources"]["espn"], "down");
    assert!(
        during_down["score"].is_null() && during_down["home_win_prob"].is_null(),
        "a down source's values are withheld in the list too: {during_down}"
    );
    assert_eq!(during_down["as_of"]["espn"], last_heard);
    let mut late = connect(&server, &format!("/ws/live/{game}")).await;
    let late_snapshot = late.next_of("snapshot").await;
    assert!(late_snapshot.value["data"]["score"].is_null());
    assert_eq!(late_snapshot.value["data"]["as_of"]["espn"], last_heard);

    let cleared_at = now_micros();
    clear(&server, "espn").await;
    status_until(&mut client, "espn", "ok").await;
    let back = listed(&server, &game).await;
    assert!(
        !back["score"].is_null(),
        "the values come back with the ok, not with the next play: {back}"
    );
    wait_for("ESPN heard after the fault was cleared", || async {
        let latest = listed(&server, &game).await;
        (latest["as_of"]["espn"].as_i64()? >= cleared_at).then_some(())
    })
    .await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn kalshi_down_the_stream_continues_with_plays_and_recovers() {
    let server = start(admin_config()).await;
    let game = live_game(&server).await;
    let mut client = connect(&server, &format!("/ws/live/{game}")).await;
    client.next_of("snapshot").await;
    inject(&server, "kalshi", "down").await;
    status_until(&mut client, "kalshi", "down").await;
    let u = client.next_of("update").await;
    assert_eq!(u.value["data"]["cause"], "play");
    assert!(u.value["data"]["market"].is_null());
    assert!(!u.value["data"]["score"].is_null());
    clear(&server, "kalshi").await;
    status_until(&mut client, "kalshi", "ok").await;
    loop {
        let u = client.next_of("update").await;
        if u.value["data"]["cause"] == "market" {
            assert!(!u.value["data"]["market"].is_null());
            break;
        }
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn with_both_sources_down_the_stream_sends_status_and_heartbeats() {
    let server = start(admin_config()).await;
    let game = live_game(&server).await;
    let mut client = connect(&server, &format!("/ws/live/{game}")).await;
    client.next_of("snapshot").await;
    inject(&server, "espn", "down").await;
    inject(&server, "kalshi", "down").await;
    loop {
        let f = client.next_of("status").await;
        if f.value["sources"]["espn"] == "down" && f.value["sources"]["kalshi"] == "down" {
            break;
        }
    }
    let hb = client.next_of("heartbeat").await;
    assert_eq!(hb.value["game_id"], game.as_str());
    clear(&server, "espn").await;
    clear(&server, "kalshi").await;
    status_until(&mut client, "kalshi", "ok").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn every_fault_mode_makes_espn_unhealthy_until_cleared() {
    let server = start(admin_config()).await;
    let health_url = format!("{}/health", server.http_url());
    let espn_state = || async {
        let (_, h) = get_valid(&health_url, Body::Health).await;
        h["sources"]["espn"]["state"].as_str().unwrap().to_owned()
    };
    wait_for("espn ok", || async {
        (espn_state().await == "ok").then_some(())
    })
    .await;
    for mode in ["error", "malformed", "rate_limited", "slow"] {
        inject(&server, "espn", mode).await;
        wait_for("espn down", || async {
            (espn_state().await == "down").then_some(())
        })
        .await;
        clear(&server, "espn").await;
        wait_for("espn ok again", || async {
            (espn_state().await == "ok").then_some(())
        })
        .await;
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn faults_given_at_start_apply_from_the_start() {
    let mut config = fast_config();
    config.faults = vec!["espn=down".parse().unwrap()];
    let server = start(config).await;
    let url = format!("{}/health", server.http_url());
    let health = wait_for("espn down", || async {
        let (_, h) = get_valid(&url, Body::Health).await;
        (h["sources"]["espn"]["state"] == "down" && h["sources"]["kalshi"]["state"] == "ok")
            .then_some(h)
    })
    .await;
    assert_eq!(health["status"], "degraded");
    assert!(
        health["sources"]["espn"]["detail"]
            .as_str()
            .unwrap()
            .contains("503"),
        "{health}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn admin_routes_need_a_configured_token() {
    let off = start(fast_config()).await;
    let (status, body) = admin(
        &off,
        reqwest::Method::GET,
        "/admin/faults",
        None,
        Some("anything"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(body["message"].as_str().unwrap().contains("--admin-token"));
    off.stop().await.unwrap();

    let server = start(admin_config()).await;
    assert_eq!(
        admin(&server, reqwest::Method::GET, "/admin/faults", None, None)
            .await
            .0,
        401
    );
    assert_eq!(
        admin(
            &server,
            reqwest::Method::GET,
            "/admin/faults",
            None,
            Some("wrong")
        )
        .await
        .0,
        401
    );
    let (status, body) = admin(
        &server,
        reqwest::Method::POST,
        "/admin/faults",
        Some(json!({"source": "espn", "mode": "exploded"})),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("mode"), "{body}");
    let (status, body) = admin(
        &server,
        reqwest::Method::POST,
        "/admin/faults",
        Some(json!({"source": "espn", "mode": "slow", "duration": "30s"})),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["mode"], "slow");
    assert!(body[0]["remaining_s"].as_f64().unwrap() <= 30.0);
    server.stop().await.unwrap();
}

/// What fuzzing the admin API found: a duration the clock cannot add was a panic
/// (an empty reply, the fault never applied), and DELETE with a parameter it does
/// not know cleared every fault. Both are refused now, and nothing changes.
#[tokio::test]
async fn admin_requests_out_of_range_or_with_unknown_parameters_are_refused() {
    let server = start(admin_config()).await;
    inject(&server, "kalshi", "slow").await;
    for duration in ["9223372036854775808s", "18446744073709551615s", "31days"] {
        let (status, body) = admin(
            &server,
            reqwest::Method::POST,
            "/admin/faults",
            Some(json!({"source": "espn", "mode": "down", "duration": duration})),
            Some(TOKEN),
        )
        .await;
        assert_eq!(status, 400, "{duration}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("longer than 30 days"),
            "{duration}: {body}"
        );
    }
    let (status, body) = admin(
        &server,
        reqwest::Method::DELETE,
        "/admin/faults?mode=down",
        None,
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "bad_request");
    assert!(body["message"].as_str().unwrap().contains("mode"), "{body}");
    // Unauthorized first, whatever the parameters.
    let (status, _) = admin(
        &server,
        reqwest::Method::DELETE,
        "/admin/faults?mode=down",
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (_, faults) = admin(
        &server,
        reqwest::Method::GET,
        "/admin/faults",
        None,
        Some(TOKEN),
    )
    .await;
    assert_eq!(faults.as_array().unwrap().len(), 1, "{faults}");
    assert_eq!(faults[0]["source"], "kalshi", "{faults}");
    server.stop().await.unwrap();
}

/// A repeated query parameter gets the API's JSON error, on every route that reads
/// one (the stream's too, before any upgrade).
#[tokio::test]
async fn repeated_query_parameters_get_a_json_400() {
    let server = start(fast_config()).await;
    let game = crate::support::live_game(&server).await;
    for path in [
        format!("/api/games/{game}/timeline?since=1&since=2"),
        format!("/sse/live/{game}?since=1&since=2"),
    ] {
        let response = reqwest::get(format!("{}{path}", server.http_url()))
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(body["error"], "bad_request", "{path}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("duplicate field"),
            "{path}: {body}"
        );
    }
    let url = format!("{}/ws/live/{game}?since=1&since=2", server.ws_url());
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 400);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["error"], "bad_request", "{body}");
        }
        other => panic!("the upgrade was not refused: {other:?}"),
    }
    server.stop().await.unwrap();
}

/// One bad poll is not an outage: a 300 ms burst of malformed ESPN answers, well
/// under --stale-after, changes no status; and /health's ages are the time since the
/// last good answer, not since the state last changed.
#[tokio::test]
async fn one_bad_poll_does_not_flap_and_health_ages_are_real() {
    let mut config = admin_config();
    config.stale_after = std::time::Duration::from_secs(2);
    config.down_after = std::time::Duration::from_secs(4);
    let server = start(config).await;
    let health_url = format!("{}/health", server.http_url());
    let game = live_game(&server).await;
    let mut client = connect(&server, &format!("/ws/live/{game}")).await;
    let healthy_at = wait_for("healthy", || async {
        let (_, h) = get_valid(&health_url, Body::Health).await;
        (h["status"] == "healthy").then(std::time::Instant::now)
    })
    .await;

    let (status, body) = admin(
        &server,
        reqwest::Method::POST,
        "/admin/faults",
        Some(json!({"source": "espn", "mode": "malformed", "duration": "300ms"})),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Watch the stream for a second after the burst: espn stays ok throughout.
    let watch_until = std::time::Instant::now() + std::time::Duration::from_millis(1300);
    while let Ok(f) = tokio::time::timeout_at(watch_until.into(), client.next_frame()).await {
        let sources = f.value.get("sources").or(f.value["data"].get("sources"));
        if let Some(sources) = sources {
            assert_eq!(sources["espn"], "ok", "one bad poll flapped: {}", f.value);
        }
    }
    assert!(healthy_at.elapsed() > std::time::Duration::from_millis(1200));
    let (_, health) = get_valid(&health_url, Body::Health).await;
    for source in ["espn", "kalshi"] {
        assert_eq!(health["sources"][source]["state"], "ok", "{health}");
        let age = health["sources"][source]["last_success_age_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("{source} has an age: {health}"));
        assert!(
            age < 1000,
            "{source} answered well {age} ms ago, more than a second after it was healthy: {health}"
        );
    }
    server.stop().await.unwrap();
}
