//! Mutated HTTP/1.1 requests, each on its own connection: written whole, the write
//! side shut (as `nc -N` does), and the answer read to the end.

use std::net::SocketAddr;
use std::time::Duration;

use fastrand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::mutate::{INJECTED_HEADER, escaped, mutate};
use super::{Finding, Kind, Shared, Target};

/// The most of an answer read; the rest is not needed to judge it.
const MAX_ANSWER: usize = 4 << 20;

/// A valid request and the statuses it always gets unmutated.
#[derive(Debug, Clone)]
pub struct Seed {
    pub bytes: Vec<u8>,
    pub expect: &'static [u16],
}

/// Every route, as a client that follows the README would call it.
pub fn seeds(target: &Target) -> Vec<Seed> {
    let game = target.game_ids.first().map_or("0022400196", String::as_str);
    let token = target.admin_token.as_deref().unwrap_or("none");
    let auth = format!("Authorization: Bearer {token}\r\n");
    let get = |path: &str, expect| Seed {
        bytes: format!("GET {path} HTTP/1.1\r\nHost: fuzz\r\nAccept: */*\r\n\r\n").into_bytes(),
        expect,
    };
    let admin = |method: &str, path: &str, body: &str, expect| {
        Seed {
        bytes: format!(
            "{method} {path} HTTP/1.1\r\nHost: fuzz\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
        expect,
    }
    };
    // Scores and health answer 502/503 while a (fuzzed) fault holds an upstream down.
    const SCORES: &[u16] = &[200, 502, 503];
    vec![
        get("/", &[200]),
        get("/assets/dashboard.js", &[200]),
        get("/health", &[200, 503]),
        get("/metrics", &[200]),
        get("/api/ops", &[200]),
        get("/api/live/games", &[200]),
        get(&format!("/api/games/{game}/timeline?since=0"), &[200]),
        get("/api/nfl/scores", SCORES),
        get("/api/nhl/scores?date=2024-11-10", SCORES),
        get(&format!("/sse/live/{game}?since=1"), &[200]),
        Seed {
            bytes: format!(
                "GET /ws/live/{game}?since=1 HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            .into_bytes(),
            expect: &[101],
        },
        admin("GET", "/admin/faults", "", &[200, 401, 404]),
        admin("GET", "/admin/sources", "", &[200, 401, 404]),
        admin(
            "POST",
            "/admin/faults",
            r#"{"source":"espn","mode":"slow","duration":"2s"}"#,
            &[200, 401, 404],
        ),
        admin("DELETE", "/admin/faults?source=espn", "", &[200, 401, 404]),
        admin("DELETE", "/admin/scores/cache", "", &[200, 401, 404]),
    ]
}

/// One request: one in eight unmutated (a control: it must get its usual answer),
/// the rest mutated.
pub async fn request(
    rng: &mut Rng,
    target: &Target,
    seeds: &[Seed],
    deadline: Duration,
    shared: &Shared,
) {
    let seed = &seeds[rng.usize(0..seeds.len())];
    let control = rng.u8(0..8) == 0;
    let bytes = if control {
        seed.bytes.clone()
    } else {
        mutate(rng, &seed.bytes, 4)
    };
    shared.input("http");
    let answer = exchange(target.addr, &bytes, deadline).await;
    shared.outcome(format!("http {}", answer.class()), &bytes);
    let expect = control.then_some(seed.expect);
    if let Some((kind, detail)) = judge(&answer, expect) {
        shared.finding(Finding::new(kind, "http", detail, bytes));
    }
}

/// How one exchange ended.
#[derive(Debug)]
pub enum Answer {
    /// A response head (and the body read until the end, or until the answer was
    /// seen to stream: a 101 or an event stream).
    Response {
        status: u16,
        /// Lower-cased.
        head: String,
        body: Vec<u8>,
    },
    /// The server closed the connection without a byte.
    Silent,
    /// The connection was reset (the server closed with our bytes unread).
    Reset { got: usize },
    /// Bytes that do not start an HTTP response.
    Garbled(Vec<u8>),
    /// No end within the deadline.
    Hang { got: usize },
    /// The connection could not be opened.
    Unreachable(String),
}

impl Answer {
    /// The outcome's class for the report: `2xx`, `4xx`, `silent`...
    pub fn class(&self) -> String {
        match self {
            // Statuses the server chooses to send are worth seeing one by one.
            Answer::Response { status, .. } if *status < 200 || *status >= 500 => {
                status.to_string()
            }
            Answer::Response { status, .. } => format!("{}xx", status / 100),
            Answer::Silent => "silent".into(),
            Answer::Reset { .. } => "reset".into(),
            Answer::Garbled(_) => "garbled".into(),
            Answer::Hang { .. } => "hang".into(),
            Answer::Unreachable(_) => "unreachable".into(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Answer::Response { status, body, .. } => {
                format!("status {status}, body {}", escaped(body, 200))
            }
            Answer::Silent => "closed without an answer".into(),
            Answer::Reset { got } => format!("reset after {got} bytes"),
            Answer::Garbled(bytes) => format!("not HTTP: {}", escaped(bytes, 200)),
            Answer::Hang { got } => format!("no end within the deadline ({got} bytes read)"),
            Answer::Unreachable(e) => format!("cannot connect: {e}"),
        }
    }
}

/// Whether an answer is a finding: a 5xx the server does not document, a hang,
/// bytes that are not HTTP, a smuggled header echoed, or (for a control request)
/// any answer but the expected status.
pub fn judge(answer: &Answer, expect: Option<&[u16]>) -> Option<(Kind, String)> {
    let found = match answer {
        Answer::Hang { .. } => Some(Kind::Hang),
        Answer::Garbled(_) => Some(Kind::Garbled),
        Answer::Response { status, head, body } => {
            if *status >= 500 && !documented_unavailable(*status, body) {
                Some(Kind::ServerError)
            } else if head.lines().any(|line| line.starts_with(INJECTED_HEADER)) {
                Some(Kind::HeaderInjection)
            } else {
                None
            }
        }
        _ => None,
    };
    let control_missed = expect.is_some_and(
        |statuses| !matches!(answer, Answer::Response { status, .. } if statuses.contains(status)),
    );
    found
        .or(control_missed.then_some(Kind::ControlFailed))
        .map(|kind| (kind, answer.describe()))
}

/// 502 or 503 with a JSON body naming the `error`: serve's answer while an
/// upstream is down or the server is full, as the README documents it.
fn documented_unavailable(status: u16, body: &[u8]) -> bool {
    if status != 502 && status != 503 {
        return false;
    }
    let (Some(start), Some(end)) = (
        body.iter().position(|&b| b == b'{'),
        body.iter().rposition(|&b| b == b'}'),
    ) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&body[start..=end])
        .is_ok_and(|v| v["error"].is_string())
}

/// Opens a connection, writes `request`, shuts the write side and reads the answer.
pub async fn exchange(addr: SocketAddr, request: &[u8], deadline: Duration) -> Answer {
    match tokio::time::timeout(deadline, exchange_unbounded(addr, request)).await {
        Ok(answer) => answer,
        Err(_) => Answer::Hang { got: 0 },
    }
}

async fn exchange_unbounded(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut tcp = match TcpStream::connect(addr).await {
        Ok(tcp) => tcp,
        Err(e) => return Answer::Unreachable(e.to_string()),
    };
    // The server may answer (431, 400) and close before reading all of a long
    // request: a failed write is not the end, the answer may be waiting.
    if tcp.write_all(request).await.is_ok() {
        let _ = tcp.shutdown().await;
    }
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match tcp.read(&mut chunk).await {
            Ok(0) => return parse(got),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(_) if got.is_empty() => return Answer::Reset { got: 0 },
            Err(_) => return parse(got),
        }
        if got.len() >= MAX_ANSWER || streams(&got) {
            return parse(got);
        }
    }
}

/// A complete head that switches protocols or starts an event stream: the answer
/// will not end by itself, and its head is what there is to judge.
fn streams(got: &[u8]) -> bool {
    let Some(end) = head_end(got) else {
        return false;
    };
    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
    head.starts_with("http/1.1 101") || head.contains("content-type: text/event-stream")
}

fn head_end(got: &[u8]) -> Option<usize> {
    got.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

fn parse(got: Vec<u8>) -> Answer {
    if got.is_empty() {
        return Answer::Silent;
    }
    let status = got
        .strip_prefix(b"HTTP/1.")
        .filter(|rest| rest.len() >= 5 && rest[1] == b' ')
        .and_then(|rest| std::str::from_utf8(&rest[2..5]).ok()?.parse::<u16>().ok());
    let (Some(status), Some(end)) = (status, head_end(&got)) else {
        return Answer::Garbled(got);
    };
    Answer::Response {
        status,
        head: String::from_utf8_lossy(&got[..end]).to_ascii_lowercase(),
        body: got[end..].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(text: &str) -> Answer {
        parse(text.as_bytes().to_vec())
    }

    #[test]
    fn a_5xx_is_a_finding_unless_it_is_the_documented_json_502_or_503() {
        let documented = response(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 40\r\n\r\n{\"error\":\"upstream_down\",\"message\":\"x\"}",
        );
        assert_eq!(judge(&documented, None), None);
        let internal = response("HTTP/1.1 500 Internal Server Error\r\n\r\n{\"error\":\"x\"}");
        assert_eq!(judge(&internal, None).unwrap().0, Kind::ServerError);
        let plain = response("HTTP/1.1 503 Service Unavailable\r\n\r\ntoo busy");
        assert_eq!(judge(&plain, None).unwrap().0, Kind::ServerError);
    }

    #[test]
    fn silence_and_resets_pass_for_mutated_input_but_not_for_a_control() {
        assert_eq!(judge(&Answer::Silent, None), None);
        assert_eq!(judge(&Answer::Reset { got: 0 }, None), None);
        let (kind, detail) = judge(&Answer::Silent, Some(&[200])).unwrap();
        assert_eq!(kind, Kind::ControlFailed);
        assert_eq!(detail, "closed without an answer");
        let wrong = response("HTTP/1.1 404 Not Found\r\n\r\n");
        assert_eq!(judge(&wrong, Some(&[200])).unwrap().0, Kind::ControlFailed);
        let right = response("HTTP/1.1 200 OK\r\n\r\n{}");
        assert_eq!(judge(&right, Some(&[200])), None);
    }

    #[test]
    fn hangs_garbage_and_echoed_headers_are_findings() {
        assert_eq!(judge(&Answer::Hang { got: 3 }, None).unwrap().0, Kind::Hang);
        assert_eq!(
            judge(&response("SSH-2.0\r\n"), None).unwrap().0,
            Kind::Garbled
        );
        let injected = response("HTTP/1.1 302 Found\r\nLocation: /x\r\nX-Fuzz-Injected: 1\r\n\r\n");
        assert_eq!(judge(&injected, None).unwrap().0, Kind::HeaderInjection);
    }
}
