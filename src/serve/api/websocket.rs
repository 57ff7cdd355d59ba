//! One WebSocket client: snapshot (or resume), then live frames (handed to its socket
//! by the game's writers while nothing is queued for it, by this task otherwise),
//! pings answered, junk answered with `error` frames, slow readers closed with 4008,
//! and a 1001 goodbye on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use super::client_socket::{self, ClientSocket};
use crate::contract::{
    ClientPing, ErrorBody, ErrorCode, Frame, FrameType, GameId, MAX_CLIENT_FRAME_BYTES, UnixMicros,
    close,
};
use crate::serve::error::{ApiError, Params};
use crate::serve::observe::Metrics;
use crate::serve::state::AppState;
use crate::serve::stream::direct::{DeliveryLog, HandBack, Slot};
use crate::serve::stream::hub::GameChannel;
use crate::serve::stream::inbound::{Admit, InboundLimit};
use crate::serve::stream::outgoing::Outgoing;
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

/// The connection's upgrade handle: hyper's, for a request that can be upgraded.
pub struct UpgradeHandle(Option<hyper::upgrade::OnUpgrade>);

impl<S: Send + Sync> FromRequestParts<S> for UpgradeHandle {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.remove::<hyper::upgrade::OnUpgrade>()))
    }
}

pub async fn upgrade(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    method: Method,
    uri: Uri,
    query: Result<Params<WsQuery>, ApiError>,
    headers: HeaderMap,
    UpgradeHandle(handle): UpgradeHandle,
) -> Response {
    let accept = match client_socket::check_request(&method, &headers) {
        Ok(accept) => accept,
        Err(refusal) => return refusal.into_response(),
    };
    let query = match query {
        Ok(Params(query)) => query,
        Err(e) => return e.into_response(),
    };
    // A connection hyper cannot hand over (not HTTP/1.1) cannot become a WebSocket.
    let Some(handle) = handle else {
        return client_socket::Refusal::NotAnUpgrade.into_response();
    };
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
    let agreed = client_socket::agreed_for(&headers, settings.deflate);
    if agreed.is_some() {
        state.0.metrics.ws_deflate_connections.inc();
    }
    let (response, socket) = client_socket::upgrade(
        &headers,
        accept,
        handle,
        agreed,
        settings.read_buffer,
        MAX_CLIENT_FRAME_BYTES,
    );
    tokio::spawn(async move {
        if let Some(socket) = socket.await {
            serve_socket(state, socket, raw_id, query).await;
        }
        drop(permit);
        drop(hold);
    });
    response
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

/// Frames waiting to be written: the stream's (framed once for every client) or
/// this client's own.
enum Pending<'a> {
    /// A frame of the game's stream, then whatever the receiver already holds behind
    /// it: fed to the socket straight from the ring, no batch kept per client.
    Live {
        first: Option<Outgoing>,
        rx: &'a mut Receiver<Outgoing>,
    },
    Own(&'a [Utf8Bytes]),
}

/// What a write that completed sent.
#[derive(Default)]
struct Sent {
    frames: u64,
    bytes: u64,
    /// How many frames the receiver fell behind, seen while draining it.
    lagged: Option<u64>,
}

impl Sent {
    fn add(&mut self, text: &[u8]) {
        self.frames += 1;
        self.bytes += text.len() as u64;
    }
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
    /// What the socket had counted when last added to the metrics.
    wire_counted: crate::wire::WireStats,
    channel: Arc<GameChannel>,
    /// The seq of the last data-bearing frame this client was sent.
    last_seq: u64,
    inbound: Option<InboundLimit>,
    /// The stream's receiver while this task writes the stream; None while the
    /// game's writer has it.
    rx: Option<Receiver<Outgoing>>,
    /// This client's place with the game's writer, if its socket can be lent.
    slot: Option<Arc<Slot>>,
    /// How far behind the receiver fell, found while the writer had it.
    lagged: Option<u64>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Before the socket closes (fields drop after this): the writer must not
        // hold its descriptor past it.
        if let Some(slot) = &self.slot {
            slot.close();
        }
    }
}

/// What the stream brought.
enum Event {
    Frame(Result<Outgoing, RecvError>),
    /// The game's writer gave the stream back.
    HandedBack(HandBack),
}

/// The stream's next frame, or the writer giving it back while it has it.
async fn next_event(rx: &mut Option<Receiver<Outgoing>>, slot: Option<&Slot>) -> Event {
    match (rx, slot) {
        (Some(rx), _) => Event::Frame(rx.recv().await),
        (None, Some(slot)) => Event::HandedBack(slot.handed_back().await),
        (None, None) => std::future::pending().await,
    }
}

impl DeliveryLog for Metrics {
    fn delivered(&self, frames: u64, text_bytes: u64, wire_bytes: u64) {
        self.ws_frames_sent.inc_by(frames);
        self.ws_bytes_sent.inc_by(text_bytes);
        self.ws_wire_bytes_sent.inc_by(wire_bytes);
    }

    fn waited(&self, seconds: f64) {
        self.broadcast_latency.observe(seconds);
    }

    fn handed_back(&self) {
        self.ws_handed_back.inc();
    }
}

async fn serve_socket(state: AppState, mut socket: ClientSocket, raw_id: String, query: WsQuery) {
    let WsQuery { since, epoch } = query;
    let channel = match GameId::parse(&raw_id) {
        Ok(id) => state.0.hub.get(&id),
        Err(_) => None,
    };
    let Some(channel) = channel else {
        // Boxed, as every path a connection takes once: the task stays the size
        // of its live loop, which every idle client holds.
        Box::pin(reject_unknown_game(&state, &mut socket, &raw_id)).await;
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
    let slot = socket.direct_fd().map(|_| {
        let fanout = &channel.fanout;
        let log: Arc<dyn DeliveryLog> = state.0.metrics.clone();
        let window = state.0.ws.batch_window;
        fanout.start_once(window, &log, state.0.shutdown.token(), |writer| {
            state.0.shutdown.spawn(writer);
        });
        fanout.join()
    });
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
        rx: None,
        slot,
        lagged: None,
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
    let end = match Box::pin(conn.write_all(preamble)).await {
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
                code: close::UNKNOWN_GAME.into(),
                reason: "unknown game".into(),
            })))
            .await
    };
    let _ = tokio::time::timeout(grace, goodbye).await;
    state.0.metrics.count_close(close::UNKNOWN_GAME);
}

/// Feeds `pending` to the socket (stream frames straight from the ring, at most
/// [`MAX_BATCH`] a wake-up) and flushes it; what it sent, with the last data seq
/// handed over stored in `handed_over` as it goes (a write that times out must still
/// say how far it got; an atomic only because the task must be Send).
async fn feed_and_flush(
    socket: &mut ClientSocket,
    pending: Pending<'_>,
    handed_over: &AtomicU64,
    metrics: &Metrics,
) -> Result<Sent, tungstenite::Error> {
    let mut sent = Sent::default();
    match pending {
        Pending::Live { first, rx } => {
            let replayed_up_to = handed_over.load(Ordering::Relaxed);
            // One clock read a wake-up (the frames of a batch are handed over
            // together), and again after a hand-over that had to wait for the socket.
            let mut now = Instant::now();
            let mut next = match first {
                Some(first) => Some(first),
                None => take_next(rx, &mut sent),
            };
            let mut taken = 0;
            while let Some(out) = next.take() {
                if !(out.kind.is_data_bearing() && out.seq <= replayed_up_to) {
                    let waits = socket.is_full();
                    socket.feed_broadcast(&out, metrics).await?;
                    if waits {
                        now = Instant::now();
                    }
                    let waited = now.saturating_duration_since(out.published);
                    metrics.broadcast_latency.observe(waited.as_secs_f64());
                    sent.add(out.text().as_bytes());
                    if out.kind.is_data_bearing() {
                        handed_over.store(out.seq, Ordering::Relaxed);
                    }
                }
                taken += 1;
                if taken < MAX_BATCH {
                    next = take_next(rx, &mut sent);
                }
            }
        }
        Pending::Own(frames) => {
            for text in frames {
                socket.feed_text(text.as_bytes()).await?;
                sent.add(text.as_bytes());
            }
        }
    }
    socket.flush().await?;
    Ok(sent)
}

/// The receiver's next frame if one waits; a lag found is noted in `sent`.
fn take_next(rx: &mut Receiver<Outgoing>, sent: &mut Sent) -> Option<Outgoing> {
    match rx.try_recv() {
        Ok(out) => Some(out),
        Err(TryRecvError::Lagged(n)) => {
            sent.lagged = Some(n);
            None
        }
        Err(_) => None,
    }
}

impl Connection {
    /// The live stream until the connection ends. Every way out, and every answer
    /// to a client frame, runs boxed: this loop's state is what an idle client holds.
    async fn live(&mut self, rx: Receiver<Outgoing>) -> End {
        self.rx = Some(rx);
        // Registered once: re-creating it per frame would take the token's lock
        // on every wake-up of every connection.
        let token = self.state.0.shutdown.token().clone();
        let cancelled = token.cancelled();
        tokio::pin!(cancelled);
        loop {
            if let Some(n) = self.lagged.take() {
                return Box::pin(self.slow_consumer(&format!("fell {n} frames behind"))).await;
            }
            self.lend_to_writer();
            tokio::select! {
                // The stream first: a wake-up for a frame then polls nothing else. The
                // shutdown is seen at the next quiet moment (the feeds stop first).
                biased;
                event = next_event(&mut self.rx, self.slot.as_deref()) => {
                    let first = match event {
                        Event::Frame(Ok(first)) => Some(first),
                        Event::Frame(Err(RecvError::Lagged(n))) => return Box::pin(self.slow_consumer(&format!("fell {n} frames behind"))).await,
                        Event::Frame(Err(RecvError::Closed)) => return Box::pin(self.close(close::GOING_AWAY, "stream ended")).await,
                        Event::HandedBack(back) => {
                            self.resume_from(back);
                            if self.lagged.is_some() {
                                // What the writer took before the gap goes out, nothing
                                // after it: the close says to resume from there.
                                if let Err(end) = Box::pin(self.write_all(Vec::new())).await {
                                    return end;
                                }
                                continue;
                            }
                            None
                        }
                    };
                    match self.write_live(first).await {
                        Ok(None) => {}
                        Ok(Some(n)) => self.lagged = Some(n),
                        Err(end) => return end,
                    }
                },
                incoming = self.socket.next() => {
                    // Every answer carries the seq the client was sent last, and goes
                    // out after it: take the socket (and that seq) back first.
                    self.reclaim();
                    if let Some(Ok(message)) = &incoming {
                        let verdict = self.admit(message);
                        if verdict != Admit::Yes {
                            if let Err(end) = Box::pin(self.over_the_limit(verdict)).await {
                                return end;
                            }
                            continue;
                        }
                    }
                    match incoming {
                    Some(Ok(Message::Text(text))) => {
                        if let Err(end) = Box::pin(self.answer(&text)).await {
                            return end;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let frame = self.channel.client_error(self.last_seq, ErrorCode::BinaryNotSupported, "binary frames are not accepted; send JSON text frames");
                        if let Err(end) = Box::pin(self.write_all(vec![frame])).await {
                            return end;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => return Box::pin(self.answer_close(frame)).await,
                    None => return End::ClientLeft,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Box::pin(self.protocol_error(&e)).await,
                    }
                }
                _ = &mut cancelled => {
                    return Box::pin(self.close(close::GOING_AWAY, "server shutting down")).await;
                }
            }
        }
    }

    /// Lends the socket to the game's writer when this task has nothing left to
    /// write: from then on a frame costs the writer one write and this task nothing.
    fn lend_to_writer(&mut self) {
        let (Some(slot), Some(fd)) = (&self.slot, self.socket.direct_fd()) else {
            return;
        };
        if self.socket.output_lent() || !self.socket.is_drained() {
            return;
        }
        let Some(rx) = self.rx.take() else {
            return;
        };
        // The socket stays open until `slot.close()` in `Drop`.
        match slot.hand_over(rx, fd, self.last_seq, &self.channel.fanout) {
            Ok(()) => self.socket.lend_output(),
            Err(rx) => self.rx = Some(rx),
        }
    }

    /// Takes the socket back from the game's writer before this task writes.
    fn reclaim(&mut self) {
        if !self.socket.output_lent() {
            return;
        }
        match self.slot.as_ref().and_then(|slot| slot.take_back()) {
            Some(back) => self.resume_from(back),
            None => self.socket.reclaim_output(Vec::new()),
        }
    }

    /// The stream as the writer gave it back: its receiver, how far it got, and the
    /// bytes the socket did not take, queued first.
    fn resume_from(&mut self, back: HandBack) {
        self.rx = Some(back.rx);
        self.last_seq = self.last_seq.max(back.last_seq);
        if back.lagged.is_some() {
            self.lagged = back.lagged;
        }
        self.socket.reclaim_output(back.unsent);
    }

    /// Writes the stream's frames from `first` (or whatever waits) on. Some(n) when
    /// the receiver turned out n frames behind.
    async fn write_live(&mut self, first: Option<Outgoing>) -> Result<Option<u64>, End> {
        let Some(mut rx) = self.rx.take() else {
            return Ok(None);
        };
        let written = self.write_timed(Pending::Live { first, rx: &mut rx }).await;
        self.rx = Some(rx);
        written
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
        let reply = match ClientPing::parse(text.as_str()) {
            Some(ping) => self.channel.pong(self.last_seq, ping.id),
            None => match serde_json::from_str::<serde_json::Value>(text.as_str()) {
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

    /// Writes frames made for this client alone (replay, snapshot, replies).
    async fn write_all(&mut self, frames: Vec<Utf8Bytes>) -> Result<(), End> {
        self.write_timed(Pending::Own(&frames)).await.map(|_| ())
    }

    /// Hands `pending` to the socket and flushes it, within the write timeout; a
    /// client that does not take it in time is closed as a slow consumer. Stream
    /// frames this client already had in its snapshot or replay are skipped. Some(n)
    /// when draining the ring found the client n frames behind.
    async fn write_timed(&mut self, pending: Pending<'_>) -> Result<Option<u64>, End> {
        self.reclaim();
        let timeout = self.state.0.ws.write_timeout;
        let handed_over = AtomicU64::new(self.last_seq);
        let outcome = {
            let write = feed_and_flush(
                &mut self.socket,
                pending,
                &handed_over,
                &self.state.0.metrics,
            );
            // Most writes complete at once: arm the timer only for one that does not.
            let mut write = std::pin::pin!(write);
            let first = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
            match first {
                Poll::Ready(result) => Ok(result),
                Poll::Pending => tokio::time::timeout(timeout, write).await,
            }
        };
        // After a stall too, everything handed over goes out before the close frame,
        // so a resume starts after it.
        self.last_seq = handed_over.load(Ordering::Relaxed);
        match outcome {
            Ok(Ok(sent)) => {
                self.count_sent(&sent);
                Ok(sent.lagged)
            }
            Ok(Err(_)) => Err(End::ClientLeft),
            Err(_) => {
                let why = format!("a write took over {timeout:?}");
                Err(Box::pin(self.slow_consumer(&why)).await)
            }
        }
    }

    /// Adds what was just written to the metrics: frames and their bytes as sent,
    /// and what the socket wrote on the wire (headers, compression) since last time.
    fn count_sent(&mut self, sent: &Sent) {
        let metrics = &self.state.0.metrics;
        metrics.ws_frames_sent.inc_by(sent.frames);
        metrics.ws_bytes_sent.inc_by(sent.bytes);
        let stats = self.socket.wire_stats();
        let before = std::mem::replace(&mut self.wire_counted, stats);
        metrics
            .ws_wire_bytes_sent
            .inc_by(stats.bytes_written - before.bytes_written);
        // A compressor of its own (per client): its time is this socket's.
        let nanos = stats.deflate_nanos - before.deflate_nanos;
        if nanos > 0 {
            metrics.ws_deflate_seconds.inc_by(nanos as f64 / 1e9);
        }
    }

    /// A client that broke the protocol gets the close code RFC 6455 names for what
    /// it did (1002, 1007, 1009); one whose connection failed is gone.
    async fn protocol_error(&mut self, error: &tokio_tungstenite::tungstenite::Error) -> End {
        let Some(code) = crate::wire::close_code_for(error) else {
            return End::ClientLeft;
        };
        let code = u16::from(code);
        tracing::debug!(game = %self.channel.info.id, code, %error, "closing a client that broke the protocol");
        let reason = match code {
            close::MESSAGE_TOO_BIG => "frame larger than 64 KiB".to_owned(),
            _ => crate::text::cut(&error.to_string(), 100).to_string(),
        };
        self.close(code, &reason).await
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
        self.reclaim();
        let frame = CloseFrame {
            code: code.into(),
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
            Ok::<(), tokio_tungstenite::tungstenite::Error>(())
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
    /// connection ends (the socket queued the reply when it read the Close; a flush
    /// sends it).
    async fn answer_close(&mut self, frame: Option<CloseFrame>) -> End {
        self.reclaim();
        let grace = self.state.0.ws.close_grace;
        let _ = tokio::time::timeout(grace, self.socket.flush()).await;
        match frame {
            Some(frame) => End::ClientClosed(frame.code.into()),
            None => End::ClientLeft,
        }
    }
}
