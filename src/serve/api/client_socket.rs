//! A client's WebSocket as the stream session sees it: axum's (tungstenite), or, for
//! a client that agreed permessage-deflate, one on the frame layer. Both read and
//! write axum's `Message`; broadcast frames go through [`ClientSocket::feed_broadcast`]
//! so a frame compressed on its own is compressed once for every client.

use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::{self, handshake::derive_accept_key};

use crate::serve::observe::Metrics;
use crate::serve::stream::hub::Outgoing;
use crate::wire::{Agreed, Role, ServerMode, WireSocket, WireStats, deflate, frame};

type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

pub(super) enum ClientSocket {
    Plain(WebSocket),
    Deflate(WireSocket<Upgraded>),
}

/// What this module's errors carry: axum's, as the session expects.
fn error(e: tungstenite::Error) -> axum::Error {
    axum::Error::new(e)
}

impl ClientSocket {
    pub async fn next(&mut self) -> Option<Result<Message, axum::Error>> {
        match self {
            ClientSocket::Plain(socket) => socket.next().await,
            ClientSocket::Deflate(socket) => {
                let message = socket.next().await?;
                Some(message.map_err(error).and_then(from_tungstenite))
            }
        }
    }

    pub async fn feed(&mut self, message: Message) -> Result<(), axum::Error> {
        match self {
            ClientSocket::Plain(socket) => socket.feed(message).await,
            ClientSocket::Deflate(socket) => {
                socket.feed(into_tungstenite(message)?).await.map_err(error)
            }
        }
    }

    pub async fn send(&mut self, message: Message) -> Result<(), axum::Error> {
        self.feed(message).await?;
        self.flush().await
    }

    pub async fn flush(&mut self) -> Result<(), axum::Error> {
        match self {
            ClientSocket::Plain(socket) => socket.flush().await,
            ClientSocket::Deflate(socket) => socket.flush().await.map_err(error),
        }
    }

    /// Queues a frame of the game's stream. On a socket that compresses each frame
    /// on its own, the compressed copy is the one every such client shares (made by
    /// the first that needs it, its time counted once).
    pub async fn feed_broadcast(
        &mut self,
        out: &Outgoing,
        metrics: &Metrics,
    ) -> Result<(), axum::Error> {
        let shared = match self {
            ClientSocket::Deflate(socket) if socket.sends_without_context() => out
                .deflated
                .get_or_init(|| compress_shared(out.text.as_bytes(), metrics))
                .clone(),
            ClientSocket::Deflate(socket) => {
                std::future::poll_fn(|cx| socket.poll_ready_unpin(cx))
                    .await
                    .map_err(error)?;
                socket.feed_text(out.text.as_bytes());
                return Ok(());
            }
            ClientSocket::Plain(socket) => {
                return socket.feed(Message::Text(out.text.clone())).await;
            }
        };
        let ClientSocket::Deflate(socket) = self else {
            unreachable!("matched above")
        };
        // Room in the socket's buffer first, as a feed would wait for it.
        std::future::poll_fn(|cx| socket.poll_ready_unpin(cx))
            .await
            .map_err(error)?;
        match shared {
            Some(compressed) => socket.feed_precompressed_text(&compressed),
            None => socket.feed_text(out.text.as_bytes()),
        }
        Ok(())
    }

    /// What was written on the wire since the last call, for the metrics: counted by
    /// the frame-layer socket, computed for tungstenite's (headers are known sizes).
    pub fn wire_stats(&self) -> Option<WireStats> {
        match self {
            ClientSocket::Plain(_) => None,
            ClientSocket::Deflate(socket) => Some(socket.stats()),
        }
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

/// The bytes a server frame of `len` payload bytes takes on the wire.
pub(super) fn wire_size(len: usize) -> u64 {
    let mut header = Vec::with_capacity(10);
    frame::write(
        &mut header,
        tungstenite::protocol::frame::coding::OpCode::Data(
            tungstenite::protocol::frame::coding::Data::Text,
        ),
        false,
        None,
        len,
    );
    (header.len() + len) as u64
}

fn from_tungstenite(message: tungstenite::Message) -> Result<Message, axum::Error> {
    let utf8 =
        |b: tungstenite::Utf8Bytes| Utf8Bytes::try_from(Bytes::from(b)).map_err(axum::Error::new);
    Ok(match message {
        tungstenite::Message::Text(text) => Message::Text(utf8(text)?),
        tungstenite::Message::Binary(data) => Message::Binary(data),
        tungstenite::Message::Ping(data) => Message::Ping(data),
        tungstenite::Message::Pong(data) => Message::Pong(data),
        tungstenite::Message::Close(frame) => Message::Close(match frame {
            Some(f) => Some(CloseFrame {
                code: f.code.into(),
                reason: utf8(f.reason)?,
            }),
            None => None,
        }),
        tungstenite::Message::Frame(_) => return Err(axum::Error::new("a raw frame")),
    })
}

fn into_tungstenite(message: Message) -> Result<tungstenite::Message, axum::Error> {
    let utf8 = |b: Utf8Bytes| {
        tungstenite::Utf8Bytes::try_from(Bytes::from(b.as_str().to_owned()))
            .map_err(axum::Error::new)
    };
    Ok(match message {
        Message::Text(text) => tungstenite::Message::Text(utf8(text)?),
        Message::Binary(data) => tungstenite::Message::Binary(data),
        Message::Ping(data) => tungstenite::Message::Ping(data),
        Message::Pong(data) => tungstenite::Message::Pong(data),
        Message::Close(frame) => tungstenite::Message::Close(match frame {
            Some(f) => Some(tungstenite::protocol::CloseFrame {
                code: f.code.into(),
                reason: utf8(f.reason)?,
            }),
            None => None,
        }),
    })
}

/// The extension this server agrees with a request's offers, if any.
pub(super) fn agreed_for(headers: &HeaderMap, mode: ServerMode) -> Option<Agreed> {
    let offers = headers
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok());
    deflate::accept(offers, mode)
}

/// The 101 answer for a client that agreed permessage-deflate (the request was
/// already checked as an upgrade by axum's extractor), and the socket once the
/// connection is handed over.
pub(super) fn upgrade(
    headers: &HeaderMap,
    on_upgrade: hyper::upgrade::OnUpgrade,
    agreed: Agreed,
    read_buffer: usize,
    max_message: usize,
) -> (
    Response,
    impl Future<Output = Option<ClientSocket>> + Send + 'static,
) {
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| derive_accept_key(k.as_bytes()))
        .unwrap_or_default();
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&key) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if offers_our_subprotocol(headers) {
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(crate::contract::SUBPROTOCOL),
        );
    }
    if let Ok(value) = HeaderValue::from_str(&agreed.header()) {
        h.insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
    }
    let socket = async move {
        let upgraded = on_upgrade.await.ok()?;
        Some(ClientSocket::Deflate(WireSocket::new(
            TokioIo::new(upgraded),
            Role::Server,
            Some(agreed),
            &[],
            read_buffer,
            max_message,
        )))
    };
    (response, socket)
}

/// Whether the client offered the contract's subprotocol (chosen when offered, as
/// axum's upgrade does for the others).
fn offers_our_subprotocol(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == crate::contract::SUBPROTOCOL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_sizes_count_the_header() {
        assert_eq!(wire_size(10), 12);
        assert_eq!(wire_size(200), 204);
        assert_eq!(wire_size(70_000), 70_010);
    }

    #[test]
    fn messages_convert_both_ways() {
        for message in [
            Message::Text("hi".into()),
            Message::Binary(Bytes::from_static(b"\x01")),
            Message::Ping(Bytes::from_static(b"p")),
            Message::Close(Some(CloseFrame {
                code: 4008,
                reason: "slow".into(),
            })),
            Message::Close(None),
        ] {
            let back = from_tungstenite(into_tungstenite(message.clone()).unwrap()).unwrap();
            assert_eq!(back, message);
        }
    }
}
