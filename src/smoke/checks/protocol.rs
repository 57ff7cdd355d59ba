//! Protocol checks on their own connections: the heartbeat on a quiet game, a ping's
//! pong, and an unknown game's error frame and close code.

use std::time::{Duration, Instant};

use crate::client::ws::ConnectError;
use crate::contract::FrameType;
use crate::contract::check::Violation;
use crate::contract::close;
use crate::contract::rules::silence_limit;
use crate::smoke::check::{CheckId, CheckResult, Status};
use crate::smoke::checks::stream::{MainStream, silence};
use crate::smoke::conn::{Conn, Next, kind, open_stream, parse, raw, schema_violations, secs};
use crate::smoke::ctx::Ctx;
use crate::text::excerpt;

/// An id that no server should know.
const UNKNOWN_GAME_ID: &str = "livegames-smoke-unknown-game";

/// Watches a quiet game (or the main one) for one heartbeat interval of silence.
pub(crate) async fn heartbeat(ctx: &Ctx<'_>, game: Option<&str>, no_game: &str) -> CheckResult {
    const ID: CheckId = CheckId::WsHeartbeat;
    let heartbeat = ctx.config.heartbeat;
    let limit = silence_limit(heartbeat);
    if limit >= ctx.timeout() {
        return CheckResult::skip(
            ID,
            format!(
                "--timeout ({}) leaves no room for {} of silence (--heartbeat {})",
                humantime::format_duration(ctx.timeout()),
                secs(limit),
                humantime::format_duration(heartbeat)
            ),
        );
    }
    let opened = match open_stream(ctx, ID, game, no_game, None).await {
        Ok(opened) => opened,
        Err(not_run) => return not_run,
    };
    let (mut conn, started, game) = (opened.conn, opened.started, opened.game);
    // Only timing is judged here: the frames' content is ws.schema's business.
    let mut violations = Vec::new();
    let window_end = tokio::time::Instant::now() + limit;
    let mut last = tokio::time::Instant::now();
    let outcome = loop {
        match conn.next(last + limit).await {
            Next::Frame(frame) => {
                let value = parse(&frame);
                let gap = tokio::time::Instant::now().duration_since(last);
                last = tokio::time::Instant::now();
                if value.as_ref().and_then(kind) == Some(FrameType::Heartbeat) && frame.n > 1 {
                    break format!("a heartbeat after {} of silence on {game}", secs(gap));
                }
                if last >= window_end {
                    break format!(
                        "{game} was never silent for {} in {}: no heartbeat was due",
                        humantime::format_duration(heartbeat),
                        secs(limit)
                    );
                }
            }
            Next::TimedOut => {
                violations.push(silence(conn.received + 1, limit, heartbeat, ""));
                break String::new();
            }
            other => {
                violations.push(Violation::new(
                    "heartbeat",
                    conn.received + 1,
                    "",
                    format!("the stream to stay open through {} of silence", secs(limit)),
                    format!("after {}: {}", secs(last.elapsed()), other.describe()),
                    "",
                ));
                break String::new();
            }
        }
    };
    conn.close().await;
    CheckResult::judged(ID, started.elapsed(), outcome, violations)
}

/// The quiet-game heartbeat check, failed also by any long silence on the main stream.
pub(crate) fn merge_heartbeat(mut quiet: CheckResult, main: &MainStream) -> CheckResult {
    if main.silences.is_empty() || quiet.status == Status::Skip {
        return quiet;
    }
    let mut all = main.silences.clone();
    all.append(&mut quiet.violations);
    let took = Duration::from_secs_f64(quiet.duration_ms / 1e3);
    CheckResult::judged(CheckId::WsHeartbeat, took, quiet.detail, all)
}

/// A client ping gets a pong with the same id.
pub(crate) async fn ping(ctx: &Ctx<'_>, game: Option<&str>, no_game: &str) -> CheckResult {
    const ID: CheckId = CheckId::WsPing;
    let opened = match open_stream(ctx, ID, game, no_game, None).await {
        Ok(opened) => opened,
        Err(not_run) => return not_run,
    };
    let (mut conn, started, deadline) = (opened.conn, opened.started, opened.deadline);
    let id = format!("livegames-smoke-{}", std::process::id());
    let ping = serde_json::json!({"type": "ping", "id": id}).to_string();
    let sent_at = Instant::now();
    if let Err(e) = conn.send(ping).await {
        return CheckResult::fail(ID, started.elapsed(), format!("cannot send a ping: {e}"));
    }
    let mut violations = Vec::new();
    let outcome = loop {
        let frame = match conn.next(deadline).await {
            Next::Frame(f) => f,
            other => break Err(format!("no pong: {}", other.describe())),
        };
        let Some(value) = parse(&frame) else { continue };
        match kind(&value) {
            Some(FrameType::Pong) if value["id"] == id.as_str() => {
                violations.extend(schema_violations(ctx.schemas, &frame, &value));
                break Ok(sent_at.elapsed());
            }
            Some(FrameType::Error) => {
                break Err(format!(
                    "the server answered the ping with error {}: {}",
                    value["code"], value["message"]
                ));
            }
            _ => {}
        }
    };
    conn.close().await;
    match outcome {
        Ok(rtt) => CheckResult::judged(
            ID,
            started.elapsed(),
            format!("pong with id {id:?} in {:.1} ms", rtt.as_secs_f64() * 1e3),
            violations,
        ),
        Err(why) => CheckResult::fail(ID, started.elapsed(), why),
    }
}

/// An unknown game: an `error` frame (`unknown_game`), then close code 4404.
pub(crate) async fn unknown_game(ctx: &Ctx<'_>) -> CheckResult {
    const ID: CheckId = CheckId::WsUnknownGame;
    let url = ctx.stream_url(UNKNOWN_GAME_ID);
    let started = Instant::now();
    let mut conn = match Conn::open(&url, &ctx.options).await {
        Ok((c, _)) => c,
        Err(ConnectError::Handshake { status, .. }) => {
            return CheckResult::fail(
                ID,
                started.elapsed(),
                format!(
                    "{url}: the upgrade was answered with HTTP {status}; the contract accepts it, sends an error frame (unknown_game) and closes with {}",
                    close::UNKNOWN_GAME
                ),
            );
        }
        Err(e) => return CheckResult::fail(ID, started.elapsed(), format!("{url}: {e}")),
    };
    let deadline = ctx.deadline(started);
    let mut violations = Vec::new();
    let (error_code, end) = read_until_closed(ctx, &mut conn, deadline, &mut violations).await;
    let took = started.elapsed();
    violations.extend(wrong_error_code(error_code.as_deref()));
    let closed_with = match &end {
        Next::Closed(Some((code, _))) => Some(*code),
        _ => None,
    };
    if closed_with != Some(close::UNKNOWN_GAME) {
        let actual = match &end {
            Next::TimedOut => format!("the connection stayed open for {}", secs(ctx.timeout())),
            other => other.describe(),
        };
        violations.push(Violation::new(
            "close",
            0,
            "",
            format!("close code {}", close::UNKNOWN_GAME),
            actual,
            "",
        ));
        conn.close().await;
    }
    CheckResult::judged(
        ID,
        took,
        format!("error unknown_game, then close {}", close::UNKNOWN_GAME),
        violations,
    )
}

/// Reads an unknown game's stream until it ends: the error frame's code (if one
/// came), how the stream ended, and a violation for every other frame.
async fn read_until_closed(
    ctx: &Ctx<'_>,
    conn: &mut Conn,
    deadline: tokio::time::Instant,
    violations: &mut Vec<Violation>,
) -> (Option<String>, Next) {
    let mut error_code = None;
    loop {
        let frame = match conn.next(deadline).await {
            Next::Frame(frame) => frame,
            end => return (error_code, end),
        };
        let value = parse(&frame);
        if let Some(value) = value.as_ref().filter(|v| kind(v) == Some(FrameType::Error)) {
            violations.extend(schema_violations(ctx.schemas, &frame, value));
            error_code = value["code"].as_str().map(str::to_owned);
            continue;
        }
        violations.push(Violation::new(
            "unknown_game",
            frame.n,
            "/type",
            "an error frame with code unknown_game",
            match &value {
                Some(v) => format!("{} frame", excerpt(&v["type"], 40)),
                None => "a frame that is not JSON".into(),
            },
            &raw(&frame),
        ));
    }
}

/// The error frame's code must be `unknown_game`.
fn wrong_error_code(code: Option<&str>) -> Option<Violation> {
    match code {
        Some("unknown_game") => None,
        Some(other) => Some(Violation::new(
            "unknown_game",
            0,
            "/code",
            "\"unknown_game\"",
            format!("{other:?}"),
            "",
        )),
        None => Some(Violation::new(
            "unknown_game",
            0,
            "",
            "an error frame with code unknown_game before the close",
            "no error frame",
            "",
        )),
    }
}
