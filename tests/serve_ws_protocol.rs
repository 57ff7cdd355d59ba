//! The WebSocket protocol as RFC 6455 has a server enforce it: opening handshakes
//! that are not one are refused over HTTP, and a client that breaks a framing rule
//! gets the Close code for what it did (1002, 1007, 1009) before the connection
//! ends, counted in `livegames_ws_closes_total`. Driven with raw bytes, since no
//! WebSocket library sends broken frames.

use std::time::Instant;

use livegames::wire::frame;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, OpCode};

use crate::support::{DEADLINE, fast_config, metric, start};

const GAME: &str = "0022400196";

/// Sends an opening handshake with `extra` header lines; returns the socket and
/// the response head (lower-cased) and, for a refusal, its body.
async fn handshake(
    server: &livegames::serve::ServerHandle,
    key_and_version: &str,
) -> (TcpStream, String, Vec<u8>) {
    let mut tcp = TcpStream::connect(server.local_addr).await.unwrap();
    let request = format!(
        "GET /ws/live/{GAME} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{key_and_version}\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(DEADLINE, tcp.read(&mut chunk))
            .await
            .expect("the response head in time")
            .unwrap();
        assert!(n > 0, "closed before the response head");
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let rest = buffer[head_end..].to_vec();
    (tcp, head, rest)
}

const GOOD_KEY: &str =
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// The body of a refusal: JSON with a Content-Length.
async fn body_of(tcp: &mut TcpStream, head: &str, mut got: Vec<u8>) -> Value {
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("a content-length")
        .trim()
        .parse()
        .unwrap();
    while got.len() < length {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(DEADLINE, tcp.read(&mut chunk))
            .await
            .expect("the body in time")
            .unwrap();
        assert!(n > 0, "closed before the body");
        got.extend_from_slice(&chunk[..n]);
    }
    serde_json::from_slice(&got[..length]).unwrap()
}

#[tokio::test]
async fn handshakes_with_a_bad_key_or_version_are_refused() {
    let server = start(fast_config()).await;
    for (lines, status, error) in [
        (
            "Sec-WebSocket-Key: \r\nSec-WebSocket-Version: 13\r\n",
            "400",
            "bad_websocket_key",
        ),
        (
            "Sec-WebSocket-Key: not!base64!at!all!!!!!!!\r\nSec-WebSocket-Version: 13\r\n",
            "400",
            "bad_websocket_key",
        ),
        (
            "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\nSec-WebSocket-Version: 13\r\n",
            "400",
            "bad_websocket_key",
        ),
        ("Sec-WebSocket-Version: 13\r\n", "400", "bad_websocket_key"),
        (
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n",
            "426",
            "unsupported_version",
        ),
    ] {
        let (mut tcp, head, rest) = handshake(&server, lines).await;
        assert!(
            head.starts_with(&format!("http/1.1 {status}")),
            "{lines:?}: {head}"
        );
        let body = body_of(&mut tcp, &head, rest).await;
        assert_eq!(body["error"], error, "{lines:?}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // A plain GET on the stream's path is told to upgrade.
    let response = reqwest::get(format!("{}/ws/live/{GAME}", server.http_url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 426);
    assert_eq!(response.headers()["upgrade"], "websocket");
    server.stop().await.unwrap();
}

/// A masked client frame with `first` as its first byte (FIN, RSV, opcode).
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let key = [0x11, 0x22, 0x33, 0x44];
    assert!(payload.len() < 126);
    out.push(0x80 | payload.len() as u8);
    out.extend_from_slice(&key);
    let start = out.len();
    out.extend_from_slice(payload);
    frame::apply_mask(&mut out[start..], key);
    out
}

/// The server's frames as they arrive on a raw connection, after whatever came with
/// the response head.
struct ServerFrames<'a> {
    tcp: &'a mut TcpStream,
    buffer: Vec<u8>,
    deadline: Instant,
}

impl<'a> ServerFrames<'a> {
    fn new(tcp: &'a mut TcpStream, already: Vec<u8>) -> Self {
        Self {
            tcp,
            buffer: already,
            deadline: Instant::now() + DEADLINE,
        }
    }

    /// The next frame's opcode and payload; None when the connection ended.
    async fn next(&mut self) -> Option<(OpCode, Vec<u8>)> {
        loop {
            if let Some((header, at)) = frame::parse(&self.buffer).unwrap() {
                let end = at + header.len as usize;
                if self.buffer.len() >= end {
                    let payload = self.buffer[at..end].to_vec();
                    self.buffer.drain(..end);
                    return Some((header.opcode, payload));
                }
            }
            let mut chunk = [0u8; 4096];
            let left = self.deadline.saturating_duration_since(Instant::now());
            let n = tokio::time::timeout(left, self.tcp.read(&mut chunk))
                .await
                .expect("the server's frames within the deadline")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Reads server frames until a Close arrives; returns its code (None for an empty
/// Close, or when the connection ended without one).
async fn close_code_after(tcp: &mut TcpStream, already: Vec<u8>) -> Option<u16> {
    let mut frames = ServerFrames::new(tcp, already);
    while let Some((opcode, payload)) = frames.next().await {
        if opcode == OpCode::Control(Control::Close) {
            return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
        }
    }
    None
}

#[tokio::test]
async fn frames_that_break_the_protocol_get_the_close_code_rfc_6455_names() {
    let server = start(fast_config()).await;
    let unmasked_text = {
        let mut f = vec![0x81, 2];
        f.extend_from_slice(b"hi");
        f
    };
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("an unmasked frame", unmasked_text, 1002),
        ("RSV2 set", client_frame(0xa1, b"{}"), 1002),
        (
            "RSV1 without permessage-deflate",
            client_frame(0xc1, b"{}"),
            1002,
        ),
        ("reserved data opcode 3", client_frame(0x83, b""), 1002),
        ("reserved control opcode 11", client_frame(0x8b, b""), 1002),
        ("a fragmented ping", client_frame(0x09, b"x"), 1002),
        (
            "a continuation with no start",
            client_frame(0x80, b"x"),
            1002,
        ),
        (
            "a text frame while another is unfinished",
            {
                let mut f = client_frame(0x01, b"{\"ty");
                f.extend(client_frame(0x81, b"x"));
                f
            },
            1002,
        ),
        (
            "a close payload of one byte",
            client_frame(0x88, b"\x03"),
            1002,
        ),
        ("close code 1005", client_frame(0x88, b"\x03\xed"), 1002),
        ("close code 999", client_frame(0x88, b"\x03\xe7"), 1002),
        ("close code 5000", client_frame(0x88, b"\x13\x88"), 1002),
        (
            "text that is not UTF-8",
            client_frame(0x81, b"\xff\xfe"),
            1007,
        ),
        (
            "a close reason that is not UTF-8",
            client_frame(0x88, b"\x03\xe8\xc3\x28"),
            1007,
        ),
    ];
    let before_1002 = metric(&server, "livegames_ws_closes_total{code=\"1002\"}").await;
    let before_1007 = metric(&server, "livegames_ws_closes_total{code=\"1007\"}").await;
    for (what, bytes, expected) in &cases {
        let (mut tcp, head, rest) = handshake(&server, GOOD_KEY).await;
        assert!(head.starts_with("http/1.1 101"), "{what}: {head}");
        tcp.write_all(bytes).await.unwrap();
        let code = close_code_after(&mut tcp, rest).await;
        assert_eq!(code, Some(*expected), "{what}");
    }
    let count = |code| cases.iter().filter(|c| c.2 == code).count() as f64;
    crate::support::wait_for("the closes counted", || async {
        let closes_1002 = metric(&server, "livegames_ws_closes_total{code=\"1002\"}").await;
        let closes_1007 = metric(&server, "livegames_ws_closes_total{code=\"1007\"}").await;
        (closes_1002 - before_1002 == count(1002) && closes_1007 - before_1007 == count(1007))
            .then_some(())
    })
    .await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_valid_close_code_is_echoed() {
    let server = start(fast_config()).await;
    for code in [1000u16, 1001, 3000, 4999] {
        let (mut tcp, head, rest) = handshake(&server, GOOD_KEY).await;
        assert!(head.starts_with("http/1.1 101"), "{head}");
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(b"bye");
        tcp.write_all(&client_frame(0x88, &payload)).await.unwrap();
        assert_eq!(close_code_after(&mut tcp, rest).await, Some(code));
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn frames_sent_with_the_handshake_are_read() {
    // A client may send its first frames in the same packet as its request head:
    // the server must read them from what it already took off the socket.
    let server = start(fast_config()).await;
    let mut tcp = TcpStream::connect(server.local_addr).await.unwrap();
    let mut bytes = format!(
        "GET /ws/live/{GAME} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{GOOD_KEY}\r\n"
    )
    .into_bytes();
    bytes.extend(client_frame(0x88, b"\x0f\xa0early"));
    tcp.write_all(&bytes).await.unwrap();
    // The Close (4000) rides with the head; its echo comes back after the 101.
    let mut got = Vec::new();
    let head_end = loop {
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(DEADLINE, tcp.read(&mut chunk))
            .await
            .expect("the response head in time")
            .unwrap();
        assert!(n > 0);
        got.extend_from_slice(&chunk[..n]);
    };
    assert!(got.starts_with(b"HTTP/1.1 101"));
    let rest = got[head_end..].to_vec();
    assert_eq!(close_code_after(&mut tcp, rest).await, Some(4000));
    server.stop().await.unwrap();
}

/// Reads server frames until a text frame contains `needle`; returns its text.
async fn text_frame_containing(tcp: &mut TcpStream, already: Vec<u8>, needle: &str) -> String {
    let mut frames = ServerFrames::new(tcp, already);
    while let Some((_, payload)) = frames.next().await {
        let text = String::from_utf8_lossy(&payload).into_owned();
        if text.contains(needle) {
            return text;
        }
    }
    panic!("the connection ended before a frame with {needle:?}");
}

#[tokio::test]
async fn a_ping_id_comes_back_exactly_as_written() {
    let server = start(fast_config()).await;
    let (mut tcp, head, rest) = handshake(&server, GOOD_KEY).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    let ping = br#"{"type":"ping","id":18446744073709551616}"#;
    tcp.write_all(&client_frame(0x81, ping)).await.unwrap();
    let pong = text_frame_containing(&mut tcp, rest, r#""type":"pong""#).await;
    assert!(
        pong.contains(r#""id":18446744073709551616"#),
        "the id changed on the way back: {pong}"
    );
    server.stop().await.unwrap();
}
