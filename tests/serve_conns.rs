//! Connection hygiene (issue 11): header and idle timeouts, a cap on every open
//! connection, and room made at the cap by the connection that waited longest.

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
