//! Upstreams that answer as the real ones do, from payloads written after their public
//! documentation (not the mocks' recordings), changed by the test between polls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::routing;
use serde_json::{Value, json};

/// An ESPN event on the scoreboard: `home` and `away` as (abbreviation, name).
pub fn espn_event(
    id: &str,
    date: &str,
    away: (&str, &str),
    home: (&str, &str),
    status: Value,
    last_play: Value,
) -> Value {
    let side = |(abbr, name): (&str, &str), home_away: &str, order: u32, score: &str| {
        json!({"id": abbr, "homeAway": home_away, "order": order, "score": score,
               "team": {"id": abbr, "abbreviation": abbr, "displayName": name}})
    };
    json!({"id": id, "uid": format!("s:40~l:46~e:{id}"), "date": date,
        "name": format!("{} at {}", away.1, home.1), "shortName": format!("{} @ {}", away.0, home.0),
        "competitions": [{"id": id,
            "competitors": [side(home, "home", 0, "61"), side(away, "away", 1, "58")],
            "status": status,
            "situation": {"lastPlay": last_play}}]})
}

/// ESPN's status of a game in progress.
pub fn in_progress() -> Value {
    json!({"clock": 332.0, "displayClock": "5:32", "period": 3,
        "type": {"id": "2", "name": "STATUS_IN_PROGRESS", "state": "in", "completed": false,
                 "description": "In Progress", "detail": "5:32 - 3rd Quarter"}})
}

pub fn scoreboard(events: Vec<Value>) -> Value {
    json!({"leagues": [], "day": {"date": "2026-01-14"}, "events": events})
}

/// What a scripted upstream shows now; tests change it between polls.
#[derive(Clone)]
pub struct Shown(pub Arc<Mutex<Value>>);

impl Shown {
    pub fn set(&self, value: Value) {
        *self.0.lock().unwrap() = value;
    }
}

/// ESPN's NBA scoreboard showing `first`; returns its handle and base URL.
pub async fn start_espn(first: Value) -> (Shown, String) {
    start_espn_boards(json!({"basketball/nba": first})).await
}

/// ESPN's scoreboards, `boards` keyed by `{sport}/{league}` (`football/nfl`); a league
/// not in it answers 404. Tests change a board with [`Shown::set`] on the whole map.
pub async fn start_espn_boards(boards: Value) -> (Shown, String) {
    async fn board(
        State(shown): State<Shown>,
        Path((sport, league)): Path<(String, String)>,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let boards = shown.0.lock().unwrap().clone();
        let key = format!("{sport}/{league}");
        // A single board (set by `start_espn`'s callers) is the NBA's.
        let board = if boards.get("events").is_some() {
            (key == "basketball/nba").then_some(boards)
        } else {
            boards.get(&key).cloned()
        };
        match board {
            Some(board) => axum::Json(board).into_response(),
            None => axum::http::StatusCode::NOT_FOUND.into_response(),
        }
    }
    let shown = Shown(Arc::new(Mutex::new(boards)));
    let app = axum::Router::new()
        .route(
            "/apis/site/v2/sports/{sport}/{league}/scoreboard",
            routing::get(board),
        )
        .with_state(shown.clone());
    (shown, serve(app).await)
}

/// A Kalshi market in the 2026 dollar-string format.
pub fn kalshi_market(ticker: &str, bid: &str, ask: &str, last: &str) -> Value {
    let event = ticker.rsplit_once('-').map_or(ticker, |(e, _)| e);
    json!({"ticker": ticker, "event_ticker": event, "market_type": "binary", "status": "active",
        "result": "", "yes_bid_dollars": bid, "yes_ask_dollars": ask, "last_price_dollars": last,
        "volume_fp": "1200.00", "open_interest_fp": "400.00"})
}

/// Kalshi's REST API listing the markets `first` holds; `series_ticker` and `tickers`
/// filter as Kalshi's do. Its WebSocket ([`start_kalshi_streaming`]) goes unused:
/// serve polls without a key.
pub async fn start_kalshi(first: Value) -> (Shown, String) {
    let (shown, _, url) = start_kalshi_streaming(first).await;
    (shown, url)
}

/// Kalshi's WebSocket, scripted: every frame the test sends goes to every open socket,
/// after the socket's first command (the subscription).
#[derive(Clone)]
pub struct KalshiFrames {
    frames: tokio::sync::broadcast::Sender<String>,
    /// Handshakes taken so far: a socket kept open stays at one.
    pub handshakes: Arc<AtomicUsize>,
    /// The commands the sockets sent, in order.
    pub commands: Arc<Mutex<Vec<Value>>>,
}

impl KalshiFrames {
    pub fn send(&self, frame: Value) {
        self.frames
            .send(frame.to_string())
            .expect("a socket listening");
    }

    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }

    pub fn subscribed(&self) -> bool {
        self.commands
            .lock()
            .unwrap()
            .iter()
            .any(|c| c["cmd"] == "subscribe")
    }
}

/// Kalshi's REST API as [`start_kalshi`], and its WebSocket at `/trade-api/ws/v2`
/// sending what the test scripts (any handshake is taken: signatures are
/// `serve_kalshi`'s concern).
pub async fn start_kalshi_streaming(first: Value) -> (Shown, KalshiFrames, String) {
    async fn markets(
        State((shown, _)): State<(Shown, KalshiFrames)>,
        Query(q): Query<std::collections::HashMap<String, String>>,
    ) -> axum::Json<Value> {
        let all = shown.0.lock().unwrap().clone();
        let wanted: Option<Vec<&str>> = q.get("tickers").map(|t| t.split(',').collect());
        let kept: Vec<Value> = all
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| {
                let ticker = m["ticker"].as_str().unwrap_or("");
                q.get("series_ticker")
                    .is_none_or(|s| ticker.starts_with(s.as_str()))
                    && wanted.as_ref().is_none_or(|w| w.contains(&ticker))
            })
            .cloned()
            .collect();
        axum::Json(json!({"markets": kept, "cursor": ""}))
    }
    async fn ws(
        State((_, frames)): State<(Shown, KalshiFrames)>,
        upgrade: WebSocketUpgrade,
    ) -> axum::response::Response {
        frames.handshakes.fetch_add(1, Ordering::SeqCst);
        upgrade.on_upgrade(move |socket| scripted_socket(socket, frames))
    }
    let shown = Shown(Arc::new(Mutex::new(first)));
    let frames = KalshiFrames {
        frames: tokio::sync::broadcast::channel(64).0,
        handshakes: Arc::default(),
        commands: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/trade-api/v2/markets", routing::get(markets))
        .route(
            "/trade-api/v2/exchange/status",
            routing::get(|| async {
                axum::Json(json!({"exchange_active": true, "trading_active": true}))
            }),
        )
        .route("/trade-api/ws/v2", routing::get(ws))
        .with_state((shown.clone(), frames.clone()));
    let url = format!("{}/trade-api/v2", serve(app).await);
    (shown, frames, url)
}

/// One scripted socket: records the client's commands, sends the test's frames.
async fn scripted_socket(mut socket: WebSocket, frames: KalshiFrames) {
    let mut script = frames.frames.subscribe();
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let command = serde_json::from_str(&text).unwrap_or(Value::Null);
                    frames.commands.lock().unwrap().push(command);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
            frame = script.recv() => match frame {
                Ok(frame) => {
                    if socket.send(Message::Text(frame.into())).await.is_err() {
                        return;
                    }
                }
                Err(_) => return,
            },
        }
    }
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}
