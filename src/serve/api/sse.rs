//! `GET /sse/live/{game_id}`: the game's stream as Server-Sent Events, for clients
//! that cannot or will not speak WebSocket. The same frames as `WS /ws/live/{id}`,
//! each one event: `event:` its type, `id:` its seq, `data:` the frame's JSON (one
//! line). A reconnecting client sends `Last-Event-ID` (EventSource does so itself) and
//! gets exactly what it missed, as with `?since=`; `?epoch=` names the run it belongs
//! to. A reader that falls behind has its stream ended (it reconnects with its
//! `Last-Event-ID` and misses nothing the history still holds); so does shutdown.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::serve::error::{ApiError, Params};

use super::websocket::unavailable;
use crate::contract::{FrameType, GameId};
use crate::serve::state::AppState;
use crate::serve::stream::outgoing::Outgoing;
use crate::serve::stream::resume::ResumeFrom;

#[derive(Deserialize)]
pub struct SseQuery {
    since: Option<u64>,
    epoch: Option<String>,
}

/// Opens a game's event stream.
pub async fn stream(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    query: Result<Params<SseQuery>, ApiError>,
    headers: HeaderMap,
) -> Response {
    let query = match query {
        Ok(Params(query)) => query,
        Err(e) => return e.into_response(),
    };
    let Some(channel) = GameId::parse(&raw_id)
        .ok()
        .and_then(|id| state.0.hub.get(&id))
    else {
        let shown = crate::text::cut(&raw_id, 64);
        let body = serde_json::json!({"error": "unknown_game",
            "message": format!("unknown game id {shown:?}; list valid ids with GET /api/live/games")});
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    };
    if state.0.shutdown.is_triggered() {
        return unavailable("shutting_down", "the server is shutting down");
    }
    let Ok(permit) = state.0.conns.clone().try_acquire_owned() else {
        return unavailable(
            "max_conns",
            "connection limit reached (--max-conns); retry later",
        );
    };
    // Last-Event-ID (what EventSource sends on its own) wins over ?since=.
    let last_event = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let since = last_event.or(query.since);
    let subscription = channel.subscribe(since.map(|since| ResumeFrom {
        since,
        epoch: query.epoch.as_deref(),
    }));
    let metrics = state.0.metrics.clone();
    metrics.sse_connections.inc();
    let opened = Opened {
        state: state.clone(),
        _permit: permit,
        _hold: state.0.shutdown.hold(),
    };
    let preamble: Vec<Event> = subscription
        .preamble
        .iter()
        .filter_map(|text| event_of_text(text))
        .collect();
    let live = live_events(opened, subscription.rx, subscription.seq);
    let events = futures_util::StreamExt::chain(
        futures_util::stream::iter(preamble.into_iter().map(Ok::<_, Infallible>)),
        live,
    );
    let mut response = Sse::new(events).into_response();
    // Proxies must not buffer a stream (nginx honours this header).
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// What a stream holds while it is open: its connection slot and the shutdown's
/// wait; the gauge goes down when it is dropped.
struct Opened {
    state: AppState,
    _permit: tokio::sync::OwnedSemaphorePermit,
    _hold: tokio_util::task::task_tracker::TaskTrackerToken,
}

impl Drop for Opened {
    fn drop(&mut self) {
        self.state.0.metrics.sse_connections.dec();
    }
}

/// The live frames after the preamble, until the stream ends, the reader falls
/// behind or the server shuts down.
fn live_events(
    opened: Opened,
    rx: tokio::sync::broadcast::Receiver<Outgoing>,
    snapshot_seq: u64,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let token = opened.state.0.shutdown.token().clone();
    let state = (opened, rx, snapshot_seq);
    futures_util::stream::unfold(state, move |(opened, mut rx, mut last)| {
        let token = token.clone();
        async move {
            loop {
                let received = tokio::select! {
                    received = rx.recv() => received,
                    _ = token.cancelled() => return None,
                };
                match received {
                    Ok(out) => {
                        // Live frames at or below the snapshot's seq were replayed.
                        if out.kind.is_data_bearing() && out.seq <= last {
                            continue;
                        }
                        if out.kind.is_data_bearing() {
                            last = out.seq;
                        }
                        opened.state.0.metrics.sse_events_sent.inc();
                        let event = event(out.kind, out.seq, out.text());
                        return Some((Ok(event), (opened, rx, last)));
                    }
                    Err(RecvError::Lagged(n)) => {
                        tracing::debug!(behind = n, last, "ending an SSE stream that fell behind");
                        opened.state.0.metrics.sse_slow_consumers.inc();
                        return None;
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    })
}

/// One frame as an event.
fn event(kind: FrameType, seq: u64, text: &str) -> Event {
    Event::default()
        .event(kind.as_str())
        .id(seq.to_string())
        .data(text)
}

/// A frame whose type and seq are read back from its text (the preamble's frames).
fn event_of_text(text: &str) -> Option<Event> {
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(rename = "type", borrow)]
        kind: &'a str,
        seq: u64,
    }
    let head: Head = serde_json::from_str(text).ok()?;
    let kind = FrameType::parse(head.kind)?;
    Some(event(kind, head.seq, text))
}
