//! The main stream: one connection to the game, `--messages` frames after the
//! snapshot, every frame judged (JSON, schema, seq, ts, silences). Its frames are kept
//! for the checks that compare against them (resume, the timeline, the heartbeat).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::contract::FrameType;
use crate::contract::check::{FrameChecker, Violation};
use crate::contract::rules::{silence_limit, ts_problem};
use crate::smoke::check::{CheckId, CheckResult};
use crate::smoke::conn::{Frame, Next, kind, open_stream, raw, secs};
use crate::smoke::ctx::Ctx;
use crate::text::excerpt;

/// What the main stream saw, for its own checks and for resume and the timeline.
#[derive(Default)]
pub(crate) struct MainStream {
    pub results: Vec<CheckResult>,
    pub game: Option<String>,
    /// The seq of the first frame, when it was a snapshot.
    pub snapshot_seq: Option<u64>,
    /// The snapshot's `epoch` (contract 1.1.0), when it named one.
    pub snapshot_epoch: Option<String>,
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
        let results = CheckId::ALL
            .into_iter()
            .filter(|id| id.on_main_stream())
            .map(|id| CheckResult::skip(id, why))
            .collect();
        MainStream {
            results,
            game: game.map(str::to_owned),
            skip_reason: why.to_owned(),
            ..Default::default()
        }
    }
}

/// [`main_stream`], cut off at `--timeout` (its connect check then says so).
pub(crate) async fn bounded_main_stream(
    ctx: &Ctx<'_>,
    game: Option<&str>,
    no_game: &str,
) -> MainStream {
    match tokio::time::timeout(ctx.timeout(), main_stream(ctx, game, no_game)).await {
        Ok(main) => main,
        Err(_) => {
            let mut main =
                MainStream::skipped(game, "the stream check did not finish (see ws.connect)");
            main.results[0] =
                CheckResult::fail(CheckId::WsConnect, ctx.timeout(), ctx.not_finished());
            main
        }
    }
}

/// Opens the game's stream and checks `--messages` frames after the snapshot.
pub(crate) async fn main_stream(ctx: &Ctx<'_>, game: Option<&str>, no_game: &str) -> MainStream {
    let Some(game) = game else {
        return MainStream::skipped(None, no_game);
    };
    let opened = match open_stream(ctx, CheckId::WsConnect, Some(game), no_game, None).await {
        Ok(opened) => opened,
        Err(connect) => {
            let mut skipped =
                MainStream::skipped(Some(game), "the stream did not open (see ws.connect)");
            skipped.results[0] = connect;
            return skipped;
        }
    };
    let mut conn = opened.conn;
    let deadline = opened.deadline;
    let messages = ctx.config.messages;
    let mut frames = Vec::with_capacity(messages + 1);
    let end = loop {
        if frames.len() > messages {
            break None;
        }
        match conn.next(deadline).await {
            Next::Frame(f) => frames.push(f),
            other => break Some(other),
        }
    };
    let took = opened.started.elapsed();
    conn.close().await;
    let watched = Watched {
        game,
        frames: &frames,
        end: end.as_ref(),
        took,
        started: opened.started,
    };
    let mut main = analyze(ctx, &watched);
    let connect_time = opened.connect_time;
    main.results.insert(
        0,
        CheckResult::pass(
            CheckId::WsConnect,
            connect_time,
            format!(
                "{} opened in {:.1} ms{}",
                opened.url,
                connect_time.as_secs_f64() * 1e3,
                opened
                    .subprotocol
                    .as_deref()
                    .map(|p| format!(" (subprotocol {p})"))
                    .unwrap_or_default()
            ),
        ),
    );
    main
}

/// What the main stream's connection saw, as it ended.
struct Watched<'a> {
    game: &'a str,
    frames: &'a [Frame],
    /// How the stream ended early, if it did.
    end: Option<&'a Next>,
    took: Duration,
    started: Instant,
}

/// Every frame's violations, sorted by the check they fail.
#[derive(Default)]
struct Sorted {
    json: Vec<Violation>,
    schema: Vec<Violation>,
    seq: Vec<Violation>,
    ts: Vec<Violation>,
    /// Each frame as JSON, where it was.
    parsed: Vec<Option<Value>>,
    /// How many frames of each type.
    kinds: BTreeMap<String, usize>,
    /// The largest distance of a `ts` from the local clock, µs.
    max_skew_seen: i64,
    /// Frames that were JSON objects.
    objects: usize,
    /// Frames that carried a numeric `ts`.
    ts_seen: usize,
    /// The first and last seq seen.
    seq_range: Option<(u64, u64)>,
}

/// Judges the main stream's frames into its checks.
fn analyze(ctx: &Ctx<'_>, watched: &Watched<'_>) -> MainStream {
    let mut sorted = sort_violations(ctx, watched);
    let frames = watched.frames;
    let took = watched.took;
    let mut main = MainStream {
        game: Some(watched.game.to_owned()),
        ..Default::default()
    };
    main.silences = silences(frames, watched.started, ctx.config.heartbeat);
    main.results
        .push(snapshot_first(watched, sorted.parsed.first()));
    main.results
        .push(frames_arrived(ctx, watched, &sorted.kinds));
    let parsed = std::mem::take(&mut sorted.parsed);
    main.results
        .extend(judge_frames(ctx, took, frames.len(), sorted));
    record_for_resume(&mut main, frames, &parsed);
    main
}

/// ws.json, ws.schema, ws.seq and ws.ts over the main stream's `count` frames: each
/// is skipped, saying why, when there was nothing of its kind to judge.
fn judge_frames(ctx: &Ctx<'_>, took: Duration, count: usize, sorted: Sorted) -> Vec<CheckResult> {
    const NO_FRAMES: &str = "no frames arrived (see ws.frames)";
    let judge = |id, seen: usize, why_none: &str, ok: String, violations| {
        if count == 0 {
            CheckResult::skip(id, NO_FRAMES)
        } else if seen == 0 {
            CheckResult::skip(id, why_none)
        } else {
            CheckResult::judged(id, took, ok, violations)
        }
    };
    let strict = if ctx.schemas.is_strict() {
        ", strict"
    } else {
        ""
    };
    let seq_ok = match sorted.seq_range {
        Some((a, b)) => format!("seq {a}..{b}: in order, data frames step by 1"),
        None => String::new(),
    };
    vec![
        judge(
            CheckId::WsJson,
            count,
            "",
            format!("{count} frames, all JSON objects"),
            sorted.json,
        ),
        judge(
            CheckId::WsSchema,
            sorted.objects,
            "no frame was a JSON object (see ws.json)",
            format!(
                "{} of {count} frames are JSON objects, all valid (contract {}{strict})",
                sorted.objects,
                ctx.schemas.version()
            ),
            sorted.schema,
        ),
        judge(
            CheckId::WsSeq,
            usize::from(sorted.seq_range.is_some()),
            "no frame carried a seq (see ws.schema)",
            seq_ok,
            sorted.seq,
        ),
        judge(
            CheckId::WsTs,
            sorted.ts_seen,
            "no frame carried a ts (see ws.schema)",
            format!(
                "Unix µs; largest distance from the local clock {:.1} ms",
                sorted.max_skew_seen as f64 / 1e3
            ),
            sorted.ts,
        ),
    ]
}

/// Checks every frame (JSON, schema, seq through the shared [`FrameChecker`]; game id
/// and ts here) and files each violation under its check.
fn sort_violations(ctx: &Ctx<'_>, watched: &Watched<'_>) -> Sorted {
    let game = watched.game;
    let mut checker = FrameChecker::new(ctx.schemas);
    let mut sorted = Sorted::default();
    let mut found = Vec::new();
    for frame in watched.frames {
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
                "json" => sorted.json.push(v),
                "seq" => sorted.seq.push(v),
                _ => sorted.schema.push(v),
            }
        }
        if let Some(value) = value.as_ref().filter(|v| v.is_object()) {
            sorted.objects += 1;
            if let Some(seq) = value.get("seq").and_then(Value::as_u64) {
                let first = sorted.seq_range.map_or(seq, |(a, _)| a);
                sorted.seq_range = Some((first, seq));
            }
            if let Some(id) = value.get("game_id").filter(|id| id.as_str() != Some(game)) {
                sorted.schema.push(Violation::new(
                    "schema",
                    frame.n,
                    "/game_id",
                    format!("{game:?} (the game of this stream)"),
                    excerpt(id, 80),
                    &raw(frame),
                ));
            }
            judge_ts(ctx, frame, value, &mut sorted);
            let type_name = value.get("type").and_then(Value::as_str).unwrap_or("?");
            *sorted.kinds.entry(type_name.to_owned()).or_default() += 1;
        }
        sorted.parsed.push(value);
    }
    sorted
}

/// The frame's `ts` against the local clock at arrival.
fn judge_ts(ctx: &Ctx<'_>, frame: &Frame, value: &Value, sorted: &mut Sorted) {
    let Some(t) = value.get("ts").and_then(Value::as_i64) else {
        return;
    };
    sorted.ts_seen += 1;
    sorted.max_skew_seen = sorted.max_skew_seen.max((frame.at_us - t).abs());
    if let Some((expected, actual)) = ts_problem(t, frame.at_us, ctx.config.max_skew) {
        sorted.ts.push(Violation::new(
            "ts",
            frame.n,
            "/ts",
            expected,
            actual,
            &raw(frame),
        ));
    }
}

/// `ws.frames`: enough frames arrived in time.
fn frames_arrived(
    ctx: &Ctx<'_>,
    watched: &Watched<'_>,
    kinds: &BTreeMap<String, usize>,
) -> CheckResult {
    let messages = ctx.config.messages;
    let after = watched.frames.len().saturating_sub(1);
    let took = watched.took;
    if after >= messages {
        let kinds_text: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        return CheckResult::pass(
            CheckId::WsFrames,
            took,
            format!(
                "{after} frames after the first in {} ({})",
                secs(took),
                kinds_text.join(", ")
            ),
        );
    }
    CheckResult::fail(
        CheckId::WsFrames,
        took,
        format!(
            "{after} of {messages} frames after the first within {}; then {}",
            secs(ctx.timeout()),
            watched.end.map_or_else(|| "-".into(), Next::describe)
        ),
    )
}

/// Keeps the snapshot's seq and the data frames after it, for resume and the timeline.
fn record_for_resume(main: &mut MainStream, frames: &[Frame], parsed: &[Option<Value>]) {
    let snapshot = parsed
        .first()
        .and_then(|v| v.as_ref())
        .filter(|v| kind(v) == Some(FrameType::Snapshot));
    main.snapshot_seq = snapshot.and_then(|v| v["seq"].as_u64());
    main.snapshot_epoch = snapshot
        .and_then(|v| v["epoch"].as_str())
        .map(|e| crate::text::cut(e, 128));
    if main.snapshot_seq.is_none() {
        main.skip_reason =
            "the stream did not start with a snapshot (see ws.snapshot_first)".into();
        return;
    }
    for (frame, value) in frames.iter().zip(parsed).skip(1) {
        let Some(value) = value else { continue };
        if kind(value).is_some_and(FrameType::is_data_bearing)
            && let Some(seq) = value["seq"].as_u64()
        {
            main.data_frames.insert(seq, (frame.n, value.clone()));
        }
    }
}

/// `ws.snapshot_first`: the first frame is the game's snapshot.
fn snapshot_first(watched: &Watched<'_>, first: Option<&Option<Value>>) -> CheckResult {
    const ID: CheckId = CheckId::WsSnapshotFirst;
    let (Some(frame), Some(first)) = (watched.frames.first(), first) else {
        let why = watched.end.map_or_else(|| "-".into(), Next::describe);
        return CheckResult::fail(
            ID,
            watched.started.elapsed(),
            format!("no frame arrived; {why}"),
        );
    };
    let took = frame.at.duration_since(watched.started);
    let actual = match first {
        None => "a frame that is not JSON".to_owned(),
        Some(v) if kind(v) == Some(FrameType::Snapshot) => {
            return CheckResult::pass(
                ID,
                took,
                format!("snapshot of {} at seq {}", watched.game, v["seq"]),
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
    CheckResult::judged(ID, took, "", vec![violation])
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

/// A silence of `gap` before frame number `frame` (its text `raw`).
pub(crate) fn silence(frame: u64, gap: Duration, heartbeat: Duration, raw: &str) -> Violation {
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
