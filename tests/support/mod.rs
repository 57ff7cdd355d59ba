//! Test harness: in-process servers, checking WebSocket clients, deadline waits.

#![allow(dead_code)] // each test module uses a different part of the harness

pub mod contract_server;
pub mod fake;
pub mod foreign;
pub mod influxdb;
pub mod loads;
pub mod peers;
pub mod replay;
pub mod tools;

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use livegames::contract::FrameType;
use livegames::contract::rules::{SeqEvent, SeqTracker};
use livegames::contract::schema::{self, Body};
use livegames::serve::{ServeConfig, ServerHandle};
use serde::Deserialize;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Generous: CI machines are small and busy. Waits end as soon as the condition holds.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Sends the servers' logs to the test that caused them (shown only when it fails),
/// once per test binary. Without a subscriber, tracing falls back to the `log` crate,
/// where goose's logger (installed by the HTTP load test) would print every
/// warning of every later test into the test output.
pub fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// A config that makes things happen quickly: fast replay, fast health decisions.
pub fn fast_config() -> ServeConfig {
    capture_logs();
    ServeConfig {
        speed: 60.0,
        rate: 20.0,
        espn_poll: Duration::from_millis(100),
        stale_after: Duration::from_millis(400),
        down_after: Duration::from_millis(800),
        retry_max: Duration::from_millis(200),
        upstream_timeout: Duration::from_millis(1500),
        heartbeat: Duration::from_secs(1),
        shutdown_grace: Duration::from_secs(5),
        ..ServeConfig::default()
    }
}

pub async fn start(config: ServeConfig) -> ServerHandle {
    capture_logs();
    livegames::serve::spawn(config, "127.0.0.1:0")
        .await
        .expect("server starts")
}

/// Polls `check` until it returns Some, or panics at the deadline naming `what`.
#[track_caller]
pub fn wait_for<T, F, Fut>(what: &'static str, mut check: F) -> impl Future<Output = T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let caller = std::panic::Location::caller();
    async move {
        let start = Instant::now();
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{caller}: timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The server's `/health` body, checked against the contract's schema.
pub async fn health_of(server: &ServerHandle) -> Value {
    get_valid(&format!("{}/health", server.http_url()), Body::Health)
        .await
        .1
}

pub async fn get(url: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("request")
}

/// GETs a JSON body and checks it against the published schema for `body`.
#[track_caller]
pub fn get_valid(url: &str, body: Body) -> impl Future<Output = (u16, Value)> + '_ {
    let caller = std::panic::Location::caller();
    async move {
        let response = get(url).await;
        let status = response.status().as_u16();
        let value: Value = response.json().await.expect("JSON body");
        assert_valid(body, &value, caller);
        (status, value)
    }
}

pub fn assert_valid(body: Body, value: &Value, caller: &std::panic::Location) {
    let violations = schema::validate(body, value);
    assert!(
        violations.is_empty(),
        "{caller}: {body:?} breaks the schema: {violations:#?}\n{value}"
    );
}

/// The first live game with a market quote, from the list endpoint.
pub async fn live_game(server: &ServerHandle) -> String {
    let url = format!("{}/api/live/games", server.http_url());
    wait_for("a live game with a market", || async {
        let list: Value = get(&url).await.json().await.ok()?;
        list["games"]
            .as_array()?
            .iter()
            .find(|g| g["latest"]["state"] == "live" && !g["latest"]["market"].is_null())
            .map(|g| g["id"].as_str().unwrap().to_owned())
    })
    .await
}

pub async fn game_seq(server: &ServerHandle, game: &str) -> u64 {
    let list: Value = get(&format!("{}/api/live/games", server.http_url()))
        .await
        .json()
        .await
        .unwrap();
    list["games"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == game)
        .unwrap()["seq"]
        .as_u64()
        .unwrap()
}

pub async fn metric(server: &ServerHandle, name: &str) -> f64 {
    let text = get(&format!("{}/metrics", server.http_url()))
        .await
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A loopback address that refuses connections for the whole test run: a socket is
/// bound there and never listens, so no other test's server can take the port in the
/// meantime (a port merely let go was once taken by another test's server, which
/// answered the "down" store with 404s). For upstreams and stores that are down.
pub fn closed_addr() -> std::net::SocketAddr {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    // Held until the test process ends: a handful per run.
    std::mem::forget(socket);
    addr
}

/// A loopback port free now (bound, then let go), for a process started next to
/// listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Unix time in microseconds: the library's one clock.
pub use livegames::clock::unix_micros as now_micros;

/// The strict test-side model of a frame: any field the contract does not name is
/// an error here, so undocumented additions fail tests (the product itself ignores
/// unknown fields).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StrictFrame {
    Snapshot {
        game_id: String,
        seq: u64,
        ts: i64,
        epoch: String,
        game: Value,
        data: Value,
    },
    Update {
        game_id: String,
        seq: u64,
        ts: i64,
        data: Value,
    },
    Status {
        game_id: String,
        seq: u64,
        ts: i64,
        state: String,
        sources: Value,
        as_of: SourceTimes,
        message: String,
    },
    Heartbeat {
        game_id: String,
        seq: u64,
        ts: i64,
    },
    Final {
        game_id: String,
        seq: u64,
        ts: i64,
        data: Value,
    },
    Error {
        game_id: String,
        seq: u64,
        ts: i64,
        code: String,
        message: String,
    },
    Pong {
        game_id: String,
        seq: u64,
        ts: i64,
        id: Value,
    },
}

/// Contract 1.2.0: when each source was last heard about the game; exactly these two.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceTimes {
    pub espn: Option<i64>,
    pub kalshi: Option<i64>,
}

pub const POINT_FIELDS: [&str; 11] = [
    "observed_at",
    "cause",
    "state",
    "period",
    "clock",
    "score",
    "home_win_prob",
    "last_play",
    "market",
    "sources",
    "as_of",
];

/// A point has exactly the contract's fields: no more, no fewer.
#[track_caller]
pub fn assert_point_shape(data: &Value) {
    let mut keys: Vec<&str> = data
        .as_object()
        .expect("a point is an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut expected = POINT_FIELDS.to_vec();
    expected.sort_unstable();
    assert_eq!(
        keys, expected,
        "a point has other fields than the contract's: {data}"
    );
    let as_of: SourceTimes = serde_json::from_value(data["as_of"].clone())
        .unwrap_or_else(|e| panic!("as_of is {{espn, kalshi}}, each a time or null: {e}: {data}"));
    let observed_at = data["observed_at"].as_i64().expect("observed_at");
    for heard in [as_of.espn, as_of.kalshi].into_iter().flatten() {
        assert!(
            heard > 946_684_800_000_000 && heard <= now_micros(),
            "as_of is a Unix time in microseconds, not in the future: {data}"
        );
    }
    if !data["score"].is_null() || !data["home_win_prob"].is_null() {
        let espn = as_of.espn.expect("ESPN values say when ESPN was heard");
        assert!(espn >= observed_at || data["cause"] == "market", "{data}");
    }
    if !data["market"].is_null() {
        assert!(
            as_of.kalshi.is_some(),
            "a quote says when Kalshi was heard: {data}"
        );
    }
}

/// A received frame, already checked against the schema and the strict model.
#[derive(Debug, Clone)]
pub struct Received {
    pub value: Value,
    pub kind: String,
    pub seq: u64,
    pub ts: i64,
    pub received_at: i64,
}

pub enum Event {
    Frame(Received),
    Closed(Option<(u16, String)>),
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub frames: Vec<Received>,
    /// Every stream is checked: data frames step by one, nothing goes backwards.
    pub seq: SeqTracker,
}

pub async fn connect(server: &ServerHandle, path: &str) -> Client {
    let url = format!("{}{path}", server.ws_url());
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url.as_str()),
    )
    .await
    .expect("connect in time")
    .expect("handshake");
    Client::new(ws)
}

impl Client {
    pub fn new(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Client {
            ws,
            frames: Vec::new(),
            seq: SeqTracker::new(),
        }
    }

    /// The next frame or close, checking every frame against the contract.
    #[track_caller]
    pub fn next_event(&mut self) -> impl Future<Output = Event> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            loop {
                let msg = tokio::time::timeout(DEADLINE, self.ws.next())
                    .await
                    .unwrap_or_else(|_| panic!("{caller}: no frame within {DEADLINE:?}"));
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        let received_at = now_micros();
                        let value: Value =
                            serde_json::from_str(text.as_str()).unwrap_or_else(|e| {
                                panic!("{caller}: frame is not JSON ({e}): {text}")
                            });
                        let violations = schema::validate_frame(&value);
                        assert!(
                            violations.is_empty(),
                            "{caller}: frame breaks the schema: {violations:#?}\n{value}"
                        );
                        let strict: Result<StrictFrame, _> = serde_json::from_value(value.clone());
                        assert!(
                            strict.is_ok(),
                            "{caller}: frame has fields the contract does not name: {strict:?}\n{value}"
                        );
                        if let Some(data) = value.get("data") {
                            assert_point_shape(data);
                        }
                        let kind = FrameType::parse(value["type"].as_str().unwrap()).unwrap();
                        let event = self.seq.observe(kind, value["seq"].as_u64().unwrap());
                        assert_eq!(event, SeqEvent::InOrder, "{caller}: seq broken by {value}");
                        let frame = Received {
                            kind: value["type"].as_str().unwrap().to_owned(),
                            seq: value["seq"].as_u64().unwrap(),
                            ts: value["ts"].as_i64().unwrap(),
                            value,
                            received_at,
                        };
                        self.frames.push(frame.clone());
                        return Event::Frame(frame);
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return Event::Closed(
                            frame.map(|f: CloseFrame| (u16::from(f.code), f.reason.to_string())),
                        );
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return Event::Closed(None),
                }
            }
        }
    }

    #[track_caller]
    pub fn next_frame(&mut self) -> impl Future<Output = Received> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            match self.next_event().await {
                Event::Frame(f) => f,
                Event::Closed(c) => {
                    panic!("{caller}: stream closed ({c:?}) while a frame was expected")
                }
            }
        }
    }

    /// Reads frames until one of `kind` arrives.
    #[track_caller]
    pub fn next_of(&mut self, kind: &'static str) -> impl Future<Output = Received> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            loop {
                let f = self.next_frame().await;
                if f.kind == kind {
                    return f;
                }
                let _ = caller;
            }
        }
    }

    /// Reads until the server closes; returns the close code and reason.
    pub async fn closed(&mut self) -> Option<(u16, String)> {
        loop {
            if let Event::Closed(c) = self.next_event().await {
                return c;
            }
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.to_owned().into()))
            .await
            .expect("send");
    }
}

/// Percentile of microsecond samples.
pub fn percentile(samples: &mut [i64], p: f64) -> i64 {
    samples.sort_unstable();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

/// `report merge`'s delivery percentiles are those of every sample in the workers'
/// interval logs together (added up here, by hand), not an average of percentiles.
#[track_caller]
pub fn assert_merged_latencies_exact(merged: &Value, shard_dirs: &[std::path::PathBuf]) {
    use livegames::load::measure::hdrlog;
    use livegames::load::measure::recorder::{Distribution, Quantile, Recorder};
    let mut all = Recorder::new();
    for dir in shard_dirs {
        let log = std::fs::read(dir.join("latency.hlog")).unwrap();
        for interval in hdrlog::read(&log).unwrap() {
            if interval.tag == Distribution::Delivery.name() {
                all.add_histogram(Distribution::Delivery, &interval.histogram);
            }
        }
    }
    let delivery = &merged["latency"]["delivery"];
    for (q, key) in [
        (Quantile::P50, "p50_us"),
        (Quantile::P99, "p99_us"),
        (Quantile::Max, "max_us"),
    ] {
        assert_eq!(
            delivery[key].as_f64(),
            all.quantile(Distribution::Delivery, q),
            "{key}"
        );
    }
    assert_eq!(
        delivery["count"].as_u64(),
        Some(all.latencies.get(Distribution::Delivery).len())
    );
}

/// What a finished command printed, stdout then stderr.
pub fn printed(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
