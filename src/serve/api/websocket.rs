//! One WebSocket client: snapshot (or resume), then live frames in batches, pings
//! answered, junk answered with `error` frames, slow readers closed with 4008, and a
//! 1001 goodbye on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::extract::rejection::PathRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::client_socket::{self, ClientSocket};
use crate::contract::{
    ClientFrame, ErrorBody, ErrorCode, Frame, FrameType, GameId, MAX_CLIENT_FRAME_BYTES,
    UnixMicros, close,
};
use crate::serve::state::AppState;
use crate::serve::stream::hub::{GameChannel, Outgoing};
use crate::serve::stream::inbound::{Admit, InboundLimit};
use crate::serve::stream::resume::ResumeFrom;

/// Most frames written per socket wake-up before one flush: batching is what makes
/// fan-out to thousands of sockets affordable.
const MAX_BATCH: usize = 64;

/// Longest wait for the Close of a client cut off for flooding.
const CUT_OFF_GRACE: Duration = Duration::from_millis(500);

#[derive(Deserialize)]
pub struct WsQuery {
    since: Option<String>,
    /// The epoch `since` belongs to (1.1.0); absent from 1.0.0 clients.
    epoch: Option<String>,
}

/// The connection's upgrade handle, cloned before axum's extractor takes it: a
/// client that agrees permessage-deflate is upgraded here, onto the frame layer.
pub struct UpgradeHandle(Option<hyper::upgrade::OnUpgrade>);

impl<S: Send + Sync> FromRequestParts<S> for UpgradeHandle {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts.extensions.get::<hyper::upgrade::OnUpgrade>().cloned(),
        ))
    }
}

pub async fn upgrade(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
    UpgradeHandle(handle): UpgradeHandle,
    upgrade: WebSocketUpgrade,
) -> Response {
    // An id that does not even decode (invalid UTF-8) still gets the protocol's answer
    // (error frame + 4404) rather than an HTTP 400, so clients handle one failure mode.
    let raw_id = match path {
        Ok(Path(id)) => id,
        Err(_) => uri.path().rsplit('/').next().unwrap_or_default().to_owned(),
    };
    if state.0.shutdown.is_triggered() {
        return refuse(&state, "shutting_down", "the server is shutting down");
    }
    let Ok(permit) = state.0.conns.clone().try_acquire_owned() else {
        return refuse(
            &state,
            "max_conns",
            "connection limit reached (--max-conns); retry later",
        );
    };
    let settings = state.0.ws;
    let hold = state.0.shutdown.hold();
    if let (Some(agreed), Some(handle)) = (
        client_socket::agreed_for(&headers, settings.deflate),
        handle,
    ) {
        // axum's extractor checked the request; the upgrade is ours from here.
        drop(upgrade);
        let (response, socket) = client_socket::upgrade(
            &headers,
            handle,
            agreed,
            settings.read_buffer,
            MAX_CLIENT_FRAME_BYTES,
        );
        state.0.metrics.ws_deflate_connections.inc();
        tokio::spawn(async move {
            if let Some(socket) = socket.await {
                serve_socket(state, socket, raw_id, query).await;
            }
            drop(permit);
            drop(hold);
        });
        return response;
    }
    upgrade
        // Chosen when offered; a client that offers none gets none (RFC 6455 4.2.2).
        .protocols([crate::contract::SUBPROTOCOL])
        .read_buffer_size(settings.read_buffer)
        .write_buffer_size(settings.write_buffer)
        .max_write_buffer_size(settings.write_buffer.max(MAX_CLIENT_FRAME_BYTES) * 4)
        .max_message_size(MAX_CLIENT_FRAME_BYTES)
        .max_frame_size(MAX_CLIENT_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            serve_socket(state, ClientSocket::Plain(socket), raw_id, query).await;
            drop(permit);
            drop(hold);
        })
}

fn refuse(state: &AppState, reason: &str, message: &str) -> Response {
    state
        .0
        .metrics
        .ws_rejected
        .get_or_create(&crate::serve::observe::ReasonLabel {
            reason: reason.into(),
        })
        .inc();
    unavailable(reason, message)
}

/// 503 with a JSON reason and `Retry-After: 1`: the server cannot take a stream now.
pub(super) fn unavailable(reason: &str, message: &str) -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({"error": reason, "message": message})),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Why a connection ended, for logs and metrics.
enum End {
    /// The client went away without a close code (or the TCP connection dropped).
    ClientLeft,
    /// The client closed with this code (answered with the same code).
    ClientClosed(u16),
    /// We closed with this code.
    Closed(u16),
}

struct Connection {
    state: AppState,
    socket: ClientSocket,
    /// What a frame-layer socket had counted when last added to the metrics.
    wire_counted: crate::wire::WireStats,
    channel: Arc<GameChannel>,
    /// The seq of the last data-bearing frame this client was sent.
    last_seq: u64,
    inbound: Option<InboundLimit>,
}

async fn serve_socket(state: AppState, mut socket: ClientSocket, raw_id: String, query: WsQuery) {
    let WsQuery { since, epoch } = query;
    let channel = match GameId::parse(&raw_id) {
        Ok(id) => state.0.hub.get(&id),
        Err(_) => None,
    };
    let Some(channel) = channel else {
        reject_unknown_game(&state, &mut socket, &raw_id).await;
        return;
    };
    let metrics = &state.0.metrics;
    metrics.ws_connections.inc();
    metrics.ws_connections_opened.inc();
    let since_parsed = since.as_deref().map(|s| s.parse::<u64>());
    let resume_from = since_parsed
        .clone()
        .and_then(Result::ok)
        .map(|since| ResumeFrom {
            since,
            epoch: epoch.as_deref(),
        });
    let subscription = channel.subscribe(resume_from);
    let mut conn = Connection {
        state: state.clone(),
        socket,
        wire_counted: Default::default(),
        channel,
        last_seq: subscription.seq,
        inbound: state
            .0
            .ws
            .inbound
            .map(|rate| InboundLimit::new(rate, Instant::now())),
    };
    let mut preamble = subscription.preamble;
    if let (Some(raw), Some(Err(_))) = (&since, since_parsed) {
        let message = format!(
            "since must be a non-negative integer seq, got {:?}; sending a fresh snapshot",
            crate::text::cut(raw, 40)
        );
        preamble.insert(
            0,
            conn.channel
                .client_error(conn.last_seq, ErrorCode::InvalidSince, &message),
        );
    }
    let end = match conn.write_all(preamble).await {
        Ok(()) => conn.live(subscription.rx).await,
        Err(end) => end,
    };
    match end {
        End::Closed(code) => metrics.count_close(code),
        End::ClientClosed(code) => tracing::debug!(code, "the client closed its stream"),
        End::ClientLeft => {}
    }
    metrics.ws_connections.dec();
}

async fn reject_unknown_game(state: &AppState, socket: &mut ClientSocket, raw_id: &str) {
    let shown = crate::text::cut(raw_id, 64);
    let (code, message) = match GameId::parse(raw_id) {
        Ok(_) => (
            ErrorCode::UnknownGame,
            format!("unknown game id {shown:?}; list valid ids with GET /api/live/games"),
        ),
        Err(e) => (
            ErrorCode::InvalidGameId,
            format!("invalid game id {shown:?}: {e}; list valid ids with GET /api/live/games"),
        ),
    };
    let ts = UnixMicros(crate::clock::unix_micros());
    let text = Frame {
        kind: FrameType::Error,
        game_id: &shown,
        seq: 0,
        ts,
        body: ErrorBody {
            code,
            message: &message,
        },
    }
    .encode();
    let grace = state.0.ws.close_grace;
    let goodbye = async {
        socket.send(Message::Text(text.into())).await?;
        socket
            .send(Message::Close(Some(CloseFrame {
                code: close::UNKNOWN_GAME,
                reason: "unknown game".into(),
            })))
            .await
    };
    let _ = tokio::time::timeout(grace, goodbye).await;
    state.0.metrics.count_close(close::UNKNOWN_GAME);
}

impl Connection {
    async fn live(&mut self, mut rx: tokio::sync::broadcast::Receiver<Outgoing>) -> End {
        // Registered once: re-creating it per frame would take the token's lock
        // on every wake-up of every connection.
        let token = self.state.0.shutdown.token().clone();
        let cancelled = token.cancelled();
        tokio::pin!(cancelled);
        let mut batch: Vec<Outgoing> = Vec::with_capacity(8);
        loop {
            tokio::select! {
                // The stream first: a wake-up for a frame then polls nothing else. The
                // shutdown is seen at the next quiet moment (the feeds stop first).
                biased;
                received = rx.recv() => match received {
                    Ok(first) => {
                        batch.clear();
                        batch.push(first);
                        let mut lagged = None;
                        while batch.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(next) => batch.push(next),
                                Err(TryRecvError::Lagged(n)) => { lagged = Some(n); break; }
                                Err(_) => break,
                            }
                        }
                        if let Err(end) = self.write_batch(&batch).await {
                            return end;
                        }
                        if let Some(n) = lagged {
                            return self.slow_consumer(&format!("fell {n} frames behind")).await;
                        }
                    }
                    Err(RecvError::Lagged(n)) => return self.slow_consumer(&format!("fell {n} frames behind")).await,
                    Err(RecvError::Closed) => return self.close(close::GOING_AWAY, "stream ended").await,
                },
                incoming = self.socket.next() => {
                    if let Some(Ok(message)) = &incoming {
                        let verdict = self.admit(message);
                        if verdict != Admit::Yes {
                            if let Err(end) = self.over_the_limit(verdict).await {
                                return end;
                            }
                            continue;
                        }
                    }
                    match incoming {
                    Some(Ok(Message::Text(text))) => {
                        if let Err(end) = self.answer(&text).await {
                            return end;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let frame = self.channel.client_error(self.last_seq, ErrorCode::BinaryNotSupported, "binary frames are not accepted; send JSON text frames");
                        if let Err(end) = self.write_all(vec![frame]).await {
                            return end;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => return self.answer_close(frame).await,
                    None => return End::ClientLeft,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        if is_too_big(e) {
                            return self.close(close::MESSAGE_TOO_BIG, "frame larger than 64 KiB").await;
                        }
                        return End::ClientLeft;
                    }
                    }
                }
                _ = &mut cancelled => {
                    return self.close(close::GOING_AWAY, "server shutting down").await;
                }
            }
        }
    }

    /// Whether the next client frame is within the inbound limit. Every frame counts,
    /// protocol pings included: each costs a read and (for pings) a reply.
    fn admit(&mut self, message: &Message) -> Admit {
        match &mut self.inbound {
            // A Close is the client leaving, never over any limit.
            Some(limit) if !matches!(message, Message::Close(_)) => limit.admit(Instant::now()),
            _ => Admit::Yes,
        }
    }

    /// A frame over the limit is dropped: the first one with a `rate_limited` error,
    /// and a client that goes on is closed with 1008.
    async fn over_the_limit(&mut self, verdict: Admit) -> Result<(), End> {
        let Some(rate) = self.state.0.ws.inbound else {
            return Ok(());
        };
        match verdict {
            Admit::Warn => {
                self.state.0.metrics.ws_rate_limited.inc();
                let message = format!(
                    "more than {} client frames/s (bursts of {}): frames over the limit are dropped, and a client that goes on is closed with 1008",
                    rate.per_second, rate.burst
                );
                let frame =
                    self.channel
                        .client_error(self.last_seq, ErrorCode::RateLimited, &message);
                self.write_all(vec![frame]).await
            }
            Admit::Cut => {
                tracing::info!(game = %self.channel.info.id, "closing a client over the frame rate limit");
                let reason = format!("over {} client frames/s", rate.per_second);
                Err(self.cut_off(close::POLICY_VIOLATION, &reason).await)
            }
            Admit::Yes | Admit::Drop => Ok(()),
        }
    }

    /// Answers a client text frame: a ping gets its pong, anything else an error.
    async fn answer(&mut self, text: &Utf8Bytes) -> Result<(), End> {
        let reply = match serde_json::from_str::<ClientFrame>(text.as_str()) {
            Ok(ClientFrame::Ping { id }) => self.channel.pong(self.last_seq, &id),
            Err(_) => match serde_json::from_str::<serde_json::Value>(text.as_str()) {
                Err(e) => self.channel.client_error(
                    self.last_seq,
                    ErrorCode::InvalidJson,
                    &format!("frame is not JSON ({e}); send {{\"type\":\"ping\",\"id\":N}}"),
                ),
                Ok(v) => {
                    let kind = v
                        .get("type")
                        .map(|t| crate::text::excerpt(t, 40))
                        .unwrap_or_else(|| "nothing".into());
                    self.channel.client_error(self.last_seq, ErrorCode::UnsupportedFrame,
                        &format!("unsupported frame (type {kind}); the only client frame is {{\"type\":\"ping\",\"id\":N}}"),
                    )
                }
            },
        };
        self.write_all(vec![reply]).await
    }

    async fn write_batch(&mut self, batch: &[Outgoing]) -> Result<(), End> {
        let timeout = self.state.0.ws.write_timeout;
        // Live frames at or below the snapshot's seq were already replayed.
        let replayed_up_to = self.last_seq;
        let fresh = |out: &&Outgoing| !(out.kind.is_data_bearing() && out.seq <= replayed_up_to);
        let (mut bytes, mut sent, mut last_seq) = (0u64, 0u64, replayed_up_to);
        let mut wire = 0u64;
        for out in batch.iter().filter(fresh) {
            bytes += out.text.len() as u64;
            wire += client_socket::wire_size(out.text.len());
            sent += 1;
            if out.kind.is_data_bearing() {
                last_seq = out.seq;
            }
        }
        // The last data seq handed to the socket: after a stall it is where a resume
        // must start, since everything handed over is sent before the close frame.
        let handed_over = AtomicU64::new(replayed_up_to);
        let outcome = {
            let socket = &mut self.socket;
            let metrics = &self.state.0.metrics;
            let write = async {
                for out in batch.iter().filter(fresh) {
                    socket.feed_broadcast(out, metrics).await?;
                    if out.kind.is_data_bearing() {
                        handed_over.store(out.seq, Ordering::Relaxed);
                    }
                }
                socket.flush().await
            };
            // Most writes complete at once: arm the timer only for one that does not.
            let mut write = std::pin::pin!(write);
            let first = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
            match first {
                Poll::Ready(result) => Ok(result),
                Poll::Pending => tokio::time::timeout(timeout, write).await,
            }
        };
        match outcome {
            Ok(Ok(())) => {
                self.last_seq = last_seq;
                let metrics = &self.state.0.metrics;
                metrics.ws_frames_sent.inc_by(sent);
                metrics.ws_bytes_sent.inc_by(bytes);
                // A frame-layer socket counts what it wrote; tungstenite's is computed.
                if let Some(stats) = self.socket.wire_stats() {
                    let before = std::mem::replace(&mut self.wire_counted, stats);
                    wire = stats.bytes_written - before.bytes_written;
                    // A compressor of its own (per client): its time is this socket's.
                    let nanos = stats.deflate_nanos - before.deflate_nanos;
                    if nanos > 0 {
                        metrics.ws_deflate_seconds.inc_by(nanos as f64 / 1e9);
                    }
                }
                metrics.ws_wire_bytes_sent.inc_by(wire);
                let now = Instant::now();
                for out in batch {
                    metrics
                        .broadcast_latency
                        .observe(now.duration_since(out.published).as_secs_f64());
                }
                Ok(())
            }
            Ok(Err(_)) => Err(End::ClientLeft),
            Err(_) => {
                self.last_seq = handed_over.load(Ordering::Relaxed);
                Err(self
                    .slow_consumer(&format!("a write took over {timeout:?}"))
                    .await)
            }
        }
    }

    /// Writes frames made for this client alone (replay, snapshot, replies). They are
    /// marked as not data-bearing so the live stream's dedup never skips them.
    async fn write_all(&mut self, frames: Vec<Utf8Bytes>) -> Result<(), End> {
        let now = Instant::now();
        let batch: Vec<Outgoing> = frames
            .into_iter()
            .map(|text| Outgoing {
                seq: 0,
                kind: FrameType::Snapshot,
                text,
                published: now,
                deflated: Default::default(),
            })
            .collect();
        self.write_batch(&batch).await
    }

    async fn slow_consumer(&mut self, why: &str) -> End {
        self.state.0.metrics.slow_consumer_closes.inc();
        tracing::info!(game = %self.channel.info.id, why, last_seq = self.last_seq, "closing slow consumer");
        let reason = format!("slow consumer; resume with ?since={}", self.last_seq);
        self.close(close::SLOW_CONSUMER, &reason).await
    }

    /// The closing handshake (RFC 6455 5.5.1) from our side: our Close, then (briefly)
    /// the client's Close back, so that the client sees a clean close.
    async fn close(&mut self, code: u16, reason: &str) -> End {
        let grace = self.state.0.ws.close_grace;
        self.close_within(code, reason, grace).await
    }

    async fn close_within(&mut self, code: u16, reason: &str, grace: Duration) -> End {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let socket = &mut self.socket;
        let handshake = async {
            socket.send(Message::Close(Some(frame))).await?;
            // Whatever the client still sends before its Close is dropped.
            while let Some(Ok(message)) = socket.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
            Ok::<(), axum::Error>(())
        };
        let _ = tokio::time::timeout(grace, handshake).await;
        End::Closed(code)
    }

    /// Closes a client that is being cut off: the handshake as in [`Self::close`],
    /// but waited for at most half a second, since a flooder's frames are read (and
    /// dropped) while we wait. Dropping the socket at once instead would reset the
    /// connection with our Close still unsent (unread input makes close(2) send RST
    /// and discard the send queue), and the client would never learn why.
    async fn cut_off(&mut self, code: u16, reason: &str) -> End {
        let grace = self.state.0.ws.close_grace.min(CUT_OFF_GRACE);
        self.close_within(code, reason, grace).await
    }

    /// The client started the closing handshake: answer with its code before the
    /// connection ends (tungstenite queued the reply when it read the Close; a flush
    /// sends it).
    async fn answer_close(&mut self, frame: Option<CloseFrame>) -> End {
        let grace = self.state.0.ws.close_grace;
        let _ = tokio::time::timeout(grace, self.socket.flush()).await;
        match frame {
            Some(frame) => End::ClientClosed(frame.code),
            None => End::ClientLeft,
        }
    }
}

/// Whether a read error is tungstenite refusing a frame over the size limit.
fn is_too_big(e: axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    match e.into_inner().downcast::<Error>() {
        Ok(inner) => matches!(*inner, Error::Capacity(_)),
        Err(_) => false,
    }
}
