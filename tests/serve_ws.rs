use std::time::Duration;

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

#[tokio::test]
async fn snapshot_then_updates_with_seq_plus_one_and_sane_ts() {
    let server = start(fast_config()).await;
    let game = live_game(&server).await;
    let mut client = connect(&server, &format!("/ws/live/{game}")).await;
    let snapshot = client.next_frame().await;
    assert_eq!(snapshot.kind, "snapshot");
    assert_eq!(snapshot.value["game_id"], game.as_str());
    assert_eq!(snapshot.value["game"]["id"], game.as_str());
    let mut expected = snapshot.seq + 1;
    let mut updates = 0;
    while updates < 30 {
        let f = client.next_frame().await;
        match f.kind.as_str() {
            "update" | "status" | "final" => {
                assert_eq!(f.seq, expected, "data frames step by exactly one");
                expected += 1;
                updates += 1;
            }
            "heartbeat" => assert_eq!(f.seq, expected - 1, "heartbeats repeat the latest seq"),
            other => panic!("unexpected {other}"),
        }
        let skew = (f.received_at - f.ts).abs();
        assert!(
            skew < 5_000_000,
            "ts {} is {skew} µs from the local clock",
            f.ts
        );
        if f.kind == "update" {
            let observed = f.value["data"]["observed_at"].as_i64().unwrap();
            assert!(observed <= f.ts, "observed before written");
        }
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn ping_gets_a_pong_echoing_its_id() {
    let server = start(fast_config()).await;
    let game = live_game(&server).await;
    let mut client = connect(&server, &format!("/ws/live/{game}")).await;
    client.send_text(r#"{"type":"ping","id":42}"#).await;
    let pong = client.next_of("pong").await;
    assert_eq!(pong.value["id"], 42);
    client.send_text(r#"{"type":"ping","id":"abc"}"#).await;
    assert_eq!(client.next_of("pong").await.value["id"], "abc");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn junk_from_the_client_gets_an_error_frame_and_the_stream_goes_on() {
    let server = start(fast_config()).await;
    let game = live_game(&server).await;
    let mut client = connect(&server, &format!("/ws/live/{game}")).await;
    client.send_text("this is not json").await;
    let e = client.next_of("error").await;
    assert_eq!(e.value["code"], "invalid_json");
    client
        .send_text(r#"{"type":"subscribe","games":["x"]}"#)
        .await;
    let e = client.next_of("error").await;
    assert_eq!(e.value["code"], "unsupported_frame");
    assert!(e.value["message"].as_str().unwrap().contains("ping"));
    client
        .ws
        .send(Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .unwrap();
    let e = client.next_of("error").await;
    assert_eq!(e.value["code"], "binary_not_supported");
    let after = client.next_of("update").await;
    assert!(after.seq > e.seq || after.seq == e.seq + 1);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn client_frames_over_64_kib_are_refused_with_1009() {
    let server = start(fast_config()).await;
    let game = live_game(&server).await;
    let mut client = connect(&server, &format!("/ws/live/{game}")).await;
    client.next_of("snapshot").await;
    let big = format!(r#"{{"type":"ping","id":"{}"}}"#, "x".repeat(70 * 1024));
    let _ = client.ws.send(Message::Text(big.into())).await;
    let close = client.closed().await;
    assert_eq!(close.map(|c| c.0), Some(1009));
    // The server is fine afterwards.
    let mut other = connect(&server, &format!("/ws/live/{game}")).await;
    assert_eq!(other.next_frame().await.kind, "snapshot");
    server.stop().await.unwrap();
}

async fn expect_unknown_game(server: &livegames::serve::ServerHandle, path: &str, code: &str) {
    let mut client = connect(server, path).await;
    let e = client.next_frame().await;
    assert_eq!(e.kind, "error", "{path}");
    assert_eq!(e.value["code"], code, "{path}");
    assert!(
        e.value["message"]
            .as_str()
            .unwrap()
            .contains("/api/live/games"),
        "{}",
        e.value
    );
    let close = client.closed().await;
    assert_eq!(close.map(|c| c.0), Some(4404), "{path}");
}

#[tokio::test]
async fn unknown_long_encoded_and_path_like_game_ids_get_an_error_then_4404() {
    let server = start(fast_config()).await;
    expect_unknown_game(&server, "/ws/live/0099999999", "unknown_game").await;
    expect_unknown_game(
        &server,
        &format!("/ws/live/{}", "9".repeat(5000)),
        "invalid_game_id",
    )
    .await;
    expect_unknown_game(&server, "/ws/live/%2E%2E%2Fetc%2Fpasswd", "invalid_game_id").await;
    expect_unknown_game(&server, "/ws/live/%00%ff", "invalid_game_id").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn heartbeats_arrive_when_nothing_else_is_sent() {
    let mut config = fast_config();
    // Almost nothing happens: a tick every 100 s, the replay barely moves.
    config.rate = 0.01;
    config.speed = 0.001;
    config.heartbeat = Duration::from_secs(1);
    let server = start(config).await;
    let mut client = connect(&server, "/ws/live/0022400196").await;
    let mut last = client.next_of("snapshot").await.received_at;
    let mut heartbeats = 0;
    for _ in 0..30 {
        if heartbeats == 3 {
            break;
        }
        let f = client.next_frame().await;
        let gap = f.received_at - last;
        assert!(
            gap <= 1_300_000,
            "{gap} µs without a frame (heartbeat every 1 s)"
        );
        if f.kind == "heartbeat" {
            heartbeats += 1;
        }
        last = f.received_at;
    }
    assert_eq!(
        heartbeats,
        3,
        "{:?}",
        client.frames.iter().map(|f| &f.kind).collect::<Vec<_>>()
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn connections_over_the_limit_get_503_with_retry_after() {
    let mut config = fast_config();
    config.max_conns = 2;
    let server = start(config).await;
    let _a = connect(&server, "/ws/live/0022400196").await;
    let _b = connect(&server, "/ws/live/0022400196").await;
    let url = format!("{}/ws/live/0022400196", server.ws_url());
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            assert_eq!(response.headers()["retry-after"], "1");
        }
        other => panic!("expected 503, got {:?}", other.map(|(_, r)| r.status())),
    }
    drop(_a);
    // A slot frees up once a client leaves.
    wait_for("a free slot", || async {
        tokio_tungstenite::connect_async(url.as_str())
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    server.stop().await.unwrap();
}

/// issue 11: a client's Close is answered with a Close of the same code before the
/// connection ends (RFC 6455 5.5.1), so clients see a clean close, not 1006.
#[tokio::test]
async fn a_close_from_the_client_is_answered_with_the_same_code() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let server = start(fast_config()).await;
    let game = live_game(&server).await;
    let url = format!("{}/ws/live/{game}", server.ws_url());
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let first = ws.next().await.unwrap().unwrap();
    assert!(first.is_text());
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Library(4321),
        reason: "done here".into(),
    })))
    .await
    .unwrap();
    let reply = tokio::time::timeout(DEADLINE, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("the connection ended without a Close back: {other:?}"),
            }
        }
    })
    .await
    .expect("a Close back");
    assert_eq!(reply.map(|f| u16::from(f.code)), Some(4321));
    assert!(
        tokio::time::timeout(DEADLINE, ws.next())
            .await
            .unwrap()
            .is_none(),
        "then the connection ends cleanly"
    );
    server.stop().await.unwrap();
}

/// issue 11: `livegames.v1` is chosen when a client offers it (alone or among others);
/// a client that offers none, or only others, gets none.
#[tokio::test]
async fn subprotocol_livegames_v1_is_chosen_when_offered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = start(fast_config()).await;
    let url = format!("{}/ws/live/0022400196", server.ws_url());
    for (offer, chosen) in [
        (Some("livegames.v1"), Some("livegames.v1")),
        (Some("chat, livegames.v1"), Some("livegames.v1")),
        (None, None),
    ] {
        let mut request = url.as_str().into_client_request().unwrap();
        if let Some(offer) = offer {
            request
                .headers_mut()
                .insert("sec-websocket-protocol", offer.parse().unwrap());
        }
        let (ws, response) = tokio_tungstenite::connect_async(request)
            .await
            .unwrap_or_else(|e| panic!("offering {offer:?}: {e}"));
        let got = response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap());
        assert_eq!(got, chosen, "offering {offer:?}");
        assert_eq!(Client::new(ws).next_frame().await.kind, "snapshot");
    }
    // Only other protocols: the upgrade succeeds without one (the client decides).
    let mut raw = tokio::net::TcpStream::connect(server.local_addr)
        .await
        .unwrap();
    raw.write_all(
        b"GET /ws/live/0022400196 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Protocol: chat\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tokio::time::timeout(DEADLINE, raw.read_exact(&mut byte))
            .await
            .expect("the response head in time")
            .unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(!head.contains("sec-websocket-protocol"), "{head}");
    server.stop().await.unwrap();
}
