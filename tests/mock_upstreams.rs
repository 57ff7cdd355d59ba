//! The mock upstreams' endpoints that serve itself does not call, as a user's own code
//! would call them: Kalshi's market, order book and event lookups and the ticker
//! channel's commands, API-SPORTS' unknown sports and account status, each answered
//! in the real API's shape, including its errors.

use futures_util::{SinkExt, StreamExt};
use livegames::mocks::mock_kalshi_signer;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::*;

async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the mock answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text }));
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kalshi_lookups_answer_each_market_and_event_and_404_the_rest() {
    let server = start(fast_config()).await;
    let base = format!("{}/mock/kalshi/trade-api/v2", server.http_url());
    let (status, list) = get(&format!("{base}/markets"), &[]).await;
    assert_eq!(status, 200, "{list}");
    let market = &list["markets"][0];
    let ticker = market["ticker"].as_str().expect("a market ticker");
    let event = market["event_ticker"].as_str().expect("its event");

    let (status, one) = get(&format!("{base}/markets/{ticker}"), &[]).await;
    assert_eq!(
        (status, one["market"]["ticker"].as_str()),
        (200, Some(ticker))
    );
    let (status, book) = get(&format!("{base}/markets/{ticker}/orderbook"), &[]).await;
    assert_eq!(status, 200, "{book}");
    let bids = book["orderbook_fp"]["yes_dollars"].as_array().unwrap();
    assert!(!bids.is_empty() && bids[0][1] == "500.00", "{book}");
    let (status, found) = get(&format!("{base}/events/{event}"), &[]).await;
    assert_eq!(status, 200, "{found}");
    assert!(
        found["markets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["ticker"] == ticker),
        "{found}"
    );
    for path in [
        "markets/KXNOPE-1",
        "markets/KXNOPE-1/orderbook",
        "events/KXNOPE",
    ] {
        let (status, body) = get(&format!("{base}/{path}"), &[]).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("not_found")),
            "{path}: {body}"
        );
    }
    // The filter's words are not the objects' status words; an unknown one matches none.
    let count = |body: &Value| body["markets"].as_array().map_or(0, Vec::len);
    let (_, open) = get(&format!("{base}/markets?status=open"), &[]).await;
    assert!(
        open["markets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["status"] == "active"),
        "{open}"
    );
    for (filter, word) in [("closed", "determined"), ("settled", "finalized")] {
        let (code, some) = get(&format!("{base}/markets?status={filter}"), &[]).await;
        assert_eq!(code, 200, "{some}");
        let markets = some["markets"].as_array().unwrap();
        assert!(
            markets.iter().all(|m| m["status"] == word),
            "{filter}: {some}"
        );
    }
    assert!(count(&open) > 0, "some market is open: {open}");
    let (_, none) = get(&format!("{base}/markets?status=bogus"), &[]).await;
    assert_eq!(count(&none), 0, "{none}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ticker_channel_answers_every_command_as_kalshi_does() {
    let server = start(fast_config()).await;
    let path = "/mock/kalshi/trade-api/ws/v2";
    let mut request = format!("{}{path}", server.ws_url())
        .into_client_request()
        .unwrap();
    let signer = mock_kalshi_signer().unwrap();
    let now_ms = livegames::clock::unix_micros() / 1_000;
    for (name, value) in signer.headers("GET", path, now_ms) {
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("a signed handshake is taken");
    let mut ask = async |command: String| -> Value {
        socket.send(Message::text(command)).await.unwrap();
        loop {
            let next = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next());
            match next.await.expect("an answer in time") {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    // Ticker messages of an earlier subscription may come first.
                    if value["type"] != "ticker" {
                        return value;
                    }
                }
                Some(Ok(_)) => continue,
                other => panic!("the channel ended: {other:?}"),
            }
        }
    };
    let answers = [
        (
            "not json",
            json!({"type": "error", "msg": {"code": 2, "msg": "Params required"}}),
        ),
        (
            r#"{"id":1,"cmd":"subscribe","params":{"channels":["orderbook_delta"]}}"#,
            json!({"id": 1, "type": "error", "msg": {"code": 8, "msg": "Unknown channel"}}),
        ),
        (
            r#"{"id":2,"cmd":"subscribe","params":{"channels":["ticker"],"market_tickers":["KXNOPE-1"]}}"#,
            json!({"id": 2, "type": "error", "msg": {"code": 16, "msg": "Market not found"}}),
        ),
        (
            r#"{"id":3,"cmd":"list_subscriptions"}"#,
            json!({"id": 3, "type": "ok", "msg": []}),
        ),
        (
            r#"{"id":4,"cmd":"subscribe","params":{"channels":["ticker"]}}"#,
            json!({"id": 4, "type": "subscribed", "msg": {"channel": "ticker", "sid": 1}}),
        ),
        (
            r#"{"id":5,"cmd":"list_subscriptions"}"#,
            json!({"id": 5, "type": "ok", "msg": [{"channel": "ticker", "sid": 1}]}),
        ),
        (
            r#"{"id":6,"cmd":"unsubscribe","params":{"sids":[1]}}"#,
            json!({"id": 6, "sid": 1, "type": "unsubscribed"}),
        ),
        (
            r#"{"id":7,"cmd":"update_subscription"}"#,
            json!({"id": 7, "type": "error", "msg": {"code": 5, "msg": "Unknown command"}}),
        ),
    ];
    for (command, expected) in answers {
        assert_eq!(ask(command.to_owned()).await, expected, "{command}");
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apisports_names_unknown_sports_and_reports_the_account() {
    let server = start(fast_config()).await;
    let base = format!("{}/mock/apisports", server.http_url());
    let key = ("x-apisports-key", livegames::mocks::DEFAULT_APISPORTS_KEY);
    let (status, body) = get(&format!("{base}/cricket/games"), &[key]).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (404, Some("Endpoint not found."))
    );
    let (status, games) = get(&format!("{base}/hockey/games?date=2026-12-07"), &[key]).await;
    assert_eq!(status, 200, "{games}");
    assert_eq!(games["parameters"]["date"], "2026-12-07", "{games}");
    let (status, account) = get(&format!("{base}/hockey/status"), &[key]).await;
    assert_eq!(status, 200, "{account}");
    let requests = &account["response"]["requests"];
    // This call and the one before it (the unknown sport spends nothing).
    assert!(requests["current"].as_u64().unwrap() >= 2, "{account}");
    assert_eq!(requests["limit_day"], 7_500, "{account}");
    // No key: 403. A wrong key: 200, refused in the body, as API-SPORTS does.
    let (status, refused) = get(&format!("{base}/hockey/status"), &[]).await;
    assert_eq!(status, 403, "{refused}");
    assert!(refused["errors"]["token"].is_string(), "{refused}");
    let wrong = ("x-apisports-key", "not-the-key");
    let (status, refused) = get(&format!("{base}/hockey/status"), &[wrong]).await;
    assert_eq!(status, 200, "{refused}");
    assert!(refused["errors"]["token"].is_string(), "{refused}");
    server.stop().await.unwrap();
}
