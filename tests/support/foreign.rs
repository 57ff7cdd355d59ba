//! Servers that are not ours. Each wants something of its clients (a bearer token, a
//! subprotocol, TLS with a private CA) or talks its own way (its own field names and
//! pong, restarts that lose frames, silence, oversized messages, control bytes).
//! `load`, `smoke` and `contract record` must get through to them, or say exactly why
//! not. No code is shared with `serve`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use futures_util::StreamExt;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::now_micros;

/// The one game these servers list.
pub const GAME: &str = "g1";
/// Frames per second on the stream.
const TICK: Duration = Duration::from_millis(20);

/// What the stream sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Our contract's shape: a snapshot, then an update every tick.
    Contract,
    /// Its own protocol: nothing until `{"op":"subscribe","game":"g1",...}`, then
    /// `{"kind":"tick","n":N,"t":<Unix ms>}` every tick; `{"op":"ping","ref":K}` is
    /// answered with `{"op":"pong","ref":K,"t":<Unix ms>}`.
    Subscribed,
    /// Accepts, then never says anything (protocol pings are answered).
    Silent,
    /// Accepts, then neither reads nor writes: no frame, and no pong either.
    Deaf,
    /// Contract frames from seq 100; after `RESTART_AFTER` it "restarts": every
    /// connection is closed (1012), and new ones get a snapshot at seq 0, then 1..9,
    /// then 20 onwards: seqs 10..19 of the new run are lost.
    RestartWithLoss,
    /// One text message of `HUGE_MESSAGE` bytes, sent in 64 KiB fragments.
    HugeMessage,
    /// Frames whose text holds terminal escape sequences.
    ControlBytes,
    /// Frames as fast as the socket takes them; pings are never answered.
    Flood,
    /// Closes every stream at once (1011).
    CloseAtOnce,
}

/// When a `RestartWithLoss` server restarts.
pub const RESTART_AFTER: Duration = Duration::from_millis(800);
/// The size of a `HugeMessage`.
pub const HUGE_MESSAGE: usize = 60 << 20;

/// What the server wants of its clients, and how it streams.
#[derive(Clone)]
pub struct Foreign {
    /// Every route wants `Authorization: Bearer <token>` (401 otherwise).
    pub token: Option<&'static str>,
    /// The upgrade wants this subprotocol offered (400 otherwise), and picks it.
    pub subprotocol: Option<&'static str>,
    /// Serve TLS with this config.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    pub stream: Stream,
    /// `/api/live/games` answers a 1 GiB body.
    pub huge_games_list: bool,
}

impl Default for Foreign {
    fn default() -> Self {
        Self {
            token: None,
            subprotocol: None,
            tls: None,
            stream: Stream::Contract,
            huge_games_list: false,
        }
    }
}

type St = Arc<Shared>;

struct Shared {
    foreign: Foreign,
    started: std::time::Instant,
}

impl std::ops::Deref for Shared {
    type Target = Foreign;
    fn deref(&self) -> &Foreign {
        &self.foreign
    }
}

/// Starts the server on 127.0.0.1; it runs until the test's runtime ends.
pub async fn start(foreign: Foreign) -> SocketAddr {
    let tls = foreign.tls.clone();
    let app = Router::new()
        .route("/health", get(health))
        .route("/api/live/games", get(games))
        .route("/ws/live/{id}", get(upgrade))
        .with_state(Arc::new(Shared {
            foreign,
            started: std::time::Instant::now(),
        }));
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    match tls {
        None => {
            // No Nagle: small frames go out at once, as on any real feed.
            let tcp = tcp.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            tokio::spawn(async move { axum::serve(tcp, app).await });
        }
        Some(config) => {
            let listener = TlsListener {
                tcp,
                acceptor: TlsAcceptor::from(config),
            };
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
    }
    addr
}

fn authorized(state: &St, headers: &HeaderMap) -> bool {
    let Some(token) = state.token else {
        return true;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {token}"))
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, "missing or wrong bearer token").into_response()
}

async fn health(State(state): State<St>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    Json(json!({"status": "healthy", "uptime_s": 1.0, "connections": 0, "sources": {}}))
        .into_response()
}

async fn games(State(state): State<St>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    if state.huge_games_list {
        return huge_body().await;
    }
    Json(json!({"games": [{"id": GAME, "latest": {"state": "live"}}]})).into_response()
}

async fn upgrade(
    State(state): State<St>,
    UrlPath(_id): UrlPath<String>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    let upgrade = match state.subprotocol {
        None => upgrade,
        Some(wanted) => {
            let offered = headers
                .get(header::SEC_WEBSOCKET_PROTOCOL)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !offered.split(',').any(|p| p.trim() == wanted) {
                return (
                    StatusCode::BAD_REQUEST,
                    "this server speaks only its subprotocol",
                )
                    .into_response();
            }
            upgrade.protocols([wanted])
        }
    };
    let stream = state.stream;
    let restarted = state.started.elapsed() >= RESTART_AFTER;
    upgrade.on_upgrade(move |socket| serve_stream(socket, stream, state, restarted))
}

async fn serve_stream(mut socket: WebSocket, stream: Stream, state: St, restarted: bool) {
    match stream {
        Stream::Contract => contract_stream(&mut socket).await,
        Stream::Subscribed => subscribed_stream(&mut socket).await,
        Stream::Silent => while let Some(Ok(_)) = socket.recv().await {},
        // Holds the socket open, unread, until the test's runtime ends.
        Stream::Deaf => std::future::pending::<()>().await,
        Stream::RestartWithLoss => restarting_stream(&mut socket, &state, restarted).await,
        Stream::HugeMessage => unreachable!("served raw, see start_raw"),
        Stream::Flood => {
            let frame = json!({"type": "update", "game_id": GAME, "seq": 1, "ts": now_micros(), "data": {}}).to_string();
            while socket.send(Message::text(frame.clone())).await.is_ok() {}
        }
        Stream::CloseAtOnce => {
            let close = axum::extract::ws::CloseFrame {
                code: 1011,
                reason: "going away at once".into(),
            };
            let _ = socket.send(Message::Close(Some(close))).await;
        }
        Stream::ControlBytes => {
            let text = "{\"type\":\"\u{1b}[2J\u{1b}]0;owned\u{7}\",\"seq\":1,\"ts\":1}";
            let _ = socket.send(Message::text(text)).await;
            while let Some(Ok(_)) = socket.recv().await {}
        }
    }
}

fn unix_ms() -> i64 {
    now_micros() / 1000
}

async fn subscribed_stream(socket: &mut WebSocket) {
    // Nothing until the subscribe message.
    loop {
        match socket.recv().await {
            Some(Ok(Message::Text(t))) => {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                if v["op"] == "subscribe" && v["game"] == GAME {
                    break;
                }
            }
            Some(Ok(_)) => {}
            _ => return,
        }
    }
    let mut n = 0u64;
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                n += 1;
                let frame = json!({"kind": "tick", "n": n, "t": unix_ms(), "price": 0.5});
                if socket.send(Message::text(frame.to_string())).await.is_err() {
                    return;
                }
            }
            message = socket.recv() => match message {
                Some(Ok(Message::Text(t))) => {
                    let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                    if v["op"] == "ping" {
                        let pong = json!({"op": "pong", "ref": v["ref"], "t": unix_ms()});
                        if socket.send(Message::text(pong.to_string())).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}

async fn restarting_stream(socket: &mut WebSocket, state: &St, restarted: bool) {
    let mut seq = if restarted { 0 } else { 100 };
    let snapshot = json!({"type": "snapshot", "game_id": GAME, "seq": seq, "ts": now_micros(), "game": {}, "data": {}});
    if socket
        .send(Message::text(snapshot.to_string()))
        .await
        .is_err()
    {
        return;
    }
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        if !restarted && state.started.elapsed() >= RESTART_AFTER {
            let close = axum::extract::ws::CloseFrame {
                code: 1012,
                reason: "restarting".into(),
            };
            let _ = socket.send(Message::Close(Some(close))).await;
            return;
        }
        seq += 1;
        if restarted && (10..20).contains(&seq) {
            continue;
        }
        let update =
            json!({"type": "update", "game_id": GAME, "seq": seq, "ts": now_micros(), "data": {}});
        if socket
            .send(Message::text(update.to_string()))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// A 1 GiB body, streamed (the server never holds it).
async fn huge_body() -> Response {
    let chunk = bytes::Bytes::from(vec![b' '; 64 << 10]);
    let chunks = futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()))
        .take((1 << 30) / (64 << 10));
    axum::body::Body::from_stream(chunks).into_response()
}

/// A WebSocket server that sends one `HUGE_MESSAGE`-byte text message in 64 KiB
/// fragments, written straight to the socket from one small buffer.
pub async fn start_huge_messages() -> SocketAddr {
    use tokio::io::AsyncWriteExt;
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = tcp.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let raw = ws.get_mut();
                let payload = vec![b'a'; 64 << 10];
                let fragments = HUGE_MESSAGE / payload.len();
                for i in 0..fragments {
                    let opcode = if i == 0 { 0x1 } else { 0x0 };
                    let fin = if i + 1 == fragments { 0x80 } else { 0x00 };
                    let mut header = vec![fin | opcode, 127];
                    header.extend_from_slice(&(payload.len() as u64).to_be_bytes());
                    if raw.write_all(&header).await.is_err()
                        || raw.write_all(&payload).await.is_err()
                    {
                        return;
                    }
                }
                let _ = raw.flush().await;
            });
        }
    });
    addr
}

async fn contract_stream(socket: &mut WebSocket) {
    let mut seq = 100u64;
    let snapshot = json!({"type": "snapshot", "game_id": GAME, "seq": seq, "ts": now_micros(), "game": {}, "data": {}});
    if socket
        .send(Message::text(snapshot.to_string()))
        .await
        .is_err()
    {
        return;
    }
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        seq += 1;
        let update = json!({"type": "update", "game_id": GAME, "seq": seq, "ts": now_micros(), "data": {"observed_at": now_micros()}});
        if socket
            .send(Message::text(update.to_string()))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// TLS over TCP for axum: each accepted connection's handshake, then HTTP.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            // A client that refuses our certificate just goes away.
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A private CA and a server certificate it signed, made with the `openssl` command
/// at test time. The certificate names only `localhost` (not 127.0.0.1).
pub struct TestPki {
    pub dir: PathBuf,
    pub ca_pem: PathBuf,
    pub server: Arc<tokio_rustls::rustls::ServerConfig>,
}

impl TestPki {
    pub fn new(name: &str) -> TestPki {
        let dir = std::env::temp_dir().join(format!("lg-pki-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &dir,
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=livegames test CA",
                ],
            ]
            .concat(),
        );
        openssl(
            &dir,
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
        );
        std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost\n").unwrap();
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        );
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(dir.join("server.pem"))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let server = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        TestPki {
            ca_pem: dir.join("ca.pem"),
            dir,
            server: Arc::new(server),
        }
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command (Debian's openssl package; .ci/run installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
