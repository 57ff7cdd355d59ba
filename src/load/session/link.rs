//! What a connection reads from: a WebSocket, or a Server-Sent Events stream whose
//! events come out as text frames (their `data:`), so everything downstream measures
//! both the same way. An SSE stream is one-way: nothing can be sent on it.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{self, Message};

use super::socketio::SocketIo;
use crate::client::ws::{ConnectError, Socket};

/// What to send, how to read: ws:// or Server-Sent Events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Protocol {
    /// WebSocket text (or binary) frames.
    #[default]
    Ws,
    /// Server-Sent Events over HTTP (`text/event-stream`), one event per frame.
    Sse,
    /// socket.io (Engine.IO v4) over a WebSocket: events are the frames.
    Socketio,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Ws => "ws",
            Protocol::Sse => "sse",
            Protocol::Socketio => "socketio",
        }
    }
}

pub enum Link {
    Ws(Box<Socket>),
    Sse(EventStream),
    SocketIo(SocketIo),
}

impl Link {
    /// The next frame: a WebSocket message, or an SSE event's data as text (comment
    /// lines, the keep-alives, come out as an empty Pong: alive, nothing to count).
    pub async fn next(&mut self) -> Option<Result<Message, tungstenite::Error>> {
        match self {
            Link::Ws(socket) => socket.next().await,
            Link::Sse(events) => events.next().await,
            Link::SocketIo(sio) => sio.next().await,
        }
    }

    /// Sends on a WebSocket; an SSE stream cannot carry anything back.
    pub async fn send(&mut self, message: Message) -> Result<(), tungstenite::Error> {
        match self {
            Link::Ws(socket) => socket.send(message).await,
            Link::SocketIo(sio) => sio.send(message).await,
            Link::Sse(_) => Err(tungstenite::Error::Io(std::io::Error::other(
                "a Server-Sent Events stream is one-way",
            ))),
        }
    }

    /// The WebSocket underneath, if this link has one.
    fn websocket(&self) -> Option<&Socket> {
        match self {
            Link::Ws(socket) => Some(socket),
            Link::SocketIo(sio) => Some(sio.socket()),
            Link::Sse(_) => None,
        }
    }

    /// The permessage-deflate parameters the server agreed, if any.
    pub fn compression(&self) -> Option<crate::wire::Agreed> {
        self.websocket().and_then(Socket::compression)
    }

    /// What crossed the wire, when the socket counts it.
    pub fn wire_stats(&self) -> Option<crate::wire::WireStats> {
        self.websocket().and_then(Socket::wire_stats)
    }

    pub async fn close(&mut self) {
        match self {
            Link::Ws(socket) => {
                let _ = (**socket).close(None).await;
            }
            Link::SocketIo(sio) => sio.close().await,
            // Dropping the response closes its connection.
            Link::Sse(_) => {}
        }
    }
}

/// An open `text/event-stream` response, read a chunk at a time.
pub struct EventStream {
    response: reqwest::Response,
    /// Bytes not yet split into events.
    pending: Vec<u8>,
    /// Events larger than this end the stream as `message_too_large`.
    max_event: usize,
}

/// An opened link, how long opening took, and the subprotocol the server picked.
pub struct Opened {
    pub link: Link,
    pub connect_time: Duration,
    pub subprotocol: Option<String>,
}

/// Opens an SSE stream: `Accept: text/event-stream`, and `Last-Event-ID` when
/// resuming. Anything but 200 with that content type is a refused handshake, with
/// what the server said.
pub async fn open_events(
    client: &reqwest::Client,
    url: &url::Url,
    last_event_id: Option<u64>,
    max_event: usize,
    timeout: Duration,
) -> Result<Opened, ConnectError> {
    let started = Instant::now();
    let mut request = client
        .get(url.clone())
        .header("accept", "text/event-stream")
        .header("cache-control", "no-cache");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let sent = tokio::time::timeout(timeout, request.send()).await;
    let response = match sent {
        Err(_) => return Err(ConnectError::Timeout(timeout)),
        Ok(Err(e)) => return Err(refusal(&e, timeout)),
        Ok(Ok(response)) => response,
    };
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if status != 200 || !kind.starts_with("text/event-stream") {
        let body = tokio::time::timeout(Duration::from_secs(1), response.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let line = String::from_utf8_lossy(&body[..body.len().min(2048)])
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| crate::text::printable(&crate::text::cut(l, 120)).into_owned());
        let mut said = line.map(|l| format!(": {l}")).unwrap_or_default();
        if status == 200 {
            said.push_str(&format!(
                " (content-type {:?}, not text/event-stream)",
                crate::text::cut(&kind, 60)
            ));
        }
        return Err(ConnectError::Handshake { status, said });
    }
    Ok(Opened {
        link: Link::Sse(EventStream {
            response,
            pending: Vec::new(),
            max_event,
        }),
        connect_time: started.elapsed(),
        subprotocol: None,
    })
}

/// A request that got no answer, sorted as WebSocket connects are.
fn refusal(e: &reqwest::Error, timeout: Duration) -> ConnectError {
    let why = crate::client::http::reason(e, timeout);
    if why == "connection refused" {
        ConnectError::Refused
    } else if let Some(dns) = why.strip_prefix("cannot resolve the host: ") {
        ConnectError::Dns(dns.to_owned())
    } else {
        ConnectError::Io(why)
    }
}

impl EventStream {
    async fn next(&mut self) -> Option<Result<Message, tungstenite::Error>> {
        loop {
            if let Some(event) = self.take_event() {
                return Some(Ok(event));
            }
            if self.pending.len() > self.max_event {
                let size = self.pending.len();
                let max = self.max_event;
                return Some(Err(tungstenite::Error::Capacity(
                    tungstenite::error::CapacityError::MessageTooLong {
                        size,
                        max_size: max,
                    },
                )));
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.pending.extend_from_slice(&chunk),
                // The server ended the stream: as a WebSocket closed without a frame.
                Ok(None) => return None,
                Err(e) => {
                    let why = crate::client::http::reason(&e, Duration::ZERO);
                    return Some(Err(tungstenite::Error::Io(std::io::Error::other(why))));
                }
            }
        }
    }

    /// The next whole event: its data as a text frame, or an empty Pong for a block
    /// with no data (comments, keep-alives).
    fn take_event(&mut self) -> Option<Message> {
        let event = crate::client::sse::take_event(&mut self.pending)?;
        if !event.has_data {
            return Some(Message::Pong(Vec::new().into()));
        }
        Some(Message::Text(event.data.into()))
    }
}
