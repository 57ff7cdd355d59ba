//! A client's WebSocket as the stream session sees it. The upgrade request is
//! checked and answered here (RFC 6455 4.2), and every connection then runs on the
//! frame layer, so a broadcast framed once per game goes to each client as the same
//! bytes, written with whatever else is queued in one vectored write.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::{self, Message, handshake::derive_accept_key};

use crate::serve::listen::{ServedIo, Watched};
use crate::serve::observe::Metrics;
use crate::serve::stream::outgoing::Outgoing;
use crate::wire::{Agreed, Role, ServerMode, WireSocket, WireStats, deflate};

/// An upgraded connection: the accept loop's own socket taken back from hyper, or
/// (for a connection served some other way) hyper's upgraded stream.
pub(super) enum ClientIo {
    Direct(Watched),
    Upgraded(TokioIo<hyper::upgrade::Upgraded>),
}

impl ClientIo {
    /// The connection and any bytes the client sent after its request head.
    fn from_upgraded(upgraded: hyper::upgrade::Upgraded) -> (Self, Bytes) {
        match upgraded.downcast::<ServedIo>() {
            Ok(parts) => (ClientIo::Direct(parts.io.into_inner()), parts.read_buf),
            Err(upgraded) => {
                // serve's accept loop hands hyper a ServedIo; only a router served
                // some other way gets here.
                debug_assert!(false, "an upgraded connection that is not a ServedIo");
                (ClientIo::Upgraded(TokioIo::new(upgraded)), Bytes::new())
            }
        }
    }
}

impl AsyncRead for ClientIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientIo::Direct(io) => Pin::new(io).poll_read(cx, buf),
            ClientIo::Upgraded(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientIo::Direct(io) => Pin::new(io).poll_write(cx, data),
            ClientIo::Upgraded(io) => Pin::new(io).poll_write(cx, data),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientIo::Direct(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            ClientIo::Upgraded(io) => Pin::new(io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ClientIo::Direct(io) => io.is_write_vectored(),
            ClientIo::Upgraded(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientIo::Direct(io) => Pin::new(io).poll_flush(cx),
            ClientIo::Upgraded(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientIo::Direct(io) => Pin::new(io).poll_shutdown(cx),
            ClientIo::Upgraded(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}

/// A client's socket once the connection is upgraded. Boxed: the connection's task
/// moves it from the upgrade into the stream session, and an async fn keeps a slot
/// for each place a value lived, so a socket held inline would be paid for twice
/// in every idle client's task.
pub(super) struct ClientSocket(Box<WireSocket<ClientIo>>);

impl ClientSocket {
    pub async fn next(&mut self) -> Option<Result<Message, tungstenite::Error>> {
        self.0.next().await
    }

    pub async fn send(&mut self, message: Message) -> Result<(), tungstenite::Error> {
        self.0.send(message).await
    }

    pub async fn flush(&mut self) -> Result<(), tungstenite::Error> {
        self.0.flush().await
    }

    /// Queues a frame made for this client alone (a reply, a replayed frame).
    pub async fn feed_text(&mut self, text: &[u8]) -> Result<(), tungstenite::Error> {
        self.ready().await?;
        self.0.feed_text(text);
        Ok(())
    }

    /// Queues a frame of the game's stream: the bytes framed once for every client,
    /// or the compressed copy every client without context shares (made by the first
    /// that needs it, its time counted once).
    pub async fn feed_broadcast(
        &mut self,
        out: &Outgoing,
        metrics: &Metrics,
    ) -> Result<(), tungstenite::Error> {
        self.ready().await?;
        self.0
            .feed_shared(&out.frame, |text| compress_shared(text, metrics));
        Ok(())
    }

    /// Waits while the socket holds more unsent output than it should.
    async fn ready(&mut self) -> Result<(), tungstenite::Error> {
        std::future::poll_fn(|cx| self.0.poll_ready_unpin(cx)).await
    }

    /// The descriptor a game's writer may write this client's stream to: a socket
    /// of our own accept loop that sends every broadcast as framed for all (no
    /// compression agreed).
    pub fn direct_fd(&self) -> Option<std::os::fd::RawFd> {
        match self.0.get_ref() {
            ClientIo::Direct(io) if self.0.agreed().is_none() => Some(io.raw_fd()),
            _ => None,
        }
    }

    /// Whether nothing waits to be written.
    pub fn is_drained(&self) -> bool {
        !self.0.has_output()
    }

    /// Lends the sending side to the game's writer (see [`WireSocket::hold_output`]).
    pub fn lend_output(&mut self) {
        self.0.hold_output();
    }

    /// Whether the sending side is lent to the game's writer.
    pub fn output_lent(&self) -> bool {
        self.0.output_held()
    }

    /// Takes the sending side back, `unsent` to be written first.
    pub fn reclaim_output(&mut self, unsent: Vec<Bytes>) {
        self.0.resume_output(unsent);
    }

    /// Whether the next frame fed will wait for the socket to take what is queued.
    pub fn is_full(&self) -> bool {
        self.0.over_high_water()
    }

    /// What was written on the wire so far.
    pub fn wire_stats(&self) -> WireStats {
        self.0.stats()
    }
}

/// A frame compressed on its own, or None when that does not make it shorter.
fn compress_shared(text: &[u8], metrics: &Metrics) -> Option<Bytes> {
    let started = Instant::now();
    let mut compressed = Vec::with_capacity(text.len() / 2 + 16);
    deflate::compress_one(text, &mut compressed);
    metrics
        .ws_deflate_seconds
        .inc_by(started.elapsed().as_secs_f64());
    (compressed.len() < text.len()).then(|| compressed.into())
}

/// The extension this server agrees with a request's offers, if any.
pub(super) fn agreed_for(headers: &HeaderMap, mode: ServerMode) -> Option<Agreed> {
    let offers = headers
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok());
    deflate::accept(offers, mode)
}

/// Why a request is not a WebSocket opening handshake this server takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// 405: another method than GET.
    NotGet,
    /// 426: no `Connection: Upgrade` and `Upgrade: websocket`.
    NotAnUpgrade,
    /// 426: a `Sec-WebSocket-Version` other than 13 (or several).
    Version,
    /// 400: no key, several, or one that is not 16 bytes in base64.
    Key,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NotGet => {
                let mut response = refusal(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "a WebSocket opening handshake is a GET",
                );
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET"));
                response
            }
            Refusal::NotAnUpgrade => upgrade_required(
                "upgrade_required",
                "this is a WebSocket endpoint: send Connection: Upgrade and Upgrade: websocket",
            ),
            Refusal::Version => {
                upgrade_required("unsupported_version", "Sec-WebSocket-Version must be 13")
            }
            Refusal::Key => refusal(
                StatusCode::BAD_REQUEST,
                "bad_websocket_key",
                "Sec-WebSocket-Key must be one header: 16 random bytes in base64",
            ),
        }
    }
}

/// The `Sec-WebSocket-Accept` for a request that is a WebSocket opening handshake
/// (RFC 6455 4.2.1), or why it is not.
pub(super) fn check_request(method: &Method, headers: &HeaderMap) -> Result<String, Refusal> {
    if method != Method::GET {
        return Err(Refusal::NotGet);
    }
    if !has_token(headers, header::UPGRADE, "websocket")
        || !has_token(headers, header::CONNECTION, "upgrade")
    {
        return Err(Refusal::NotAnUpgrade);
    }
    let versions: Vec<&[u8]> = headers
        .get_all(header::SEC_WEBSOCKET_VERSION)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if versions != [b"13"] {
        return Err(Refusal::Version);
    }
    let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    match (keys.next(), keys.next()) {
        (Some(key), None) if is_valid_key(key.as_bytes()) => Ok(derive_accept_key(key.as_bytes())),
        _ => Err(Refusal::Key),
    }
}

/// A key is 16 bytes in base64 (RFC 6455 4.1): 24 characters, padding included.
fn is_valid_key(key: &[u8]) -> bool {
    let engine = base64::engine::general_purpose::STANDARD;
    key.len() == 24 && engine.decode(key).is_ok_and(|bytes| bytes.len() == 16)
}

/// Whether a comma-separated header names `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// 426 naming the protocol and version this endpoint speaks (RFC 9110 15.5.22).
fn upgrade_required(reason: &str, message: &str) -> Response {
    let mut response = refusal(StatusCode::UPGRADE_REQUIRED, reason, message);
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
    response
}

/// The server's JSON error body with `status`.
fn refusal(status: StatusCode, reason: &str, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": reason, "message": message})),
    )
        .into_response()
}

/// The 101 answer for a checked request, and the socket once the connection is
/// handed over: with permessage-deflate when `agreed`, the contract's subprotocol
/// when offered (a client that offers none gets none, RFC 6455 4.2.2).
pub(super) fn upgrade(
    headers: &HeaderMap,
    accept: String,
    on_upgrade: hyper::upgrade::OnUpgrade,
    agreed: Option<Agreed>,
    read_buffer: usize,
    max_message: usize,
) -> (
    Response,
    impl Future<Output = Option<ClientSocket>> + Send + 'static,
) {
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if offers_our_subprotocol(headers) {
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(crate::contract::SUBPROTOCOL),
        );
    }
    if let Some(value) = agreed.and_then(|a| HeaderValue::from_str(&a.header()).ok()) {
        h.insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
    }
    let socket = async move {
        let (io, already_read) = ClientIo::from_upgraded(on_upgrade.await.ok()?);
        Some(ClientSocket(Box::new(WireSocket::new(
            io,
            Role::Server,
            agreed,
            &already_read,
            read_buffer,
            max_message,
        ))))
    };
    (response, socket)
}

/// Whether the client offered the contract's subprotocol.
fn offers_our_subprotocol(headers: &HeaderMap) -> bool {
    has_token(
        headers,
        header::SEC_WEBSOCKET_PROTOCOL,
        crate::contract::SUBPROTOCOL,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    const GOOD: [(&str, &str); 4] = [
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "WebSocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    fn status_of(pairs: &[(&str, &str)]) -> Result<String, StatusCode> {
        check_request(&Method::GET, &request(pairs)).map_err(|r| r.into_response().status())
    }

    #[test]
    fn the_rfc_example_key_is_accepted() {
        // RFC 6455 1.3.
        assert_eq!(status_of(&GOOD).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn keys_that_are_not_16_bytes_of_base64_are_refused() {
        for key in [
            "",
            "not base64 at all!!!!!!!",
            "AAAAAAAAAAAAAAAAAAAA",         // 15 bytes
            "AAAAAAAAAAAAAAAAAAAAAAAAAA==", // 19 bytes
            "dGhlIHNhbXBsZSBub25jZQ",       // unpadded
        ] {
            let mut pairs = GOOD.to_vec();
            pairs[3].1 = key;
            assert_eq!(status_of(&pairs), Err(StatusCode::BAD_REQUEST), "{key:?}");
        }
        let mut twice = GOOD.to_vec();
        twice.push(GOOD[3]);
        assert_eq!(status_of(&twice), Err(StatusCode::BAD_REQUEST));
        assert_eq!(status_of(&GOOD[..3]), Err(StatusCode::BAD_REQUEST));
    }

    #[test]
    fn requests_that_do_not_ask_for_websocket_13_get_426() {
        for (drop, replace) in [
            (0, ("connection", "keep-alive")),
            (1, ("upgrade", "h2c")),
            (2, ("sec-websocket-version", "8")),
        ] {
            let mut pairs = GOOD.to_vec();
            pairs[drop] = replace;
            let refused = check_request(&Method::GET, &request(&pairs))
                .unwrap_err()
                .into_response();
            assert_eq!(
                refused.status(),
                StatusCode::UPGRADE_REQUIRED,
                "{replace:?}"
            );
            assert_eq!(refused.headers()["sec-websocket-version"], "13");
            assert_eq!(refused.headers()["upgrade"], "websocket");
        }
        let refused = check_request(&Method::POST, &request(&GOOD))
            .unwrap_err()
            .into_response();
        assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
