//! What serve tells strangers (issue 11 point 9): advertised URLs that a Host header
//! cannot steer, no upstream URLs in public answers, no mock routes beside real
//! upstreams, a strict page policy and a case-insensitive auth scheme.

use livegames::serve::advertise::{Advertise, parse_public_url};
use serde_json::Value;

use crate::support::*;

/// `GET /api/live/games` with extra request headers; the first game's ws_url and
/// timeline_url.
async fn advertised(
    server: &livegames::serve::ServerHandle,
    headers: &[(&str, &str)],
) -> (String, String) {
    let mut request = reqwest::Client::new().get(format!("{}/api/live/games", server.http_url()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let list: Value = request.send().await.unwrap().json().await.unwrap();
    let first = &list["games"][0];
    let url = |key: &str| first[key].as_str().unwrap().to_owned();
    (url("ws_url"), url("timeline_url"))
}

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn advertised_urls_follow_the_reached_address_not_the_host_header() {
    let server = start(fast_config()).await;
    let claimed = [
        ("host", "evil.example"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "https"),
    ];
    let (ws_url, timeline_url) = advertised(&server, &claimed).await;
    let addr = server.local_addr;
    assert!(
        ws_url.starts_with(&format!("ws://{addr}/ws/live/")),
        "{ws_url}"
    );
    assert!(
        timeline_url.starts_with(&format!("http://{addr}/api/games/")),
        "{timeline_url}"
    );
    // And what it advertises works.
    let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .expect("the advertised ws_url opens");
    let mut client = Client::new(ws);
    assert_eq!(client.next_frame().await.kind, "snapshot");
    let timeline = get(&timeline_url).await;
    assert_eq!(timeline.status(), 200);
    server.stop().await.unwrap();
}

/// Listening on every address (0.0.0.0, as in a container), the advertised base is
/// the address the client's connection reached, never `0.0.0.0`.
#[tokio::test]
async fn listening_on_every_address_advertises_the_one_reached() {
    let server = livegames::serve::spawn(fast_config(), "0.0.0.0:0")
        .await
        .expect("server starts");
    assert!(server.local_addr.ip().is_unspecified());
    let port = server.local_addr.port();
    let list: Value = get(&format!("http://127.0.0.1:{port}/api/live/games"))
        .await
        .json()
        .await
        .unwrap();
    let ws_url = list["games"][0]["ws_url"].as_str().unwrap();
    assert!(
        ws_url.starts_with(&format!("ws://127.0.0.1:{port}/ws/live/")),
        "{ws_url}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn public_url_and_a_trusted_proxy_set_the_advertised_base() {
    let mut config = fast_config();
    config.advertise = Advertise {
        public_url: Some(parse_public_url("https://live.example.com/games/").unwrap()),
        trust_proxy: false,
    };
    let fixed = start(config).await;
    let (ws_url, timeline_url) = advertised(&fixed, &[("host", "evil.example")]).await;
    assert!(
        ws_url.starts_with("wss://live.example.com/games/ws/live/"),
        "{ws_url}"
    );
    assert!(
        timeline_url.starts_with("https://live.example.com/games/api/games/"),
        "{timeline_url}"
    );
    fixed.stop().await.unwrap();

    let mut config = fast_config();
    config.advertise.trust_proxy = true;
    let proxied = start(config).await;
    let forwarded = [(
        "forwarded",
        "for=192.0.2.1;proto=https;host=live.example.com",
    )];
    let (ws_url, _) = advertised(&proxied, &forwarded).await;
    assert!(
        ws_url.starts_with("wss://live.example.com/ws/live/"),
        "{ws_url}"
    );
    let legacy = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "live.example.com:8443"),
    ];
    let (_, timeline_url) = advertised(&proxied, &legacy).await;
    assert!(
        timeline_url.starts_with("https://live.example.com:8443/api/games/"),
        "{timeline_url}"
    );
    proxied.stop().await.unwrap();
}

#[tokio::test]
async fn upstream_urls_stay_out_of_public_answers_and_mocks_go_with_real_upstreams() {
    let (espn, kalshi, apisports) = (
        closed_port().await,
        closed_port().await,
        closed_port().await,
    );
    let mut config = fast_config();
    config.espn_url = Some(format!("http://127.0.0.1:{espn}"));
    config.kalshi_url = Some(format!("http://127.0.0.1:{kalshi}/trade-api/v2"));
    config.apisports_url = Some(format!("http://127.0.0.1:{apisports}/{{sport}}"));
    config.apisports_key = Some("k3y".into());
    config.admin_token = Some("s3cret".into());
    let server = start(config).await;
    let base = server.http_url();

    let health = wait_for("ESPN's failure in /health", || async {
        let health: Value = get(&format!("{base}/health")).await.json().await.unwrap();
        let detail = health["sources"]["espn"]["detail"].as_str()?.to_owned();
        (detail != "no answer yet").then_some(health)
    })
    .await;
    let text = health.to_string();
    assert!(
        !text.contains("://") && !text.contains(&espn.to_string()),
        "{text}"
    );
    assert!(
        text.contains("could not connect"),
        "still says what failed: {text}"
    );

    let scores = get(&format!("{base}/api/nfl/scores")).await;
    assert_eq!(scores.status(), 502);
    let body = scores.text().await.unwrap();
    assert!(
        !body.contains("://") && !body.contains(&apisports.to_string()),
        "{body}"
    );

    // The operator sees everything, with the scheme spelled in any case.
    let full = reqwest::Client::new()
        .get(format!("{base}/admin/sources"))
        .header("authorization", "bearer s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(full.status(), 200);
    let full = full.text().await.unwrap();
    assert!(full.contains(&format!("127.0.0.1:{espn}")), "{full}");

    let mock = get(&format!(
        "{base}/mock/espn/apis/site/v2/sports/basketball/nba/scoreboard"
    ))
    .await;
    assert_eq!(
        mock.status(),
        404,
        "no mock routes when every upstream is real"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_page_may_connect_only_to_its_origin_and_never_be_framed() {
    let server = start(fast_config()).await;
    let page = get(&format!("{}/", server.http_url())).await;
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let directives: Vec<&str> = policy.split(';').map(str::trim).collect();
    assert!(directives.contains(&"connect-src 'self'"), "{policy}");
    assert!(directives.contains(&"frame-ancestors 'none'"), "{policy}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let mut config = fast_config();
    config.admin_token = Some("s3cret".into());
    let server = start(config).await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let status = reqwest::Client::new()
            .get(format!("{}/admin/faults", server.http_url()))
            .header("authorization", format!("{scheme} s3cret"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{scheme}");
    }
    let wrong = reqwest::Client::new()
        .get(format!("{}/admin/faults", server.http_url()))
        .header("authorization", "Basic s3cret")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(wrong, 401);
    server.stop().await.unwrap();
}
