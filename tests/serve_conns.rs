//! Connection hygiene: header and idle timeouts, a cap on every open connection,
//! room made at the cap by the connection that waited longest, and an answer for a
//! client that shut its write side after its request.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

fn hygiene_config(
    header: u64,
    idle: u64,
    max_open: Option<usize>,
) -> livegames::serve::ServeConfig {
    let mut config = fast_config();
    config.header_timeout = Duration::from_millis(header);
    config.idle_timeout = Duration::from_millis(idle);
    config.max_open = max_open;
    config
}

/// Waits until the server closes `tcp` (EOF or reset); returns how long that took.
/// Anything the server sent first is returned with it.
async fn closed_after(tcp: &mut TcpStream) -> (Duration, String) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(DEADLINE, tcp.read(&mut buf)).await {
            Err(_) => panic!("the server kept the connection open for {DEADLINE:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    (
        started.elapsed(),
        String::from_utf8_lossy(&got).into_owned(),
    )
}

async fn dropped(server: &livegames::serve::ServerHandle, reason: &str) -> f64 {
    metric(
        server,
        &format!("livegames_connections_dropped_total{{reason=\"{reason}\"}}"),
    )
    .await
}

#[tokio::test]
async fn a_request_followed_by_a_half_close_still_gets_its_answer() {
    // As `nc -N`, some health checkers and proxies do: the request, then FIN.
    let server = start(fast_config()).await;
    let game = live_game(&server).await;
    for path in [
        "/api/live/games".to_owned(),
        "/metrics".to_owned(),
        "/health".to_owned(),
        format!("/api/games/{game}/timeline"),
    ] {
        let mut tcp = TcpStream::connect(server.local_addr).await.unwrap();
        tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        tcp.shutdown().await.unwrap();
        let (_, answer) = closed_after(&mut tcp).await;
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "{path}: {:?}",
            livegames::text::cut(&answer, 200)
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_request_head_over_64_kib_gets_431_however_it_arrives() {
    // The limit is on the head's bytes, not on how many of them one read brought:
    // heads from just over the limit to twice it arrive whole in one or two reads.
    let server = start(fast_config()).await;
    for (value_len, status) in [(60_000, "200"), (66_000, "431"), (100_000, "431")] {
        let mut tcp = TcpStream::connect(server.local_addr).await.unwrap();
        let head = format!(
            "GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
            "a".repeat(value_len)
        );
        // The server may answer and close before reading it all.
        let _ = tcp.write_all(head.as_bytes()).await;
        let _ = tcp.shutdown().await;
        let (_, answer) = closed_after(&mut tcp).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "a {}-byte head: {:?}",
            head.len(),
            livegames::text::cut(&answer, 80)
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_head_that_never_completes_is_dropped_at_the_header_timeout() {
    let server = start(hygiene_config(400, 5_000, None)).await;
    let mut trickler = TcpStream::connect(server.local_addr).await.unwrap();
    trickler
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let (took, answer) = closed_after(&mut trickler).await;
    assert!(
        took >= Duration::from_millis(350),
        "closed after {took:?}, before the timeout"
    );
    assert!(answer.is_empty(), "no answer to half a request: {answer}");
    // A connection that never sends a byte is timed by the same clock.
    let mut silent = TcpStream::connect(server.local_addr).await.unwrap();
    let (took, _) = closed_after(&mut silent).await;
    assert!(took >= Duration::from_millis(350), "{took:?}");
    assert_eq!(dropped(&server, "header_timeout").await, 2.0);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_keep_alive_connection_waits_idle_timeout_not_header_timeout() {
    // Idle longer than the header timeout: the two clocks are separate.
    let server = start(hygiene_config(300, 1_500, None)).await;
    let mut client = TcpStream::connect(server.local_addr).await.unwrap();
    let request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    client.write_all(request).await.unwrap();
    read_one_response(&mut client).await;
    // The scenario: a pause longer than the header timeout, shorter than idle.
    tokio::time::sleep(Duration::from_millis(700)).await;
    client.write_all(request).await.unwrap();
    read_one_response(&mut client).await;
    let (took, _) = closed_after(&mut client).await;
    assert!(
        took >= Duration::from_millis(1_400),
        "closed after {took:?}"
    );
    assert_eq!(dropped(&server, "idle_timeout").await, 1.0);
    assert_eq!(dropped(&server, "header_timeout").await, 0.0);
    server.stop().await.unwrap();
}

/// Reads one `200` response with a content-length body from a keep-alive connection.
async fn read_one_response(tcp: &mut TcpStream) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let complete = |got: &[u8]| -> bool {
        let text = String::from_utf8_lossy(got).to_ascii_lowercase();
        let Some(end) = text.find("\r\n\r\n") else {
            return false;
        };
        let length: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        got.len() >= end + 4 + length
    };
    while !complete(&got) {
        let n = tokio::time::timeout(DEADLINE, tcp.read(&mut buf))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(
            n > 0,
            "closed mid-response: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

#[tokio::test]
async fn at_the_cap_the_longest_waiting_connection_makes_room() {
    let server = start(hygiene_config(30_000, 30_000, Some(4))).await;
    let mut tricklers = Vec::new();
    for _ in 0..4 {
        let mut t = TcpStream::connect(server.local_addr).await.unwrap();
        t.write_all(b"GET / HTTP/1.1\r\nX-Slow: ").await.unwrap();
        tricklers.push(t);
    }
    // The scenario: the tricklers hold every slot for a while (younger than half a
    // second, a connection keeps its slot).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let started = Instant::now();
    let (status, body) = get_valid(
        &format!("{}/health", server.http_url()),
        livegames::contract::schema::Body::Health,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(dropped(&server, "evicted").await >= 1.0);
    // The oldest trickler was the one to go.
    let (_, answer) = closed_after(&mut tricklers[0]).await;
    assert!(answer.is_empty(), "{answer}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn websockets_count_against_the_cap_and_the_rest_get_a_quick_503() {
    let server = start(hygiene_config(30_000, 30_000, Some(2))).await;
    let _a = connect(&server, "/ws/live/0022400196").await;
    let _b = connect(&server, "/ws/live/0022400196").await;
    // Nobody to evict: a streaming WebSocket is not waiting.
    let started = Instant::now();
    let mut refused = TcpStream::connect(server.local_addr).await.unwrap();
    refused
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (_, answer) = closed_after(&mut refused).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    assert!(answer.contains("--max-open"), "{answer}");
    drop(_a);
    // A slot is free again once a WebSocket leaves; the refusal was counted.
    let url = format!("{}/metrics", server.http_url());
    let over_limit = "livegames_connections_dropped_total{reason=\"over_limit\"} ";
    let counted = wait_for("a free slot and the count", || async {
        let reply = reqwest::Client::new().get(&url).send().await.ok()?;
        let text = reply.text().await.ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(over_limit))
            .and_then(|v| v.trim().parse::<f64>().ok())
    })
    .await;
    assert!(counted >= 1.0, "{counted}");
    server.stop().await.unwrap();
}

/// A client that sends pings as fast as its socket takes them until the server closes
/// it. Returns the close, the rate_limited errors and the pongs it got back.
async fn flood(server: &livegames::serve::ServerHandle, game: &str) -> Flooded {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let client = connect(server, &format!("/ws/live/{game}")).await;
    let (mut sink, mut stream) = client.ws.split();
    let writer = tokio::spawn(async move {
        let mut sent = 0u64;
        let ping: tokio_tungstenite::tungstenite::Utf8Bytes = r#"{"type":"ping","id":1}"#.into();
        while sink.send(Message::Text(ping.clone())).await.is_ok() {
            sent += 1;
        }
        sent
    });
    let mut flooded = Flooded::default();
    loop {
        let message = tokio::time::timeout(DEADLINE, stream.next())
            .await
            .expect("the flooder was not closed in time");
        match message {
            Some(Ok(Message::Text(text))) => {
                let frame: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                match frame["type"].as_str() {
                    Some("pong") => flooded.pongs += 1,
                    Some("error") => flooded.errors.push(frame["code"].to_string()),
                    _ => {}
                }
            }
            Some(Ok(Message::Close(close))) => {
                flooded.close = close.map(|c| u16::from(c.code));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    flooded.sent = tokio::time::timeout(DEADLINE, writer)
        .await
        .expect("the writer stops once the server is gone")
        .unwrap();
    flooded
}

#[derive(Debug, Default)]
struct Flooded {
    close: Option<u16>,
    errors: Vec<String>,
    pongs: u64,
    sent: u64,
}

#[tokio::test]
async fn ping_flooders_get_one_warning_then_1008_while_a_normal_client_keeps_its_latency() {
    let mut config = fast_config();
    config.rate = 50.0;
    config.ws.inbound = livegames::serve::stream::inbound::InboundRate::per_second(100);
    let server = start(config).await;
    let game = live_game(&server).await;

    let mut control = connect(&server, &format!("/ws/live/{game}")).await;
    let measured = tokio::spawn(async move {
        let mut latencies = Vec::new();
        while latencies.len() < 150 {
            let f = control.next_frame().await;
            if f.kind == "update" {
                latencies.push(f.received_at - f.ts);
            }
        }
        // A client at an honest rate is never warned: its ping is answered.
        control.send_text(r#"{"type":"ping","id":7}"#).await;
        let pong = control.next_of("pong").await;
        (latencies, pong)
    });

    let flooders = (0..3).map(|_| flood(&server, &game));
    let flooded = futures_util::future::join_all(flooders).await;
    for f in &flooded {
        assert_eq!(f.close, Some(1008), "{f:?}");
        assert_eq!(
            f.errors,
            ["\"rate_limited\""],
            "one warning, then the close: {f:?}"
        );
        // The burst (200) and what refilled while it lasted; nothing like the flood.
        assert!(f.pongs >= 200 && f.pongs < f.sent, "{f:?}");
    }
    assert_eq!(
        metric(&server, "livegames_ws_rate_limited_total").await,
        3.0
    );
    assert_eq!(
        metric(&server, "livegames_ws_closes_total{code=\"1008\"}").await,
        3.0
    );

    let (mut latencies, pong) = measured.await.unwrap();
    assert_eq!(pong.value["id"], 7);
    let p99 = percentile(&mut latencies, 0.99);
    assert!(p99 < 250_000, "control p99 {p99} µs beside the flooders");
    server.stop().await.unwrap();
}
