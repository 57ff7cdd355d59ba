//! `sse.stream`: the game's stream as Server-Sent Events keeps the contract the
//! WebSocket keeps (snapshot first, valid frames, seq stepping by one, each event
//! named by its type with its seq as id), and a reconnect with `Last-Event-ID`
//! replays exactly what came after it. A server that offers no SSE stream (404) is
//! skipped, saying so.

use std::time::Instant;

use serde_json::Value;

use crate::client::http::MAX_BODY_BYTES;
use crate::smoke::check::{CheckId, CheckResult};
use crate::smoke::ctx::Ctx;

const ID: CheckId = CheckId::SseStream;

/// Updates read after the snapshot (and the resume compared against them).
const UPDATES_WANTED: usize = 3;

/// One event as received: its `event:`, its `id:` and its `data:` as JSON.
struct Event {
    name: String,
    id: String,
    data: Value,
}

/// An open event stream, read a chunk at a time within a byte cap.
struct EventStream {
    response: reqwest::Response,
    pending: Vec<u8>,
    read: usize,
}

impl EventStream {
    /// The next event, or why there is none.
    async fn next(&mut self, deadline: tokio::time::Instant) -> Result<Event, String> {
        loop {
            if let Some(event) = crate::client::sse::take_event(&mut self.pending) {
                if !event.has_data {
                    continue;
                }
                return parse_event(event);
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .map_err(|_| "no event before --timeout".to_owned())?
                .map_err(|e| format!("the stream failed: {e}"))?
                .ok_or_else(|| "the server ended the stream".to_owned())?;
            self.read += chunk.len();
            if self.read > MAX_BODY_BYTES {
                return Err(format!(
                    "over {} MiB without the events asked for",
                    MAX_BODY_BYTES >> 20
                ));
            }
            self.pending.extend_from_slice(&chunk);
        }
    }
}

/// An event with its data read as JSON.
fn parse_event(event: crate::client::sse::Event) -> Result<Event, String> {
    let data = serde_json::from_str(&event.data).map_err(|e| {
        format!(
            "an event's data is not JSON ({e}): {}",
            crate::text::cut(&event.data, 120)
        )
    })?;
    Ok(Event {
        name: event.name,
        id: event.id,
        data,
    })
}

/// Opens the stream of `game`, resuming after `last_event_id` when given.
async fn open(
    ctx: &Ctx<'_>,
    game: &str,
    last_event_id: Option<u64>,
) -> Result<Result<EventStream, CheckResult>, String> {
    let url = ctx.config.target.api(&format!(
        "/sse/live/{}",
        crate::client::target::encode_segment(game)
    ));
    let mut request = ctx
        .client
        .get(url.clone())
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("{url}: {}", crate::client::http::reason(&e, ctx.timeout())))?;
    let status = response.status().as_u16();
    if status == 404 {
        return Ok(Err(CheckResult::skip(
            ID,
            format!("{url}: 404, the server offers no Server-Sent Events stream"),
        )));
    }
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if status != 200 || !kind.starts_with("text/event-stream") {
        return Err(format!(
            "{url}: HTTP {status} with content-type {:?} (expected 200 and text/event-stream)",
            crate::text::cut(&kind, 60)
        ));
    }
    Ok(Ok(EventStream {
        response,
        pending: Vec::new(),
        read: 0,
    }))
}

/// What is wrong with one event, if anything: its name and id against its frame, the
/// frame against its schema.
fn event_problem(ctx: &Ctx<'_>, n: usize, event: &Event) -> Option<String> {
    let kind = event.data["type"].as_str().unwrap_or("");
    let seq = event.data["seq"].to_string();
    if event.name != kind {
        return Some(format!(
            "event {n}: named {:?}, its frame's type is {kind:?}",
            event.name
        ));
    }
    if event.id != seq {
        return Some(format!(
            "event {n}: id {:?}, its frame's seq is {seq}",
            event.id
        ));
    }
    let violations = ctx.schemas.validate_frame(&event.data);
    violations.first().map(|v| {
        format!(
            "event {n} at {:?}: expected {}; got {}",
            v.pointer, v.expected, v.actual
        )
    })
}

pub(crate) async fn stream(ctx: &Ctx<'_>, game: Option<&str>, no_game: &str) -> CheckResult {
    let Some(game) = game else {
        return CheckResult::skip(ID, no_game);
    };
    let started = Instant::now();
    match watch(ctx, game, started).await {
        Ok(result) => result,
        Err(why) => CheckResult::fail(ID, started.elapsed(), why),
    }
}

async fn watch(ctx: &Ctx<'_>, game: &str, started: Instant) -> Result<CheckResult, String> {
    let deadline = ctx.deadline(started);
    let mut events = match open(ctx, game, None).await? {
        Ok(events) => events,
        Err(skipped) => return Ok(skipped),
    };
    let snapshot = events.next(deadline).await?;
    if snapshot.name != "snapshot" {
        return Err(format!(
            "the first event is {:?}, not the snapshot",
            snapshot.name
        ));
    }
    if let Some(problem) = event_problem(ctx, 1, &snapshot) {
        return Err(problem);
    }
    let first = snapshot.data["seq"].as_u64().unwrap_or(0);
    let mut updates: Vec<Value> = Vec::new();
    let mut n = 1;
    while updates.len() < UPDATES_WANTED {
        let event = events.next(deadline).await?;
        n += 1;
        if let Some(problem) = event_problem(ctx, n, &event) {
            return Err(problem);
        }
        if event.name == "update" || event.name == "final" {
            let expected = first + updates.len() as u64 + 1;
            let seq = event.data["seq"].as_u64().unwrap_or(0);
            if seq != expected {
                return Err(format!(
                    "event {n}: seq {seq}, expected {expected} (data frames step by 1)"
                ));
            }
            updates.push(event.data);
        }
    }
    drop(events);
    let resumed = resume(ctx, game, first + 1, &updates[1..], deadline).await?;
    Ok(CheckResult::pass(
        ID,
        started.elapsed(),
        format!(
            "snapshot at seq {first}, then {} updates as events named by type with their seq as id; Last-Event-ID {} {resumed}",
            updates.len(),
            first + 1
        ),
    ))
}

/// Reconnects after `after` and checks the first events are `expected`, as first sent.
async fn resume(
    ctx: &Ctx<'_>,
    game: &str,
    after: u64,
    expected: &[Value],
    deadline: tokio::time::Instant,
) -> Result<String, String> {
    let mut events = open(ctx, game, Some(after))
        .await?
        .map_err(|_| "the resumed stream answered 404".to_owned())?;
    for want in expected {
        let got = loop {
            let event = events.next(deadline).await?;
            if event.name == "update" || event.name == "final" || event.name == "snapshot" {
                break event;
            }
        };
        if &got.data != want {
            return Err(format!(
                "Last-Event-ID {after}: expected seq {} replayed as first sent, got {} {}",
                want["seq"],
                got.name,
                crate::text::excerpt(&got.data, 160)
            ));
        }
    }
    Ok(format!("replayed seq {}.. as first sent", after + 1))
}
