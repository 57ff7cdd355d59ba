//! permessage-deflate (RFC 7692) at both ends: load's client against PyPI's
//! `websockets` server and against serve; serve against `websockets`' client; what
//! each side agreed, the bytes on the wire, and servers that decline or send what
//! cannot be inflated.

use std::time::Duration;

use livegames::client::ConnectOptions;
use livegames::load::measure::compression::CompressionCounts;
use livegames::load::results::summary::LoadSummary;
use livegames::load::session::VuConfig;
use livegames::wire::{Offer, ServerMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::loads::{check, load_with as load};
use crate::support::peers::{Lines, peer_installed, spawn_peer_with};
use crate::support::*;

fn vu(compress: Offer) -> VuConfig {
    VuConfig {
        connect: ConnectOptions {
            connect_timeout: Duration::from_secs(5),
            compress,
            ..ConnectOptions::default()
        },
        idle_timeout: Duration::from_secs(10),
        ..VuConfig::default()
    }
}

fn compression(summary: &LoadSummary) -> &CompressionCounts {
    summary
        .totals
        .counts
        .compression
        .as_ref()
        .expect("a run that offered compression reports it")
}

/// Python with PyPI's `websockets`, or None (skipped, or failed where tools are
/// required).
fn python_websockets() -> Option<std::path::PathBuf> {
    let python = crate::support::tools::tool("python3", "python3")?;
    let installed = std::process::Command::new(&python)
        .args(["-c", "import websockets.asyncio.server"])
        .status()
        .is_ok_and(|s| s.success());
    peer_installed("websockets", installed, "pip install websockets").then_some(python)
}

fn peer(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(name)
}

/// The JSON lines a peer prints, `n` of them, each within the deadline.
async fn json_lines(lines: &mut Lines, n: usize) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let line = tokio::time::timeout(DEADLINE, lines.next_line())
            .await
            .expect("the peer prints a line in time")
            .unwrap()
            .expect("the peer is still running");
        out.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}")));
    }
    out
}

/// Against `websockets`' own server (window 12 bits, context kept): the frames
/// are inflated and read at the usual pointers, and the bytes load counts on the
/// wire are the bytes the server counted writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_reads_a_python_websockets_feed_compressed_and_counts_its_wire_bytes() {
    let Some(python) = python_websockets() else {
        return;
    };
    let script = peer("ws-deflate-server.py");
    let (mut server, mut lines, port) = spawn_peer_with(&python, &script, &[]).await;
    let url = format!("ws://127.0.0.1:{port}/feed");
    let s = load(url.clone(), 3, Duration::from_secs(2), vu(Offer::On)).await;
    let c = &s.totals.counts;
    assert!(c.frames > 150, "{c:?}");
    assert!(c.unreadable.is_empty(), "{c:?}");
    assert_eq!((c.lost, c.duplicates), (Some(0), Some(0)), "{c:?}");
    let z = compression(&s);
    assert_eq!(z.offered, "permessage-deflate; client_max_window_bits");
    assert_eq!(
        z.agreed.as_deref(),
        Some("permessage-deflate; server_max_window_bits=12; client_max_window_bits=12")
    );
    assert_eq!((z.agreed_conns, z.declined_conns), (3, 0));
    assert_eq!(
        z.message_bytes, c.bytes,
        "every frame came on a counted socket"
    );
    assert!(z.inflated >= c.frames, "{z:?}");
    // ~300 bytes of JSON that repeat their keys: the kept context pays.
    assert!(z.wire_bytes * 4 < z.message_bytes, "{z:?}");
    assert!(check(&s, "compression").passed, "{:?}", s.checks);
    // The server's own count, per connection: its handshake answer (not frames) and
    // the close are the only bytes on its side and not on ours.
    let counted: u64 = json_lines(&mut lines, 3)
        .await
        .iter()
        .map(|l| l["wire_bytes"].as_u64().unwrap())
        .sum();
    let diff = counted.abs_diff(z.wire_bytes);
    assert!(
        diff < 3 * 400,
        "server wrote {counted}, load read {}",
        z.wire_bytes
    );

    // Asking for no context: the server compresses each frame on its own, and says so.
    let s = load(url, 2, Duration::from_secs(1), vu(Offer::NoContext)).await;
    let z = compression(&s);
    assert!(
        z.agreed
            .as_deref()
            .is_some_and(|a| a.contains("server_no_context_takeover")),
        "{z:?}"
    );
    assert!(s.checks.iter().all(|c| c.passed), "{:?}", s.checks);
    let _ = server.kill().await;
}

/// A server that declines every offer: the frames are still read, and the run's
/// compression check fails saying the server declined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_declines_fails_the_compression_check() {
    let Some(python) = python_websockets() else {
        return;
    };
    let script = peer("ws-deflate-server.py");
    let (mut server, _lines, port) = spawn_peer_with(&python, &script, &["--no-compression"]).await;
    let s = load(
        format!("ws://127.0.0.1:{port}/feed"),
        2,
        Duration::from_secs(1),
        vu(Offer::On),
    )
    .await;
    assert!(s.totals.counts.frames > 40, "{:?}", s.totals.counts);
    assert!(check(&s, "frames").passed);
    let verdict = check(&s, "compression");
    assert!(!verdict.passed);
    assert!(
        verdict
            .observed
            .starts_with("the server declined permessage-deflate on all 2 connections"),
        "{}",
        verdict.observed
    );
    let z = compression(&s);
    // Uncompressed frames on the frame-layer socket: the wire is a little larger.
    assert!(z.wire_bytes > z.message_bytes && z.inflated == 0, "{z:?}");
    let _ = server.kill().await;
}

/// serve, shared: every client that agrees gets each broadcast frame compressed
/// once, with no context kept (said in the answer whether asked or not).
/// Per client: a compressor each, so the context is kept and the ratio is better.
/// Off: declined. /metrics counts the agreements, the wire bytes and the time. Users
/// that churn resume compressed with nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_compresses_shared_or_per_client_and_counts_it() {
    let mut ratios = Vec::new();
    for mode in [ServerMode::Shared, ServerMode::PerClient] {
        let mut config = fast_config();
        config.ws.deflate = mode;
        let server = start(config).await;
        let game = live_game(&server).await;
        let url = format!("{}/ws/live/{game}", server.ws_url());
        // Users leave and come back (?since=): the resumed streams are compressed too.
        let churning = VuConfig {
            churn: Some(Duration::from_millis(700)),
            ..vu(Offer::On)
        };
        let s = load(url, 4, Duration::from_secs(2), churning).await;
        let c = &s.totals.counts;
        assert!(c.frames > 30 && c.unreadable.is_empty(), "{mode:?}: {c:?}");
        assert!(c.reconnect_successes >= 4, "{mode:?}: {c:?}");
        assert_eq!(
            (c.lost, c.duplicates),
            (Some(0), Some(0)),
            "{mode:?}: {c:?}"
        );
        assert!(
            s.checks.iter().all(|c| c.passed),
            "{mode:?}: {:?}",
            s.checks
        );
        let z = compression(&s);
        let expected = match mode {
            ServerMode::Shared => {
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
            }
            _ => "permessage-deflate; client_no_context_takeover",
        };
        assert_eq!(z.agreed.as_deref(), Some(expected));
        assert!(z.wire_bytes < z.message_bytes, "{mode:?}: {z:?}");
        ratios.push(z.message_bytes as f64 / z.wire_bytes as f64);
        let agreed = metric(&server, "livegames_ws_deflate_connections_total").await;
        assert_eq!(
            agreed, c.connected as f64,
            "{mode:?}: every connection agreed"
        );
        assert_eq!(z.agreed_conns, c.connected, "{mode:?}");
        assert!(metric(&server, "livegames_ws_deflate_seconds_total").await > 0.0);
        let wire = metric(&server, "livegames_ws_wire_bytes_sent_total").await;
        let payload = metric(&server, "livegames_ws_bytes_sent_total").await;
        assert!(
            wire > 0.0 && wire < payload,
            "{mode:?}: wire {wire}, payload {payload}"
        );
        let _ = server.stop().await;
    }
    assert!(
        ratios[1] > ratios[0],
        "a kept context compresses better: {ratios:?}"
    );

    let mut config = fast_config();
    config.ws.deflate = ServerMode::Off;
    let server = start(config).await;
    let game = live_game(&server).await;
    let url = format!("{}/ws/live/{game}", server.ws_url());
    let s = load(url, 2, Duration::from_secs(1), vu(Offer::On)).await;
    assert!(!check(&s, "compression").passed);
    assert!(check(&s, "frames").passed);
    assert_eq!(
        metric(&server, "livegames_ws_deflate_connections_total").await,
        0.0
    );
    // Uncompressed, the wire is the payload plus the frames' headers.
    let wire = metric(&server, "livegames_ws_wire_bytes_sent_total").await;
    let payload = metric(&server, "livegames_ws_bytes_sent_total").await;
    assert!(wire > payload, "wire {wire}, payload {payload}");
    let _ = server.stop().await;
}

/// `websockets`' client against serve: it agrees, reads the stream, and its own
/// compressed ping is inflated and answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_websockets_client_reads_serve_compressed() {
    let Some(python) = python_websockets() else {
        return;
    };
    let server = start(fast_config()).await;
    let game = live_game(&server).await;
    let url = format!("{}/ws/live/{game}", server.ws_url());
    let out = tokio::time::timeout(
        DEADLINE,
        tokio::process::Command::new(&python)
            .arg(peer("ws-deflate-client.py"))
            .args([url.as_str(), "5"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the client finishes")
    .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(said.trim()).unwrap();
    assert_eq!(
        result["agreed"],
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    );
    assert_eq!(result["types"][0], "snapshot");
    assert_eq!(result["pong"], true, "{result}");
    let _ = server.stop().await;
}

/// A fake server that agrees permessage-deflate and then sends `frame`.
async fn agreeing_server(frame: Vec<u8>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let frame = frame.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if tcp.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let key = head
                    .lines()
                    .find_map(|l| l.strip_prefix("sec-websocket-key: "))
                    .unwrap_or_default();
                let accept =
                    tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
                let answer = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
                );
                let _ = tcp.write_all(answer.as_bytes()).await;
                let _ = tcp.write_all(&frame).await;
                let mut sink = [0u8; 1024];
                while tcp.read(&mut sink).await.unwrap_or(0) > 0 {}
            });
        }
    });
    addr
}

/// What cannot be inflated ends the connection under a name: a bomb past
/// `--max-message` as message_too_large (never inflated whole), garbage as
/// bad_deflate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_that_cannot_be_inflated_are_named() {
    let mut bomb = Vec::new();
    livegames::wire::deflate::compress_one(&vec![b'{'; 8 << 20], &mut bomb);
    let mut frame = vec![0xc1, 126];
    frame.extend_from_slice(&(bomb.len() as u16).to_be_bytes());
    frame.extend_from_slice(&bomb);
    let garbage = vec![0xc1, 4, 0xff, 0xff, 0xff, 0xff];
    for (frame, kind, said) in [
        (frame, "message_too_large", "too long"),
        (garbage, "bad_deflate", "not valid DEFLATE"),
    ] {
        let addr = agreeing_server(frame).await;
        let mut config = vu(Offer::On);
        config.connect.max_message = Some(1 << 20);
        config.reconnect = None;
        let s = load(
            format!("ws://{addr}/"),
            1,
            Duration::from_millis(800),
            config,
        )
        .await;
        let c = &s.totals.counts;
        assert_eq!(c.errors.get(kind), Some(&1), "{kind}: {c:?}");
        let example = c.error_examples.get(kind).cloned().unwrap_or_default();
        assert!(example.contains(said), "{kind}: {example}");
    }
}
