//! A client WebSocket as the testing parts hold it (tungstenite's, or the frame-layer
//! one of a permessage-deflate connection), a connection's outcome, and its failures
//! sorted by kind.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Sink, Stream};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

use crate::wire::{Agreed, WireSocket, WireStats};
/// A client WebSocket: tungstenite's, or, when permessage-deflate was offered, one
/// on the frame layer. Both read and write tungstenite's `Message`.
// Both variants hold a TLS stream and are about as large; callers box the Socket.
#[allow(clippy::large_enum_variant)]
pub enum Socket {
    Plain(WebSocketStream<MaybeTlsStream<TcpStream>>),
    Deflate(WireSocket<MaybeTlsStream<TcpStream>>),
}

impl Socket {
    /// The permessage-deflate parameters the server agreed, if any.
    pub fn compression(&self) -> Option<Agreed> {
        match self {
            Socket::Plain(_) => None,
            Socket::Deflate(socket) => socket.agreed(),
        }
    }

    /// What crossed the wire, on a socket that counts it (the frame-layer one).
    pub fn wire_stats(&self) -> Option<WireStats> {
        match self {
            Socket::Plain(_) => None,
            Socket::Deflate(socket) => Some(socket.stats()),
        }
    }

    /// Sends a close frame (once) and flushes it.
    pub async fn close(&mut self, frame: Option<CloseFrame>) -> Result<(), tungstenite::Error> {
        match self {
            Socket::Plain(socket) => socket.close(frame).await,
            Socket::Deflate(socket) => {
                use futures_util::SinkExt;
                socket.send(Message::Close(frame)).await?;
                socket.close().await
            }
        }
    }
}

impl Stream for Socket {
    type Item = Result<Message, tungstenite::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_next(cx),
            Socket::Deflate(s) => Pin::new(s).poll_next(cx),
        }
    }
}

impl Sink<Message> for Socket {
    type Error = tungstenite::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_ready(cx),
            Socket::Deflate(s) => Pin::new(s).poll_ready(cx),
        }
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).start_send(item),
            Socket::Deflate(s) => Pin::new(s).start_send(item),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_flush(cx),
            Socket::Deflate(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_close(cx),
            Socket::Deflate(s) => Pin::new(s).poll_close(cx),
        }
    }
}

/// The User-Agent of every request this crate's clients make.
pub const AGENT: &str = concat!("livegames/", env!("CARGO_PKG_VERSION"));

/// Why a connection could not be made. [`ConnectError::kind`] is the short name used
/// in reports (`refused`, `handshake_503`, `tls_unknown_issuer`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("connection refused")]
    Refused,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot resolve the host: {0}")]
    Dns(String),
    /// `kind` names the failure (`unknown_issuer`, `name_mismatch`, `expired`, ...).
    #[error("TLS failed: {reason}")]
    Tls { kind: &'static str, reason: String },
    /// `said`: the first line of the answer's body, escaped and cut (empty without
    /// one), and a hint where one helps (a 404 on a bare host).
    #[error("the server answered the upgrade with HTTP {status}{said}")]
    Handshake { status: u16, said: String },
    #[error("subprotocol: {0}")]
    Subprotocol(String),
    /// The server's answer to our permessage-deflate offer is not one a client may
    /// accept (RFC 7692: the client fails the connection).
    #[error("permessage-deflate: {0}")]
    Extension(String),
    #[error("bad URL: {0}")]
    Url(String),
    #[error("{0}")]
    Io(String),
}

impl ConnectError {
    pub fn kind(&self) -> String {
        match self {
            ConnectError::Refused => "refused".into(),
            ConnectError::Timeout(_) => "connect_timeout".into(),
            ConnectError::Dns(_) => "dns".into(),
            ConnectError::Tls { kind, .. } => format!("tls_{kind}"),
            ConnectError::Handshake { status, .. } => format!("handshake_{status}"),
            ConnectError::Subprotocol(_) => "subprotocol".into(),
            ConnectError::Extension(_) => "extension".into(),
            ConnectError::Url(_) => "bad_url".into(),
            ConnectError::Io(_) => "io".into(),
        }
    }
}

/// Bytes of a refused handshake's body shown in its error.
const BODY_SHOWN: usize = 120;

/// What a refused handshake's answer said, as `: ...` for the error's sentence: the
/// body's first line, escaped and cut; on a 404 for a bare host, where streams live.
pub(super) fn what_the_refusal_said(
    status: u16,
    content_type: Option<&str>,
    body: Option<&[u8]>,
    url: &Url,
) -> String {
    let line = body
        .map(String::from_utf8_lossy)
        .and_then(|b| {
            b.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(str::to_owned)
        })
        .map(|l| crate::text::printable(&crate::text::cut(&l, BODY_SHOWN)).into_owned());
    let mut said = line.map(|l| format!(": {l}")).unwrap_or_default();
    if content_type.is_some_and(|t| t.starts_with("text/event-stream")) {
        said.push_str(" (a Server-Sent Events stream, not a WebSocket)");
    } else if content_type.is_some_and(|t| t.starts_with("text/html")) {
        said.push_str(" (an HTML page)");
    }
    if status == 404 && matches!(url.path(), "" | "/") {
        said.push_str(" (nothing is served at the bare host: add the stream's path, e.g. /ws/live/{game_id} for the livegames contract, or the path the server's documentation names)");
    }
    said
}

/// A connected socket, how long TCP + TLS + the WebSocket handshake took, and the
/// subprotocol the server picked.
pub struct Connected {
    pub socket: Socket,
    pub connect_time: Duration,
    pub subprotocol: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_says_what_came_back() {
        let url = Url::parse("ws://h/").unwrap();
        let feed = Url::parse("ws://h/feed").unwrap();
        let said = |status, kind, body: &[u8], url: &Url| {
            what_the_refusal_said(status, kind, Some(body), url)
        };
        assert_eq!(
            said(
                400,
                None,
                b"\n  Connection header did not include 'upgrade'\nmore",
                &feed
            ),
            ": Connection header did not include 'upgrade'"
        );
        assert_eq!(
            said(
                200,
                Some("text/event-stream"),
                b"data: {\"a\":1}\n\n",
                &feed
            ),
            ": data: {\"a\":1} (a Server-Sent Events stream, not a WebSocket)"
        );
        assert!(
            said(404, Some("text/html"), b"<html>", &url)
                .contains("(an HTML page) (nothing is served at the bare host")
        );
        assert_eq!(said(404, None, b"", &feed), "");
        assert!(said(400, None, b"\x1b[2Jx", &feed).contains("\\u{1b}"));
    }
}
