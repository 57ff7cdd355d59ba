//! The fuzz bench's engine (benches/fuzz) against servers broken in one way each,
//! which it must report as that kind of finding, and against serve, which must give
//! it nothing to report while its protocol checks are reached.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{fast_config, start};

#[path = "../benches/fuzz/engine/mod.rs"]
#[allow(dead_code)] // the bench's main uses parts these tests do not
mod engine;
use engine::{Kind, Plan, Report, Target};

/// How each fake server is broken.
#[derive(Clone, Copy)]
enum Broken {
    /// Every request gets a plain 500.
    Internal,
    /// Requests are read and never answered; the connection is held open.
    NeverAnswers,
    /// The request's path, percent-decoded, is copied into a `Location` header.
    ReflectsDecodedPath,
    /// HTTP is answered well; a WebSocket upgrade is accepted and then never ended,
    /// whatever the client sends or shuts.
    HoldsWebSockets,
}

async fn fake(broken: Broken) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(answer(tcp, broken));
        }
    });
    addr
}

async fn answer(mut tcp: TcpStream, broken: Broken) {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 1 << 20 {
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let reply = match broken {
        Broken::Internal => {
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops".to_owned()
        }
        Broken::NeverAnswers => return hold(tcp).await,
        Broken::ReflectsDecodedPath => {
            let path = text.split(' ').nth(1).unwrap_or("/");
            format!(
                "HTTP/1.1 302 Found\r\nLocation: {}\r\nContent-Length: 0\r\n\r\n",
                percent_decode(path)
            )
        }
        Broken::HoldsWebSockets if text.to_ascii_lowercase().contains("upgrade: websocket") => {
            let _ = tcp
                .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
                .await;
            return hold(tcp).await;
        }
        Broken::HoldsWebSockets => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_owned(),
    };
    let _ = tcp.write_all(reply.as_bytes()).await;
}

/// Reads and drops whatever comes, and keeps the connection open after the client
/// has shut its side (until the test's runtime ends).
async fn hold(mut tcp: TcpStream) {
    let mut sink = [0u8; 4096];
    while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    std::future::pending::<()>().await;
}

fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A short campaign against `addr`, with a short deadline for answers.
async fn campaign(addr: SocketAddr, seconds: u64, answer_deadline: Duration) -> Report {
    let target = Target {
        addr,
        admin_token: None,
        game_ids: vec!["g1".into()],
        sample_frames: Vec::new(),
    };
    let plan = Plan {
        run_for: Duration::from_secs(seconds),
        seed: 11,
        workers: 2,
        answer_deadline,
    };
    engine::run(&target, plan).await
}

fn kinds(report: &Report, target: &str) -> Vec<Kind> {
    let mut kinds: Vec<Kind> = report
        .findings
        .iter()
        .filter(|f| f.target == target)
        .map(|f| f.kind)
        .collect();
    kinds.dedup();
    kinds
}

#[tokio::test]
async fn a_server_answering_500_is_reported_as_server_errors() {
    let report = campaign(fake(Broken::Internal).await, 2, Duration::from_secs(5)).await;
    assert!(
        kinds(&report, "http").contains(&Kind::ServerError),
        "{report:?}"
    );
    assert!(
        kinds(&report, "health").contains(&Kind::Unresponsive),
        "{report:?}"
    );
    let said = &report.findings[0].detail;
    assert!(said.contains("status 500, body oops"), "{said}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_reported_as_hanging() {
    let report = campaign(fake(Broken::NeverAnswers).await, 2, Duration::from_secs(1)).await;
    assert!(!report.findings.is_empty());
    assert!(
        report
            .findings
            .iter()
            .all(|f| matches!(f.kind, Kind::Hang | Kind::Unresponsive)),
        "{report:?}"
    );
    assert!(kinds(&report, "http").contains(&Kind::Hang), "{report:?}");
}

#[tokio::test]
async fn a_path_copied_into_a_header_is_reported_as_header_injection() {
    let report = campaign(
        fake(Broken::ReflectsDecodedPath).await,
        3,
        Duration::from_secs(5),
    )
    .await;
    let injected = report
        .findings
        .iter()
        .find(|f| f.kind == Kind::HeaderInjection)
        .unwrap_or_else(|| panic!("no header injection found: {report:?}"));
    assert!(String::from_utf8_lossy(&injected.input).contains("X-Fuzz-Injected"));
}

#[tokio::test]
async fn a_websocket_that_never_ends_after_the_client_shuts_is_reported_as_hanging() {
    let report = campaign(
        fake(Broken::HoldsWebSockets).await,
        2,
        Duration::from_secs(1),
    )
    .await;
    assert!(kinds(&report, "ws").contains(&Kind::Hang), "{report:?}");
    assert!(
        kinds(&report, "http").is_empty(),
        "HTTP was answered well: {report:?}"
    );
    let hung = report.findings.iter().find(|f| f.target == "ws").unwrap();
    assert!(!hung.input.is_empty(), "the frames that were sent are kept");
}

#[tokio::test]
async fn serve_gives_a_short_campaign_nothing_to_report() {
    let server = start(livegames::serve::ServeConfig {
        admin_token: Some("fuzz".into()),
        ..fast_config()
    })
    .await;
    let target = engine::discover(
        server.local_addr,
        Some("fuzz".into()),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    assert!(!target.game_ids.is_empty() && !target.sample_frames.is_empty());
    let plan = Plan {
        run_for: Duration::from_secs(6),
        seed: 5,
        workers: 2,
        answer_deadline: Duration::from_secs(20),
    };
    let report = engine::run(&target, plan).await;
    let listed: Vec<String> = report
        .findings
        .iter()
        .map(|f| format!("{:?} {}: {}", f.kind, f.target, f.detail))
        .collect();
    assert!(listed.is_empty(), "findings: {listed:#?}");
    // The campaign reached serve's refusals and its WebSocket protocol checks.
    let seen = |class: &str| report.outcomes.get(class).copied().unwrap_or(0);
    assert!(
        seen("http 4xx") > 0 && seen("http 2xx") > 0,
        "{:?}",
        report.outcomes
    );
    assert!(seen("ws close 1002") > 0, "{:?}", report.outcomes);
    assert!(report.inputs["validate"] > 0, "{:?}", report.inputs);
}
