//! WebSocket sessions with mutated frames: a valid opening handshake on a live
//! game's stream, then one to six frames built to break a rule (or not), the write
//! side shut, and the server's frames read to the end of the connection.

use std::net::SocketAddr;
use std::time::Duration;

use fastrand::Rng;
use futures_util::StreamExt;
use livegames::wire::frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use super::mutate::{escaped, mutate};
use super::{Finding, Kind, Shared, Target};

/// The most of a session's server output read (a stream never ends by itself;
/// the session ends when the server closes, which it must once the client has).
const MAX_READ: usize = 8 << 20;

/// Close codes a server may send: its own for what a client did (protocol error,
/// bad data, policy, too big), going away, the application's range (4008: too
/// slow), and any valid code a client sent, echoed (RFC 6455 5.5.1), such as the
/// libraries' 3000-3999. Not: codes that never go on the wire (1005, 1006, 1015,
/// under 1000, over 4999), and 1011, a server saying it failed.
fn allowed_close(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1010 | 3000..=4999)
}

/// One session: handshake, mutated frames, the end read and judged.
pub async fn session(rng: &mut Rng, target: &Target, deadline: Duration, shared: &Shared) {
    let game = match target.game_ids.len() {
        0 => "0022400196".to_owned(),
        n => target.game_ids[rng.usize(0..n)].clone(),
    };
    let compress = rng.bool();
    let frames = frames(rng);
    shared.input("ws");
    let outcome = tokio::time::timeout(deadline, run(target.addr, &game, compress, &frames)).await;
    let outcome = outcome.unwrap_or(Outcome::Hang);
    shared.outcome(format!("ws {}", outcome.class()), &frames);
    if let Some((kind, detail)) = judge(&outcome) {
        let detail = format!("/ws/live/{game} (deflate offered: {compress}): {detail}");
        shared.finding(Finding::new(kind, "ws", detail, frames));
    }
}

/// How a session ended.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The upgrade was refused with this status (not a finding unless 5xx).
    Refused(u16),
    /// The server closed the connection; with the code of its Close frame, if any.
    Ended { close: Option<u16> },
    /// A frame from the server that does not parse as one.
    BadServerFrame(String),
    /// The connection did not end within the deadline after the client shut its side.
    Hang,
    /// The connection failed before a handshake answer.
    NoHandshake(String),
}

impl Outcome {
    fn class(&self) -> String {
        match self {
            Outcome::Refused(status) => format!("refused {status}"),
            Outcome::Ended { close: Some(code) } => format!("close {code}"),
            Outcome::Ended { close: None } => "ended without a close".into(),
            Outcome::BadServerFrame(_) => "bad server frame".into(),
            Outcome::Hang => "hang".into(),
            Outcome::NoHandshake(_) => "no handshake".into(),
        }
    }
}

/// A session's finding, if it is one.
pub fn judge(outcome: &Outcome) -> Option<(Kind, String)> {
    match outcome {
        Outcome::Refused(status) if *status >= 500 => {
            Some((Kind::ServerError, format!("upgrade answered {status}")))
        }
        Outcome::Ended { close: Some(code) } if !allowed_close(*code) => {
            Some((Kind::BadClose, format!("closed with {code}")))
        }
        Outcome::BadServerFrame(e) => Some((Kind::Garbled, e.clone())),
        Outcome::Hang => Some((
            Kind::Hang,
            "the connection did not end after the client shut its side".into(),
        )),
        _ => None,
    }
}

async fn run(addr: SocketAddr, game: &str, compress: bool, frames: &[u8]) -> Outcome {
    let mut tcp = match TcpStream::connect(addr).await {
        Ok(tcp) => tcp,
        Err(e) => return Outcome::NoHandshake(e.to_string()),
    };
    let offer = if compress {
        "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover\r\n"
    } else {
        ""
    };
    let handshake = format!(
        "GET /ws/live/{game} HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    );
    if let Err(e) = tcp.write_all(handshake.as_bytes()).await {
        return Outcome::NoHandshake(e.to_string());
    }
    let mut got = Vec::new();
    let status = match read_head(&mut tcp, &mut got).await {
        Ok(status) => status,
        Err(e) => return Outcome::NoHandshake(e),
    };
    if status != 101 {
        return Outcome::Refused(status);
    }
    // Written while the server streams: a failed write means it has already closed.
    if tcp.write_all(frames).await.is_ok() {
        let _ = tcp.shutdown().await;
    }
    read_to_end(&mut tcp, got).await
}

/// Reads the response head; leaves what came after it in `got`.
async fn read_head(tcp: &mut TcpStream, got: &mut Vec<u8>) -> Result<u16, String> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).into_owned();
            got.drain(..end + 4);
            return head
                .get(9..12)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("not an HTTP head: {}", escaped(head.as_bytes(), 100)));
        }
        match tcp.read(&mut chunk).await {
            Ok(0) => return Err("closed before the handshake's answer".into()),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Reads server frames until the connection ends; the last Close frame's code.
async fn read_to_end(tcp: &mut TcpStream, mut got: Vec<u8>) -> Outcome {
    let mut close = None;
    let mut total = 0usize;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while let Some((header, at)) = match frame::parse(&got) {
            Ok(parsed) => parsed,
            Err(e) => return Outcome::BadServerFrame(format!("server frame: {e}")),
        } {
            if header.mask.is_some() {
                return Outcome::BadServerFrame("a masked server frame".into());
            }
            let end = at + header.len as usize;
            if got.len() < end {
                break;
            }
            if header.opcode == OpCode::Control(Control::Close) {
                close = (header.len >= 2).then(|| u16::from_be_bytes([got[at], got[at + 1]]));
            }
            got.drain(..end);
        }
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return Outcome::Ended { close },
            Ok(n) if total + n > MAX_READ => return Outcome::Ended { close },
            Ok(n) => {
                total += n;
                got.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

/// One to six client frames, each built to follow the rules or to break one, and
/// sometimes the whole byte string mutated besides.
pub fn frames(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.usize(1..=6) {
        one_frame(rng, &mut out);
    }
    if rng.u8(0..4) == 0 {
        out = mutate(rng, &out, 3);
    }
    out
}

fn one_frame(rng: &mut Rng, out: &mut Vec<u8>) {
    let ping = format!(r#"{{"type":"ping","id":{}}}"#, rng.u64(..));
    match rng.u8(0..10) {
        0 => push(out, 0x81, ping.as_bytes(), rng),
        1 => push(out, 0x81, &mutate(rng, ping.as_bytes(), 3), rng),
        2 => push(out, 0x82, &random_bytes(rng, 0..200), rng),
        // Control frames: some with a payload over the 125 bytes allowed.
        3 => {
            let opcode = rng.choice([0x89u8, 0x8a]).expect("an opcode");
            push(out, opcode, &random_bytes(rng, 0..140), rng);
        }
        4 => {
            let code = rng
                .choice([1000u16, 1001, 1005, 1006, 999, 3000, 4999, 5000, 65535])
                .expect("a code");
            let mut payload = code.to_be_bytes().to_vec();
            payload.extend(random_bytes(rng, 0..20));
            push(out, 0x88, &payload, rng);
        }
        // A message in pieces, sometimes with something else between them.
        5 => {
            push(out, 0x01, b"{\"type\":", rng);
            if rng.bool() {
                push(out, 0x81, ping.as_bytes(), rng);
            }
            push(out, 0x80, b"\"ping\",\"id\":1}", rng);
        }
        // RSV bits and reserved opcodes; with deflate, RSV1 on data that is not deflate.
        6 => {
            let first = 0x80 | (rng.u8(1..8) << 4) | rng.u8(0..16);
            push(out, first, &random_bytes(rng, 0..60), rng);
        }
        // A length the frame does not have: the rest of the stream becomes its payload.
        7 => {
            out.push(0x81);
            out.push(0x80 | 127);
            out.extend(rng.u64(..).to_be_bytes());
            out.extend([1, 2, 3, 4]);
            out.extend(random_bytes(rng, 0..40));
        }
        // A message over the server's cap (1 MiB by default).
        8 => {
            let big = vec![b' '; 1_100_000];
            push(out, 0x81, &big, rng);
        }
        _ => out.extend(random_bytes(rng, 1..30)),
    }
}

/// Appends a frame with this first byte; masked (as a client must) nine times in ten.
fn push(out: &mut Vec<u8>, first: u8, payload: &[u8], rng: &mut Rng) {
    let mask = (rng.u8(0..10) != 0).then(|| rng.u32(..).to_be_bytes());
    let start = out.len();
    frame::write(
        out,
        OpCode::Data(Data::Continue),
        false,
        mask,
        payload.len(),
    );
    out[start] = first;
    let at = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        frame::apply_mask(&mut out[at..], key);
    }
}

fn random_bytes(rng: &mut Rng, len: std::ops::Range<usize>) -> Vec<u8> {
    (0..rng.usize(len)).map(|_| rng.u8(..)).collect()
}

/// Up to `most` text frames from a game's stream, read with a real client.
pub async fn sample_frames(
    addr: SocketAddr,
    game: &str,
    most: usize,
    deadline: Duration,
) -> Vec<String> {
    let url = format!("ws://{addr}/ws/live/{game}?since=1");
    let read = async {
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(&url).await else {
            return Vec::new();
        };
        let mut frames = Vec::new();
        while frames.len() < most {
            match ws.next().await {
                Some(Ok(message)) if message.is_text() => frames.push(
                    message
                        .into_text()
                        .map(|t| t.to_string())
                        .unwrap_or_default(),
                ),
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        frames
    };
    tokio::time::timeout(deadline, read)
        .await
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_the_server_may_use_pass_and_others_are_findings() {
        for code in [1000, 1002, 1007, 1008, 1009, 3000, 4008] {
            assert_eq!(judge(&Outcome::Ended { close: Some(code) }), None, "{code}");
        }
        for code in [1005, 1006, 1011, 1015, 999, 2999, 5000] {
            assert_eq!(
                judge(&Outcome::Ended { close: Some(code) }).unwrap().0,
                Kind::BadClose
            );
        }
        assert_eq!(judge(&Outcome::Hang).unwrap().0, Kind::Hang);
        assert_eq!(judge(&Outcome::Refused(500)).unwrap().0, Kind::ServerError);
        assert_eq!(judge(&Outcome::Refused(404)), None);
    }

    #[test]
    fn frames_built_follow_the_wire_format_when_not_mutated() {
        let mut out = Vec::new();
        let mut rng = Rng::with_seed(3);
        push(&mut out, 0x81, b"hello", &mut rng);
        let (header, at) = frame::parse(&out).unwrap().unwrap();
        assert_eq!(header.len, 5);
        let mut payload = out[at..].to_vec();
        if let Some(key) = header.mask {
            frame::apply_mask(&mut payload, key);
        }
        assert_eq!(payload, b"hello");
    }
}
