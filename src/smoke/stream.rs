//! The WebSocket checks: one main stream (snapshot, frames, JSON, schema, seq, ts,
//! silences), heartbeat on a quiet game, resume, ping, unknown game, admin faults.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use super::http::{self, Answer};
use super::{CheckResult, SmokeConfig, Status};
use crate::client::ws::{ConnectError, Socket, with_since};
use crate::contract::check::{FrameChecker, Violation};
use crate::contract::close;
use crate::contract::schema::{Schemas, cut, excerpt};
use crate::contract::{FrameType, UnixMicros};

/// Frames larger than this end the connection (tungstenite refuses them).
const MAX_FRAME_BYTES: usize = 1024 * 1024;
/// An id that no server should know.
const UNKNOWN_GAME_ID: &str = "livegames-smoke-unknown-game";

pub(crate) struct Ctx<'a> {
    pub ws_base: &'a str,
    pub schemas: &'a Schemas,
    pub config: &'a SmokeConfig,
}

/// `http://h:p` -> `ws://h:p`, `https://` -> `wss://`.
pub(crate) fn ws_base(http_base: &str) -> String {
    if let Some(rest) = http_base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = http_base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        http_base.to_owned()
    }
}

fn stream_url(ws_base: &str, game: &str) -> String {
    let mut encoded = String::new();
    for b in game.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{ws_base}/ws/live/{encoded}")
}

/// One received frame.
struct Frame {
    /// 1-based on its connection.
    n: u64,
    at: Instant,
    at_us: i64,
    /// The text; a binary frame's length otherwise.
    text: Result<String, usize>,
}

enum Next {
    Frame(Frame),
    Closed(Option<(u16, String)>),
    Failed(String),
    TimedOut,
}

impl Next {
    fn describe(&self) -> String {
        match self {
            Next::Frame(_) => "a frame".into(),
            Next::Closed(Some((code, reason))) if reason.is_empty() => {
                format!("the server closed the connection with code {code}")
            }
            Next::Closed(Some((code, reason))) => {
                format!("the server closed the connection with code {code} ({reason})")
            }
            Next::Closed(None) => "the connection closed without a close frame".into(),
            Next::Failed(why) => format!("the connection failed: {why}"),
            Next::TimedOut => "nothing more came in time".into(),
        }
    }
}

struct Conn {
    socket: Socket,
    received: u64,
}

impl Conn {
    async fn open(url: &str, timeout: Duration) -> Result<(Self, Duration), ConnectError> {
        let connected =
            crate::client::ws::connect_limited(url, timeout, 16 * 1024, MAX_FRAME_BYTES).await?;
        Ok((
            Conn {
                socket: connected.socket,
                received: 0,
            },
            connected.connect_time,
        ))
    }

    async fn next(&mut self, deadline: tokio::time::Instant) -> Next {
        loop {
            let message = match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return Next::TimedOut,
                Ok(None) => return Next::Closed(None),
                Ok(Some(Err(e))) => return Next::Failed(e.to_string()),
                Ok(Some(Ok(m))) => m,
            };
            let text = match message {
                Message::Text(t) => Ok(t.as_str().to_owned()),
                Message::Binary(b) => Err(b.len()),
                Message::Close(frame) => {
                    return Next::Closed(frame.map(|f| (u16::from(f.code), f.reason.to_string())));
                }
                _ => continue,
            };
            self.received += 1;
            return Next::Frame(Frame {
                n: self.received,
                at: Instant::now(),
                at_us: UnixMicros::from_system_time(std::time::SystemTime::now()).0,
                text,
            });
        }
    }

    async fn send(&mut self, text: String) -> Result<(), String> {
        self.socket
            .send(Message::text(text))
            .await
            .map_err(|e| e.to_string())
    }

    async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.socket.close(None)).await;
    }
}

fn parse(frame: &Frame) -> Option<Value> {
    frame
        .text
        .as_ref()
        .ok()
        .and_then(|t| serde_json::from_str(t).ok())
}

fn raw(frame: &Frame) -> String {
    match &frame.text {
        Ok(t) => cut(t, 200),
        Err(len) => format!("<binary frame of {len} bytes>"),
    }
}

/// The frame's schema violations, located on its connection.
fn schema_violations(schemas: &Schemas, frame: &Frame, value: &Value) -> Vec<Violation> {
    schemas
        .validate_frame(value)
        .into_iter()
        .map(|v| {
            Violation::new(
                "schema",
                frame.n,
                v.pointer,
                v.expected,
                v.actual,
                &raw(frame),
            )
        })
        .collect()
}

fn kind(value: &Value) -> Option<FrameType> {
    value
        .get("type")
        .and_then(Value::as_str)
        .and_then(FrameType::parse)
}

/// The checks judged on the main stream's frames, in the order it reports them.
pub(crate) const MAIN_STREAM_CHECKS: &[&str] = &[
    "ws.connect",
    "ws.snapshot_first",
    "ws.frames",
    "ws.json",
    "ws.schema",
    "ws.seq",
    "ws.ts",
];

/// What the main stream saw, for its own checks and for resume and the timeline.
#[derive(Default)]
pub(crate) struct MainStream {
    pub results: Vec<CheckResult>,
    pub game: Option<String>,
    /// The seq of the first frame, when it was a snapshot.
    pub snapshot_seq: Option<u64>,
    /// Data-bearing frames after the snapshot: seq -> (frame number, frame).
    pub data_frames: BTreeMap<u64, (u64, Value)>,
    /// Why resume and timeline checks cannot use this stream.
    pub skip_reason: String,
    /// Silences longer than the heartbeat allows.
    pub silences: Vec<Violation>,
}

impl MainStream {
    /// The update/final frames' points: (seq, frame number, data).
    pub fn points(&self) -> impl Iterator<Item = (u64, u64, &Value)> {
        self.data_frames
            .iter()
            .filter(|(_, (_, frame))| {
                matches!(kind(frame), Some(FrameType::Update | FrameType::Final))
            })
            .map(|(seq, (n, frame))| (*seq, *n, &frame["data"]))
    }

    fn skipped(game: Option<&str>, why: &str) -> Self {
        let results = MAIN_STREAM_CHECKS
            .iter()
            .map(|name| CheckResult::skip(name, why))
            .collect();
        MainStream {
            results,
            game: game.map(str::to_owned),
            skip_reason: why.to_owned(),
            ..Default::default()
        }
    }
}

/// The longest silence a stream may have: the heartbeat interval plus slack for
/// timer granularity and the network.
fn silence_limit(heartbeat: Duration) -> Duration {
    heartbeat + (heartbeat / 2).max(Duration::from_secs(1))
}

/// Opens the game's stream and checks `--messages` frames after the snapshot.
pub(crate) async fn main_stream(ctx: &Ctx<'_>, game: Option<&str>, no_game: &str) -> MainStream {
    let Some(game) = game else {
        return MainStream::skipped(None, no_game);
    };
    let config = ctx.config;
    let url = stream_url(ctx.ws_base, game);
    let started = Instant::now();
    let (mut conn, connect_time) = match Conn::open(&url, config.timeout).await {
        Ok(c) => c,
        Err(e) => {
            let mut skipped =
                MainStream::skipped(Some(game), "the stream did not open (see ws.connect)");
            skipped.results[0] =
                CheckResult::fail("ws.connect", started.elapsed(), format!("{url}: {e}"));
            return skipped;
        }
    };
    let mut frames = Vec::with_capacity(config.messages + 1);
    let deadline = tokio::time::Instant::now() + config.timeout;
    let end = loop {
        if frames.len() > config.messages {
            break None;
        }
        match conn.next(deadline).await {
            Next::Frame(f) => frames.push(f),
            other => break Some(other),
        }
    };
    let took = started.elapsed();
    conn.close().await;
    let mut main = analyze(ctx, game, &frames, end.as_ref(), took, started);
    main.results.insert(
        0,
        CheckResult::pass(
            "ws.connect",
            connect_time,
            format!("{url} opened in {:.1} ms", connect_time.as_secs_f64() * 1e3),
        ),
    );
    main
}

/// Sorts every violation of the main stream into its check.
fn analyze(
    ctx: &Ctx<'_>,
    game: &str,
    frames: &[Frame],
    end: Option<&Next>,
    took: Duration,
    started: Instant,
) -> MainStream {
    let config = ctx.config;
    let mut checker = FrameChecker::new(ctx.schemas);
    let (mut json, mut schema, mut seq, mut ts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut found = Vec::new();
    let mut parsed: Vec<Option<Value>> = Vec::with_capacity(frames.len());
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut max_skew_seen = 0i64;
    for frame in frames {
        let value = match &frame.text {
            Ok(text) => checker.check_bytes(frame.n, text.as_bytes(), &mut found),
            Err(len) => {
                found.push(Violation::new(
                    "json",
                    frame.n,
                    "",
                    "a text frame holding one JSON object",
                    format!("a binary frame of {len} bytes"),
                    &raw(frame),
                ));
                None
            }
        };
        for v in found.drain(..) {
            match v.check {
                "json" => json.push(v),
                "seq" => seq.push(v),
                _ => schema.push(v),
            }
        }
        if let Some(value) = &value {
            if let Some(id) = value.get("game_id").filter(|id| id.as_str() != Some(game)) {
                schema.push(Violation::new(
                    "schema",
                    frame.n,
                    "/game_id",
                    format!("{game:?} (the game of this stream)"),
                    excerpt(id, 80),
                    &raw(frame),
                ));
            }
            if let Some(t) = value.get("ts").and_then(Value::as_i64) {
                max_skew_seen = max_skew_seen.max((frame.at_us - t).abs());
                if let Some((expected, actual)) = ts_problem(t, frame.at_us, config.max_skew) {
                    ts.push(Violation::new(
                        "ts",
                        frame.n,
                        "/ts",
                        expected,
                        actual,
                        &raw(frame),
                    ));
                }
            }
            let type_name = value.get("type").and_then(Value::as_str).unwrap_or("?");
            *kinds.entry(type_name.to_owned()).or_default() += 1;
        }
        parsed.push(value);
    }
    let mut main = MainStream {
        game: Some(game.to_owned()),
        ..Default::default()
    };
    main.silences = silences(frames, started, config.heartbeat);
    main.results
        .push(snapshot_first(game, frames, parsed.first(), started, end));
    let after = frames.len().saturating_sub(1);
    let kinds_text: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    main.results.push(if after >= config.messages {
        CheckResult::pass(
            "ws.frames",
            took,
            format!(
                "{after} frames after the first in {} ({})",
                secs(took),
                kinds_text.join(", ")
            ),
        )
    } else {
        CheckResult::fail(
            "ws.frames",
            took,
            format!(
                "{after} of {} frames after the first within {}; then {}",
                config.messages,
                secs(config.timeout),
                end.map_or_else(|| "-".into(), Next::describe)
            ),
        )
    });
    main.results.push(CheckResult::judged(
        "ws.json",
        took,
        format!("{} frames, all JSON objects", frames.len()),
        json,
    ));
    let strict = if ctx.schemas.is_strict() {
        ", strict"
    } else {
        ""
    };
    main.results.push(CheckResult::judged(
        "ws.schema",
        took,
        format!(
            "{} frames valid (contract {}{strict})",
            frames.len(),
            ctx.schemas.version()
        ),
        schema,
    ));
    let seqs: Vec<u64> = parsed
        .iter()
        .flatten()
        .filter_map(|v| v["seq"].as_u64())
        .collect();
    let seq_ok = match (seqs.first(), seqs.last()) {
        (Some(a), Some(b)) => format!("seq {a}..{b}: in order, data frames step by 1"),
        _ => "no seq seen".into(),
    };
    main.results
        .push(CheckResult::judged("ws.seq", took, seq_ok, seq));
    main.results.push(CheckResult::judged(
        "ws.ts",
        took,
        format!(
            "Unix µs; largest distance from the local clock {:.1} ms",
            max_skew_seen as f64 / 1e3
        ),
        ts,
    ));
    record_for_resume(&mut main, frames, &parsed);
    main
}

fn record_for_resume(main: &mut MainStream, frames: &[Frame], parsed: &[Option<Value>]) {
    let snapshot = parsed
        .first()
        .and_then(|v| v.as_ref())
        .filter(|v| kind(v) == Some(FrameType::Snapshot));
    main.snapshot_seq = snapshot.and_then(|v| v["seq"].as_u64());
    if main.snapshot_seq.is_none() {
        main.skip_reason =
            "the stream did not start with a snapshot (see ws.snapshot_first)".into();
        return;
    }
    for (frame, value) in frames.iter().zip(parsed).skip(1) {
        let Some(value) = value else { continue };
        if kind(value).is_some_and(FrameType::is_data_bearing) {
            if let Some(seq) = value["seq"].as_u64() {
                main.data_frames.insert(seq, (frame.n, value.clone()));
            }
        }
    }
}

fn snapshot_first(
    game: &str,
    frames: &[Frame],
    first: Option<&Option<Value>>,
    started: Instant,
    end: Option<&Next>,
) -> CheckResult {
    const NAME: &str = "ws.snapshot_first";
    let (Some(frame), Some(first)) = (frames.first(), first) else {
        let why = end.map_or_else(|| "-".into(), Next::describe);
        return CheckResult::fail(NAME, started.elapsed(), format!("no frame arrived; {why}"));
    };
    let took = frame.at.duration_since(started);
    let actual = match first {
        None => "a frame that is not JSON".to_owned(),
        Some(v) if kind(v) == Some(FrameType::Snapshot) => {
            return CheckResult::pass(
                NAME,
                took,
                format!("snapshot of {game} at seq {}", v["seq"]),
            );
        }
        Some(v) => match v.get("type") {
            Some(t) => format!("a frame of type {}", excerpt(t, 40)),
            None => "a frame without a type".into(),
        },
    };
    let violation = Violation::new(
        "snapshot",
        frame.n,
        "/type",
        "\"snapshot\" (the first frame of a fresh connection)",
        actual,
        &raw(frame),
    );
    CheckResult::judged(NAME, took, "", vec![violation])
}

/// Why `ts` (received at local time `at_us`) breaks the rule, if it does.
pub(crate) fn ts_problem(ts: i64, at_us: i64, max_skew: Duration) -> Option<(String, String)> {
    let allowed = max_skew.as_micros() as i64;
    let distance = |t: i64| at_us.saturating_sub(t).saturating_abs();
    if distance(ts) <= allowed {
        return None;
    }
    let expected = format!(
        "Unix microseconds within {} of the local clock ({at_us})",
        humantime::format_duration(max_skew)
    );
    let looks_like = [
        (ts.saturating_mul(1000), "milliseconds"),
        (ts.saturating_mul(1_000_000), "seconds"),
        (ts / 1000, "nanoseconds"),
    ]
    .into_iter()
    .find(|(scaled, _)| distance(*scaled) <= allowed.max(60_000_000))
    .map(|(_, unit)| unit);
    let off_us = at_us.saturating_sub(ts);
    let off = if off_us.abs() < 1_000_000 {
        format!("{:.3} ms", off_us.abs() as f64 / 1e3)
    } else {
        format!("{:.3} s", off_us.abs() as f64 / 1e6)
    };
    let actual = match looks_like {
        Some(unit) => format!("{ts}: this looks like Unix {unit}, not microseconds"),
        None if off_us > 0 => format!("{ts}: {off} behind the local clock"),
        None => format!("{ts}: {off} ahead of the local clock"),
    };
    Some((expected, actual))
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Silences between frames (from the connection opening) longer than allowed.
fn silences(frames: &[Frame], opened: Instant, heartbeat: Duration) -> Vec<Violation> {
    let limit = silence_limit(heartbeat);
    let mut last = opened;
    let mut found = Vec::new();
    for frame in frames {
        let gap = frame.at.duration_since(last);
        if gap > limit {
            found.push(silence(frame.n, gap, heartbeat, &raw(frame)));
        }
        last = frame.at;
    }
    found
}

fn silence(frame: u64, gap: Duration, heartbeat: Duration, raw: &str) -> Violation {
    Violation::new(
        "heartbeat",
        frame,
        "",
        format!(
            "a frame at least every {} (a heartbeat when nothing else is sent)",
            humantime::format_duration(heartbeat)
        ),
        format!("{} with no frame before this one", secs(gap)),
        raw,
    )
}

/// Watches a quiet game (or the main one) for one heartbeat interval of silence.
pub(crate) async fn heartbeat(ctx: &Ctx<'_>, game: Option<&str>, no_game: &str) -> CheckResult {
    const NAME: &str = "ws.heartbeat";
    let Some(game) = game else {
        return CheckResult::skip(NAME, no_game);
    };
    let heartbeat = ctx.config.heartbeat;
    let limit = silence_limit(heartbeat);
    let url = stream_url(ctx.ws_base, game);
    let started = Instant::now();
    let mut conn = match Conn::open(&url, ctx.config.timeout).await {
        Ok((c, _)) => c,
        Err(e) => return CheckResult::fail(NAME, started.elapsed(), format!("{url}: {e}")),
    };
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
            other => break format!("ended early: {}", other.describe()),
        }
    };
    conn.close().await;
    CheckResult::judged(NAME, started.elapsed(), outcome, violations)
}

/// The quiet-game heartbeat check, failed also by any long silence on the main stream.
pub(crate) fn merge_heartbeat(mut quiet: CheckResult, main: &MainStream) -> CheckResult {
    if main.silences.is_empty() || quiet.status == Status::Skip {
        return quiet;
    }
    let mut all = main.silences.clone();
    all.append(&mut quiet.violations);
    let took = Duration::from_secs_f64(quiet.duration_ms / 1e3);
    CheckResult::judged("ws.heartbeat", took, quiet.detail, all)
}

/// `?since=` the main stream's snapshot seq replays what the stream sent after it,
/// each frame as first sent, then a snapshot.
pub(crate) async fn resume(ctx: &Ctx<'_>, main: &MainStream) -> CheckResult {
    const NAME: &str = "ws.resume";
    let (Some(game), Some(since)) = (main.game.as_deref(), main.snapshot_seq) else {
        return CheckResult::skip(NAME, main.skip_reason.clone());
    };
    let url = with_since(&stream_url(ctx.ws_base, game), since);
    let started = Instant::now();
    let mut conn = match Conn::open(&url, ctx.config.timeout).await {
        Ok((c, _)) => c,
        Err(e) => return CheckResult::fail(NAME, started.elapsed(), format!("{url}: {e}")),
    };
    let mut checker = FrameChecker::new(ctx.schemas);
    checker.resume_at(game, since);
    let mut violations = Vec::new();
    let deadline = tokio::time::Instant::now() + ctx.config.timeout;
    let mut replayed: Vec<u64> = Vec::new();
    let ended = loop {
        let frame = match conn.next(deadline).await {
            Next::Frame(f) => f,
            other => break Err(other.describe()),
        };
        let mut found = Vec::new();
        let Some(value) = (match &frame.text {
            Ok(t) => checker.check_bytes(frame.n, t.as_bytes(), &mut found),
            Err(_) => None,
        }) else {
            continue;
        };
        // The order of the replay is judged here; the frames' schema is ws.schema's.
        violations.extend(found.into_iter().filter(|v| v.check == "seq"));
        match kind(&value) {
            Some(FrameType::Snapshot) => break Ok(value["seq"].as_u64()),
            Some(FrameType::Error) => violations.push(Violation::new(
                "resume",
                frame.n,
                "/code",
                format!("the frames after seq {since}, which the server sent moments ago"),
                format!("error {}: {}", value["code"], value["message"]),
                &raw(&frame),
            )),
            Some(k) if k.is_data_bearing() => {
                let Some(seq) = value["seq"].as_u64() else {
                    continue;
                };
                replayed.push(seq);
                if let Some((_, sent)) = main.data_frames.get(&seq) {
                    if let Some(at) = http::first_difference(sent, &value, String::new()) {
                        violations.push(Violation::new(
                            "resume",
                            frame.n,
                            at.clone(),
                            format!(
                                "seq {seq} exactly as first sent: {}",
                                excerpt(sent.pointer(&at).unwrap_or(sent), 80)
                            ),
                            excerpt(value.pointer(&at).unwrap_or(&Value::Null), 80),
                            &raw(&frame),
                        ));
                    }
                }
            }
            _ => {}
        }
    };
    conn.close().await;
    let sent_up_to = main.data_frames.keys().last().copied().unwrap_or(since);
    let replayed_to = replayed.last().copied().unwrap_or(since);
    match ended {
        Err(why) => violations.push(Violation::new(
            "resume",
            0,
            "",
            "the replay, then a snapshot",
            format!("{} frames replayed, then {why}", replayed.len()),
            "",
        )),
        Ok(_) if replayed_to < sent_up_to => violations.push(Violation::new(
            "resume",
            0,
            "/seq",
            format!("a replay up to at least seq {sent_up_to} (sent on the first connection)"),
            format!("a snapshot after seq {replayed_to}"),
            "",
        )),
        Ok(_) => {}
    }
    let ok = format!(
        "since={since}: {} frames replayed (seq {}..{replayed_to}), each as first sent, then a snapshot",
        replayed.len(),
        since + 1
    );
    CheckResult::judged(NAME, started.elapsed(), ok, violations)
}

/// A client ping gets a pong with the same id.
pub(crate) async fn ping(ctx: &Ctx<'_>, game: Option<&str>, no_game: &str) -> CheckResult {
    const NAME: &str = "ws.ping";
    let Some(game) = game else {
        return CheckResult::skip(NAME, no_game);
    };
    let url = stream_url(ctx.ws_base, game);
    let started = Instant::now();
    let mut conn = match Conn::open(&url, ctx.config.timeout).await {
        Ok((c, _)) => c,
        Err(e) => return CheckResult::fail(NAME, started.elapsed(), format!("{url}: {e}")),
    };
    let deadline = tokio::time::Instant::now() + ctx.config.timeout;
    let id = format!("livegames-smoke-{}", std::process::id());
    let ping = serde_json::json!({"type": "ping", "id": id}).to_string();
    let sent_at = Instant::now();
    if let Err(e) = conn.send(ping).await {
        return CheckResult::fail(NAME, started.elapsed(), format!("cannot send a ping: {e}"));
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
            NAME,
            started.elapsed(),
            format!("pong with id {id:?} in {:.1} ms", rtt.as_secs_f64() * 1e3),
            violations,
        ),
        Err(why) => CheckResult::fail(NAME, started.elapsed(), why),
    }
}

/// An unknown game: an `error` frame (`unknown_game`), then close code 4404.
pub(crate) async fn unknown_game(ctx: &Ctx<'_>) -> CheckResult {
    const NAME: &str = "ws.unknown_game";
    let url = stream_url(ctx.ws_base, UNKNOWN_GAME_ID);
    let started = Instant::now();
    let mut conn = match Conn::open(&url, ctx.config.timeout).await {
        Ok((c, _)) => c,
        Err(ConnectError::Handshake(status)) => {
            return CheckResult::fail(
                NAME,
                started.elapsed(),
                format!(
                    "{url}: the upgrade was answered with HTTP {status}; the contract accepts it, sends an error frame (unknown_game) and closes with {}",
                    close::UNKNOWN_GAME
                ),
            );
        }
        Err(e) => return CheckResult::fail(NAME, started.elapsed(), format!("{url}: {e}")),
    };
    let deadline = tokio::time::Instant::now() + ctx.config.timeout;
    let mut violations = Vec::new();
    let mut error_code = None;
    let end = loop {
        match conn.next(deadline).await {
            Next::Frame(frame) => {
                let value = parse(&frame);
                match value.as_ref().and_then(kind) {
                    Some(FrameType::Error) => {
                        let value = value.unwrap_or_default();
                        violations.extend(schema_violations(ctx.schemas, &frame, &value));
                        error_code = value["code"].as_str().map(str::to_owned);
                    }
                    _ => violations.push(Violation::new(
                        "unknown_game",
                        frame.n,
                        "/type",
                        "an error frame with code unknown_game",
                        match &value {
                            Some(v) => format!("{} frame", excerpt(&v["type"], 40)),
                            None => "a frame that is not JSON".into(),
                        },
                        &raw(&frame),
                    )),
                }
            }
            other => break other,
        }
    };
    let took = started.elapsed();
    match error_code.as_deref() {
        Some("unknown_game") => {}
        Some(other) => violations.push(Violation::new(
            "unknown_game",
            0,
            "/code",
            "\"unknown_game\"",
            format!("{other:?}"),
            "",
        )),
        None => violations.push(Violation::new(
            "unknown_game",
            0,
            "",
            "an error frame with code unknown_game before the close",
            "no error frame",
            "",
        )),
    }
    let closed_with = match &end {
        Next::Closed(Some((code, _))) => Some(*code),
        _ => None,
    };
    if closed_with != Some(close::UNKNOWN_GAME) {
        let actual = match &end {
            Next::TimedOut => format!(
                "the connection stayed open for {}",
                secs(ctx.config.timeout)
            ),
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
        NAME,
        took,
        format!("error unknown_game, then close {}", close::UNKNOWN_GAME),
        violations,
    )
}

/// Waits for a `status` frame whose `sources.espn` satisfies `wanted`.
async fn await_espn(
    conn: &mut Conn,
    deadline: tokio::time::Instant,
    wanted: impl Fn(&str) -> bool,
) -> Result<String, String> {
    loop {
        match conn.next(deadline).await {
            Next::Frame(frame) => {
                let Some(value) = parse(&frame) else { continue };
                if kind(&value) == Some(FrameType::Status) {
                    if let Some(state) = value["sources"]["espn"].as_str() {
                        if wanted(state) {
                            return Ok(state.to_owned());
                        }
                    }
                }
            }
            Next::TimedOut => return Err("no such status frame in time".into()),
            other => return Err(other.describe()),
        }
    }
}

/// Injects an ESPN outage through `/admin/faults`, sees it in status frames and
/// `/health`, clears it and sees the recovery.
pub(crate) async fn admin_faults(
    ctx: &Ctx<'_>,
    rest: &http::Ctx<'_>,
    game: Option<&str>,
    no_game: &str,
) -> CheckResult {
    const NAME: &str = "admin.faults";
    let Some(token) = ctx.config.admin_token.as_deref() else {
        return CheckResult::skip(
            NAME,
            "needs --admin-token (and a server with livegames' /admin/faults API)",
        );
    };
    let Some(game) = game else {
        return CheckResult::skip(NAME, no_game);
    };
    let started = Instant::now();
    let url = stream_url(ctx.ws_base, game);
    let mut conn = match Conn::open(&url, ctx.config.timeout).await {
        Ok((c, _)) => c,
        Err(e) => return CheckResult::fail(NAME, started.elapsed(), format!("{url}: {e}")),
    };
    let faults = format!("{}/admin/faults", rest.base);
    let inject = rest
        .client
        .post(&faults)
        .bearer_auth(token)
        .json(&serde_json::json!({"source": "espn", "mode": "down", "duration": "2m"}));
    if let Some(failed) = expect_ok(http::request(rest, inject).await, "POST /admin/faults") {
        conn.close().await;
        return CheckResult::fail(NAME, started.elapsed(), failed);
    }
    let wait = ctx.config.timeout.max(Duration::from_secs(30));
    let mut violations = Vec::new();
    let down = await_espn(&mut conn, tokio::time::Instant::now() + wait, |s| s != "ok").await;
    let down_after = started.elapsed();
    if let Err(why) = &down {
        violations.push(Violation::new(
            "admin",
            0,
            "/sources/espn",
            "a status frame with espn stale or down after the fault",
            why.clone(),
            "",
        ));
    }
    if down.is_ok() {
        if let Answer::Reply { body, .. } = http::get(rest, "/health").await {
            let health: Value = serde_json::from_slice(&body).unwrap_or_default();
            let espn = health["sources"]["espn"]["state"].as_str().unwrap_or("?");
            if health["status"] != "degraded" || espn == "ok" {
                violations.push(Violation::new(
                    "admin",
                    0,
                    "/status",
                    "/health: degraded, espn not ok",
                    format!("{}, espn {espn}", health["status"]),
                    &health.to_string(),
                ));
            }
        }
    }
    let clear = rest
        .client
        .delete(format!("{faults}?source=espn"))
        .bearer_auth(token);
    if let Some(failed) = expect_ok(http::request(rest, clear).await, "DELETE /admin/faults") {
        violations.push(Violation::new("admin", 0, "", "200", failed, ""));
    }
    let cleared = Instant::now();
    let up = await_espn(&mut conn, tokio::time::Instant::now() + wait, |s| s == "ok").await;
    if let Err(why) = &up {
        violations.push(Violation::new(
            "admin",
            0,
            "/sources/espn",
            "a status frame with espn ok after the fault was cleared",
            why.clone(),
            "",
        ));
    }
    conn.close().await;
    let ok = format!(
        "espn {} after {}, /health degraded; ok again {} after clearing",
        down.unwrap_or_default(),
        secs(down_after),
        secs(cleared.elapsed())
    );
    CheckResult::judged(NAME, started.elapsed(), ok, violations)
}

fn expect_ok(answer: Answer, what: &str) -> Option<String> {
    match answer {
        Answer::Reply { status: 200, .. } => None,
        Answer::Reply { status, body } => Some(format!(
            "{what}: HTTP {status}: {}",
            http::body_excerpt(&body, 120)
        )),
        Answer::Unreachable(why) => Some(format!("{what}: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000_000;

    #[test]
    fn ts_units_are_recognised() {
        let skew = Duration::from_secs(2);
        assert_eq!(ts_problem(NOW - 1_000_000, NOW, skew), None);
        let (_, ms) = ts_problem(NOW / 1000, NOW, skew).unwrap();
        assert!(ms.contains("milliseconds"), "{ms}");
        let (_, s) = ts_problem(NOW / 1_000_000, NOW, skew).unwrap();
        assert!(s.contains("seconds"), "{s}");
        let (_, ns) = ts_problem(NOW * 1000, NOW, skew).unwrap();
        assert!(ns.contains("nanoseconds"), "{ns}");
        let (expected, behind) = ts_problem(NOW - 10_000_000, NOW, skew).unwrap();
        assert!(behind.contains("10.000 s behind"), "{behind}");
        assert!(expected.contains("2s"), "{expected}");
    }

    #[test]
    fn urls_are_derived_and_encoded() {
        assert_eq!(ws_base("https://h:1"), "wss://h:1");
        assert_eq!(stream_url("ws://h", "a/b"), "ws://h/ws/live/a%2Fb");
    }
}
