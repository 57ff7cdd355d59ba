//! A small live-games server written from the README's contract alone (no code shared
//! with `serve`), that can break the contract in exactly one way. Smoke must pass it
//! when it is intact and name the right check for each breakage.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::now_micros;

/// The one thing the server gets wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakage {
    None,
    /// An old update is sent again on live streams (seq goes backwards).
    SeqBackwards,
    /// A heartbeat-like frame without `type`.
    NoType,
    /// Every `ts` is Unix milliseconds.
    TsMillis,
    /// One frame is not JSON.
    NonJson,
    /// `/health` answers 503.
    Unhealthy,
    /// A fresh connection gets updates but no snapshot first.
    NoSnapshot,
    /// An unknown game gets an error frame, then a normal close (1000).
    UnknownGameNotClosed,
    /// The quiet game never sends heartbeats.
    NoHeartbeat,
    /// Pings are ignored.
    NoPong,
    /// `?since=` is ignored: a resumed stream starts with a fresh snapshot.
    ResumeIgnored,
    /// Timeline points carry a field live updates do not have.
    TimelineShape,
    /// Unknown paths answer 200.
    CatchAll200,
    /// A contract 1.0.0 server: no epochs anywhere (not a breakage: ws.epoch skips).
    Version100,
    /// `epoch` is ignored: a resume from another run is replayed as if it were this one.
    EpochIgnored,
    /// The snapshot names another epoch than `/api/live/games`.
    EpochMismatch,
    /// `ws_url` names a backend host, not where the server was reached.
    AdvertisesElsewhere,
    /// Its Server-Sent Events carry ids that are not the frames' seqs.
    SseIdNotSeq,
    /// A resume replays each frame with another score than it was first sent with.
    ResumeAltered,
    /// A resume in the current epoch is answered with an error frame, then a snapshot.
    ResumeRefused,
    /// The timeline's points hold another score than the stream sent.
    TimelineAltered,
    /// The timeline leaves out every fifth point, though it says it holds them.
    TimelineGaps,
    /// `POST /admin/faults` answers 401 whatever the token.
    AdminRefused,
    /// `POST /admin/faults` answers 200 and changes nothing.
    AdminNoEffect,
    /// The stream shows the outage, `/health` keeps saying healthy.
    AdminHealthStays,
    /// One binary frame on the live stream.
    BinaryFrame,
    /// One frame on the live stream names another game.
    OtherGameFrame,
    /// The upgrade to an unknown game is answered 404 instead of accepted.
    UnknownGame404,
    /// An unknown game's error frame carries another code than `unknown_game`.
    UnknownGameWrongCode,
    /// The timeline's points come newest first.
    TimelineDisordered,
    /// The timeline's `last_seq` is behind its own last point.
    TimelineLastSeqBehind,
    /// The timeline names another game.
    TimelineOtherGame,
    /// NHL scores say they are NFL's.
    ScoresWrongLeague,
    /// NFL scores answer 418.
    ScoresTeapot,
    /// A resume from another epoch gets `resume_gap`, not `epoch_changed`.
    EpochWrongCode,
    /// The fresh snapshot after `epoch_changed` names the client's old epoch.
    EpochStaleSnapshot,
    /// After `epoch_changed` the connection closes, without a snapshot.
    EpochNoSnapshot,
    /// `/api/live/games` names an epoch, snapshots do not.
    SnapshotWithoutEpoch,
    /// A resume replays, then closes without the snapshot.
    ResumeNoSnapshot,
    /// The event stream is served as text/plain.
    SseTextPlain,
    /// The event stream starts with an update, the snapshot after it.
    SseUpdateFirst,
    /// The event stream leaves out every other update.
    SseSeqGap,
    /// A `Last-Event-ID` replay sends altered frames.
    SseReplayAltered,
}

impl Breakage {
    fn has_epochs(self) -> bool {
        self != Breakage::Version100
    }
}

pub const LIVE: &str = "g1";
pub const QUIET: &str = "q1";
/// An update every TICK on the live game.
const TICK: Duration = Duration::from_millis(20);
/// The server's heartbeat interval; smoke is told it with `heartbeat`.
pub const HEARTBEAT: Duration = Duration::from_millis(300);
const HISTORY: usize = 5000;

struct Shared {
    breakage: Breakage,
    /// The host:port it is reached at, for `ws_url`.
    reached: SocketAddr,
    /// This run of the server (contract 1.1.0).
    epoch: String,
    /// (seq, frame text, point data) of every update, oldest first.
    history: Mutex<VecDeque<(u64, String, Value)>>,
    live: broadcast::Sender<(u64, String)>,
    /// ESPN's state as the admin API set it: "ok" or "down".
    espn: tokio::sync::watch::Sender<&'static str>,
}

type St = Arc<Shared>;

fn ts(breakage: Breakage) -> i64 {
    if breakage == Breakage::TsMillis {
        now_micros() / 1000
    } else {
        now_micros()
    }
}

fn point(n: u64) -> Value {
    json!({
        "observed_at": now_micros(), "cause": "market", "state": "live", "period": 1,
        "clock": "10:00", "score": {"home": n / 10, "away": 0}, "home_win_prob": 0.5,
        "last_play": null,
        "market": {"ticker": "KXG1", "yes_bid": 0.4, "yes_ask": 0.6, "last_price": 0.5},
        "sources": {"espn": "ok", "kalshi": "ok"}
    })
}

fn info(id: &str) -> Value {
    json!({"id": id, "league": "nba", "scheduled_at": "2026-11-23T00:00:00Z",
           "home": {"abbreviation": "BOS", "name": "Celtics"},
           "away": {"abbreviation": "NYK", "name": "Knicks"}})
}

/// Starts the server on 127.0.0.1:0; it runs until the test's runtime ends.
pub async fn start(breakage: Breakage) -> SocketAddr {
    let (live, _) = broadcast::channel(1024);
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shared = Arc::new(Shared {
        breakage,
        reached: addr,
        epoch: format!("cs-{}-{run}", std::process::id()),
        history: Mutex::new(VecDeque::new()),
        live,
        espn: tokio::sync::watch::Sender::new("ok"),
    });
    tokio::spawn(tick(shared.clone()));
    let app = Router::new()
        .route("/health", get(health))
        .route("/api/live/games", get(games))
        .route("/api/games/{id}/timeline", get(timeline))
        .route("/api/{league}/scores", get(scores))
        .route("/ws/live/{id}", get(ws))
        .route("/sse/live/{id}", get(sse))
        .route("/admin/faults", post(inject).delete(clear))
        .fallback(fallback)
        .with_state(shared.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    // A few points first, so that checks of the timeline's order have pairs to judge.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while shared.history.lock().unwrap().len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ticker never ran"
        );
        tokio::time::sleep(TICK).await;
    }
    addr
}

async fn tick(shared: St) {
    let mut seq = 0;
    let mut every = tokio::time::interval(TICK);
    loop {
        every.tick().await;
        seq += 1;
        let data = point(seq);
        let text = json!({"type": "update", "game_id": LIVE, "seq": seq,
                          "ts": ts(shared.breakage), "data": data})
        .to_string();
        {
            let mut history = shared.history.lock().unwrap();
            history.push_back((seq, text.clone(), data));
            if history.len() > HISTORY {
                history.pop_front();
            }
        }
        let _ = shared.live.send((seq, text));
    }
}

fn latest(shared: &Shared) -> (u64, Value) {
    let history = shared.history.lock().unwrap();
    history
        .back()
        .map(|(seq, _, data)| (*seq, data.clone()))
        .unwrap_or((0, point(0)))
}

async fn health(State(shared): State<St>) -> Response {
    let espn = *shared.espn.borrow();
    let shows_outage = espn != "ok" && shared.breakage != Breakage::AdminHealthStays;
    let espn = if shows_outage { espn } else { "ok" };
    let sources = json!({"espn": {"state": espn}, "kalshi": {"state": "ok"}});
    if shows_outage {
        return Json(json!({"status": "degraded", "uptime_s": 1.0, "sources": sources}))
            .into_response();
    }
    if shared.breakage == Breakage::Unhealthy {
        let body = json!({"status": "down", "uptime_s": 1.0, "sources": sources});
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    Json(json!({"status": "healthy", "uptime_s": 1.0, "sources": sources})).into_response()
}

async fn games(State(shared): State<St>) -> Json<Value> {
    let (seq, data) = latest(&shared);
    let mut quiet = data.clone();
    quiet["state"] = json!("final");
    let summary = |id: &str, seq: u64, latest: Value| {
        let mut s = info(id);
        s["seq"] = json!(seq);
        s["latest"] = latest;
        let host = if shared.breakage == Breakage::AdvertisesElsewhere {
            "10.1.2.3:8000".to_owned()
        } else {
            shared.reached.to_string()
        };
        s["ws_url"] = json!(format!("ws://{host}/ws/live/{id}"));
        // Relative: resolved against where the list came from.
        s["timeline_url"] = json!(format!("/api/games/{id}/timeline"));
        s
    };
    let games = json!([summary(QUIET, 0, quiet), summary(LIVE, seq, data)]);
    if shared.breakage.has_epochs() {
        Json(json!({"contract_version": "1.1.0", "epoch": shared.epoch, "games": games}))
    } else {
        Json(json!({"contract_version": "1.0.0", "games": games}))
    }
}

#[derive(serde::Deserialize)]
struct Since {
    since: Option<u64>,
    epoch: Option<String>,
}

async fn timeline(
    State(shared): State<St>,
    Path(id): Path<String>,
    Query(q): Query<Since>,
) -> Response {
    if id != LIVE && id != QUIET {
        let body = json!({"error": "unknown_game", "message": "no such game"});
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    }
    let history = shared.history.lock().unwrap();
    let since = q.since.unwrap_or(0);
    let points: Vec<Value> = if id == LIVE {
        history
            .iter()
            .filter(|(seq, _, _)| *seq > since)
            .filter(|(seq, _, _)| shared.breakage != Breakage::TimelineGaps || seq % 5 != 0)
            .map(|(seq, _, data)| {
                let mut data = data.clone();
                match shared.breakage {
                    Breakage::TimelineShape => data["period_name"] = json!("Q1"),
                    Breakage::TimelineAltered => data["score"]["home"] = json!(1000 + seq),
                    _ => {}
                }
                json!({"seq": seq, "data": data})
            })
            .collect()
    } else {
        Vec::new()
    };
    let first = history.front().map_or(0, |h| h.0);
    let last = match shared.breakage {
        _ if id != LIVE => 0,
        Breakage::TimelineLastSeqBehind => 1,
        _ => history.back().map_or(0, |h| h.0),
    };
    let mut points = points;
    if shared.breakage == Breakage::TimelineDisordered {
        points.reverse();
    }
    let named = if shared.breakage == Breakage::TimelineOtherGame {
        "another-game"
    } else {
        id.as_str()
    };
    let mut body =
        json!({"game_id": named, "last_seq": last, "first_retained_seq": first, "points": points});
    if shared.breakage.has_epochs() {
        body["epoch"] = json!(shared.epoch);
    }
    Json(body).into_response()
}

async fn scores(State(shared): State<St>, Path(league): Path<String>) -> Response {
    let breakage = shared.breakage;
    match league.as_str() {
        "nfl" if breakage == Breakage::ScoresTeapot => {
            (StatusCode::IM_A_TEAPOT, "short and stout").into_response()
        }
        "nhl" if breakage == Breakage::ScoresWrongLeague => {
            Json(json!({"league": "nfl", "source": "apisports", "games": []})).into_response()
        }
        "nfl" => {
            let body = json!({"error": "upstream_unavailable", "message": "no API key configured"});
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
        "nhl" => Json(json!({"league": "nhl", "source": "apisports", "games": []})).into_response(),
        _ => fallback_404(),
    }
}

fn fallback_404() -> Response {
    let body = json!({"error": "not_found", "message": "no such path"});
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

async fn fallback(State(shared): State<St>) -> Response {
    if shared.breakage == Breakage::CatchAll200 {
        return Json(json!({"ok": true})).into_response();
    }
    fallback_404()
}

async fn ws(
    State(shared): State<St>,
    Path(id): Path<String>,
    Query(q): Query<Since>,
    upgrade: WebSocketUpgrade,
) -> Response {
    if shared.breakage == Breakage::UnknownGame404 && id != LIVE && id != QUIET {
        return fallback_404();
    }
    upgrade.on_upgrade(move |socket| async move {
        match id.as_str() {
            LIVE => live_stream(socket, shared, q).await,
            QUIET => quiet_stream(socket, shared).await,
            _ => unknown(socket, shared, &id).await,
        }
    })
}

fn envelope(kind: &str, game: &str, seq: u64, breakage: Breakage) -> Value {
    json!({"type": kind, "game_id": game, "seq": seq, "ts": ts(breakage)})
}

fn snapshot(shared: &Shared, game: &str, seq: u64, data: Value) -> String {
    snapshot_in(shared, game, seq, data, &shared.epoch)
}

/// A snapshot that names `epoch` (where the server names one at all).
fn snapshot_in(shared: &Shared, game: &str, seq: u64, data: Value, epoch: &str) -> String {
    let breakage = shared.breakage;
    let mut frame = envelope("snapshot", game, seq, breakage);
    match breakage {
        Breakage::Version100 | Breakage::SnapshotWithoutEpoch => {}
        Breakage::EpochMismatch => frame["epoch"] = json!("not-the-listed-epoch"),
        _ => frame["epoch"] = json!(epoch),
    }
    frame["game"] = info(game);
    frame["data"] = data;
    frame.to_string()
}

async fn send(socket: &mut WebSocket, text: String) -> bool {
    socket.send(Message::text(text)).await.is_ok()
}

/// The pong for a client frame, if it is a ping.
fn pong(text: &str, game: &str, seq: u64, breakage: Breakage) -> Option<String> {
    let ping: Value = serde_json::from_str(text).ok()?;
    if ping["type"] != "ping" || breakage == Breakage::NoPong {
        return None;
    }
    let mut frame = envelope("pong", game, seq, breakage);
    frame["id"] = ping["id"].clone();
    Some(frame.to_string())
}

async fn live_stream(mut socket: WebSocket, shared: St, q: Since) {
    let breakage = shared.breakage;
    let mut updates = shared.live.subscribe();
    let since = q.since.filter(|_| breakage != Breakage::ResumeIgnored);
    let (mut sent_seq, data) = latest(&shared);
    let checks_epoch = breakage.has_epochs() && breakage != Breakage::EpochIgnored;
    let other_epoch = q.epoch.filter(|e| checks_epoch && *e != shared.epoch);
    if let (Some(_), Some(other)) = (since, &other_epoch) {
        let mut refusal = envelope("error", LIVE, sent_seq, breakage);
        refusal["code"] = if breakage == Breakage::EpochWrongCode {
            json!("resume_gap")
        } else {
            json!("epoch_changed")
        };
        refusal["message"] = json!(format!("epoch {other} is not {}", shared.epoch));
        if !send(&mut socket, refusal.to_string()).await || breakage == Breakage::EpochNoSnapshot {
            return;
        }
    }
    if since.is_some() && other_epoch.is_none() && breakage == Breakage::ResumeRefused {
        let mut refusal = envelope("error", LIVE, sent_seq, breakage);
        refusal["code"] = json!("history_unavailable");
        refusal["message"] = json!("this server does not replay");
        if !send(&mut socket, refusal.to_string()).await {
            return;
        }
    }
    let replays = since.filter(|_| other_epoch.is_none() && breakage != Breakage::ResumeRefused);
    if let Some(since) = replays {
        let replay: Vec<(u64, String)> = {
            let history = shared.history.lock().unwrap();
            history
                .iter()
                .filter(|(seq, _, _)| *seq > since)
                .map(|(seq, text, _)| (*seq, replayed(text, breakage)))
                .collect()
        };
        for (seq, text) in replay {
            sent_seq = seq;
            if !send(&mut socket, text).await {
                return;
            }
        }
    }
    if since.is_some() && other_epoch.is_none() && breakage == Breakage::ResumeNoSnapshot {
        return;
    }
    let wants_snapshot = since.is_some() || breakage != Breakage::NoSnapshot;
    let epoch = match &other_epoch {
        Some(old) if breakage == Breakage::EpochStaleSnapshot => old.clone(),
        _ => shared.epoch.clone(),
    };
    let first = snapshot_in(&shared, LIVE, sent_seq, data, &epoch);
    if wants_snapshot && !send(&mut socket, first).await {
        return;
    }
    let mut count = 0u64;
    let mut espn = shared.espn.subscribe();
    espn.mark_unchanged();
    loop {
        tokio::select! {
            Ok(()) = espn.changed() => {
                let state = *espn.borrow_and_update();
                if !send(&mut socket, status(state, sent_seq, breakage)).await {
                    return;
                }
            }
            update = updates.recv() => {
                let Ok((seq, text)) = update else { return };
                if seq <= sent_seq {
                    continue;
                }
                sent_seq = seq;
                count += 1;
                if !send(&mut socket, text).await {
                    return;
                }
                if count == 5
                    && let Some(extra) = extra_frame(&shared, sent_seq)
                        && socket.send(extra).await.is_err() {
                            return;
                        }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if let Some(pong) = pong(text.as_str(), LIVE, sent_seq, breakage)
                        && !send(&mut socket, pong).await {
                            return;
                        }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}

/// A frame as a resume sends it again: as first sent, unless the server alters it.
fn replayed(text: &str, breakage: Breakage) -> String {
    if breakage != Breakage::ResumeAltered {
        return text.to_owned();
    }
    let mut frame: Value = serde_json::from_str(text).unwrap();
    frame["data"]["score"]["home"] = json!(999);
    frame.to_string()
}

/// A `status` frame: ESPN in `espn`, Kalshi ok, and when each was last heard from.
fn status(espn: &str, seq: u64, breakage: Breakage) -> String {
    let mut frame = envelope("status", LIVE, seq, breakage);
    let heard = now_micros() - 2_000_000;
    frame["state"] = json!("live");
    frame["sources"] = json!({"espn": espn, "kalshi": "ok"});
    frame["as_of"] = json!({"espn": heard, "kalshi": now_micros()});
    frame["message"] = json!(format!("espn {espn}"));
    frame.to_string()
}

/// `POST /admin/faults`: ESPN goes down (the body is not read: one fault is all it has).
async fn inject(State(shared): State<St>, headers: axum::http::HeaderMap) -> Response {
    let authorized =
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer smoke-token");
    if !authorized || shared.breakage == Breakage::AdminRefused {
        let body = json!({"error": "unauthorized", "message": "a bearer token is required"});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    if shared.breakage != Breakage::AdminNoEffect {
        shared.espn.send_replace("down");
    }
    Json(json!({"injected": "espn down"})).into_response()
}

/// `DELETE /admin/faults`: ESPN is ok again.
async fn clear(State(shared): State<St>) -> Json<Value> {
    if shared.breakage != Breakage::AdminNoEffect {
        shared.espn.send_replace("ok");
    }
    Json(json!({"cleared": "espn"}))
}

/// The one bad frame some breakages add to a live stream.
fn extra_frame(shared: &Shared, seq: u64) -> Option<Message> {
    bad_text(shared, seq).map(Message::text).or_else(|| {
        (shared.breakage == Breakage::BinaryFrame)
            .then(|| Message::Binary(vec![0x82, 0x01, 0x02].into()))
    })
}

/// The one bad text frame some breakages add to a live stream.
fn bad_text(shared: &Shared, seq: u64) -> Option<String> {
    match shared.breakage {
        Breakage::SeqBackwards => {
            let history = shared.history.lock().unwrap();
            history
                .iter()
                .find(|(s, _, _)| *s + 3 == seq)
                .map(|(_, text, _)| text.clone())
        }
        Breakage::NoType => {
            let mut frame = envelope("heartbeat", LIVE, seq, shared.breakage);
            frame.as_object_mut().unwrap().remove("type");
            Some(frame.to_string())
        }
        Breakage::NonJson => Some("this is not JSON {".into()),
        Breakage::OtherGameFrame => {
            Some(envelope("heartbeat", "another-game", seq, shared.breakage).to_string())
        }
        _ => None,
    }
}

async fn quiet_stream(mut socket: WebSocket, shared: St) {
    let breakage = shared.breakage;
    let mut data = point(0);
    data["state"] = json!("final");
    if !send(&mut socket, snapshot(&shared, QUIET, 0, data)).await {
        return;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT) => {
                if breakage != Breakage::NoHeartbeat {
                    let beat = envelope("heartbeat", QUIET, 0, breakage).to_string();
                    if !send(&mut socket, beat).await {
                        return;
                    }
                }
            }
            incoming = socket.recv() => if !matches!(incoming, Some(Ok(_))) { return },
        }
    }
}

async fn unknown(mut socket: WebSocket, shared: St, id: &str) {
    let mut frame = envelope("error", id, 0, shared.breakage);
    frame["code"] = if shared.breakage == Breakage::UnknownGameWrongCode {
        json!("not_found")
    } else {
        json!("unknown_game")
    };
    frame["message"] = json!(format!("no game {id}"));
    let _ = send(&mut socket, frame.to_string()).await;
    let code = if shared.breakage == Breakage::UnknownGameNotClosed {
        1000
    } else {
        4404
    };
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: "unknown game".into(),
        })))
        .await;
}

/// The live game as Server-Sent Events: what the history holds after `Last-Event-ID`,
/// a snapshot, then live updates; each event named by its type, its id the seq.
async fn sse(
    State(shared): State<St>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    use axum::response::sse::{Event, Sse};
    if id != LIVE {
        return StatusCode::NOT_FOUND.into_response();
    }
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let updates = shared.live.subscribe();
    let (latest_seq, data) = latest(&shared);
    let breakage = shared.breakage;
    let mut preamble: Vec<(&'static str, u64, String)> = Vec::new();
    let history = shared.history.lock().unwrap().clone();
    if let Some(after) = after {
        // Only its own breakage alters what the event stream replays.
        let replay_as = match breakage {
            Breakage::SseReplayAltered => Breakage::ResumeAltered,
            _ => Breakage::None,
        };
        preamble.extend(
            history
                .iter()
                .filter(|(seq, _, _)| *seq > after && *seq <= latest_seq)
                .map(|(seq, text, _)| ("update", *seq, replayed(text, replay_as))),
        );
    }
    if breakage == Breakage::SseUpdateFirst
        && let Some((seq, text, _)) = history.back()
    {
        preamble.push(("update", *seq, text.clone()));
    }
    preamble.push((
        "snapshot",
        latest_seq,
        snapshot(&shared, LIVE, latest_seq, data),
    ));
    let event = move |(kind, seq, text): (&'static str, u64, String)| {
        let id = if breakage == Breakage::SseIdNotSeq {
            seq + 1000
        } else {
            seq
        };
        Ok::<_, std::convert::Infallible>(
            Event::default().event(kind).id(id.to_string()).data(text),
        )
    };
    let live =
        futures_util::stream::unfold((updates, latest_seq), move |(mut rx, last)| async move {
            loop {
                match rx.recv().await {
                    Ok((seq, _)) if breakage == Breakage::SseSeqGap && seq % 2 == 0 => continue,
                    Ok((seq, text)) if seq > last => {
                        return Some((("update", seq, text), (rx, seq)));
                    }
                    Ok(_) => continue,
                    Err(_) => return None,
                }
            }
        });
    let events = futures_util::StreamExt::map(
        futures_util::StreamExt::chain(futures_util::stream::iter(preamble), live),
        event,
    );
    let mut response = Sse::new(events).into_response();
    if breakage == Breakage::SseTextPlain {
        let plain = axum::http::HeaderValue::from_static("text/plain");
        response.headers_mut().insert("content-type", plain);
    }
    response
}
