//! socket.io (Engine.IO v4) over a WebSocket: the open packet, the namespace connect
//! (`40`, with auth data when given), answering the server's pings (`2` -> `3`), and
//! events `42["name",data]` of the chosen name coming out as their data, so they are
//! measured as plain frames; what the client sends goes out as events once the
//! namespace is connected.

use std::collections::VecDeque;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::client::ws::Socket;

/// How a run speaks socket.io.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketIoOptions {
    /// The namespace, `/` by default.
    pub namespace: String,
    /// Sent with the namespace connect (`40{...}`): JSON, e.g. a token.
    pub auth: Option<String>,
    /// Only events of this name are measured (others keep the link alive); None: all.
    pub event: Option<String>,
    /// The name of the events the client emits (its subscribe and scheduled messages).
    pub emit: String,
}

impl Default for SocketIoOptions {
    fn default() -> Self {
        Self {
            namespace: "/".into(),
            auth: None,
            event: None,
            emit: "message".into(),
        }
    }
}

/// The Engine.IO path and query added to a bare socket.io URL.
pub fn engine_io_url(url: &url::Url) -> url::Url {
    let mut url = url.clone();
    if url.path().is_empty() || url.path() == "/" {
        url.set_path("/socket.io/");
    }
    let has = |key: &str| url.query_pairs().any(|(k, _)| k == key);
    let (eio, transport) = (has("EIO"), has("transport"));
    {
        let mut query = url.query_pairs_mut();
        if !eio {
            query.append_pair("EIO", "4");
        }
        if !transport {
            query.append_pair("transport", "websocket");
        }
    }
    url
}

/// A WebSocket speaking socket.io.
pub struct SocketIo {
    socket: Box<Socket>,
    options: SocketIoOptions,
    /// The namespace has accepted us: emits may go out.
    connected: bool,
    /// Emits waiting for the namespace connect.
    waiting: VecDeque<String>,
}

impl SocketIo {
    pub fn new(socket: Box<Socket>, options: SocketIoOptions) -> Self {
        Self {
            socket,
            options,
            connected: false,
            waiting: VecDeque::new(),
        }
    }

    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    pub async fn next(&mut self) -> Option<Result<Message, tungstenite::Error>> {
        loop {
            let message = match self.socket.next().await? {
                Ok(Message::Text(text)) => text,
                other => return Some(other),
            };
            match packet_meaning(&self.options, message.as_str()) {
                Packet::Reply(reply) => {
                    if let Err(e) = self.socket.send(Message::Text(reply.into())).await {
                        return Some(Err(e));
                    }
                }
                Packet::Connected => {
                    self.connected = true;
                    while let Some(emit) = self.waiting.pop_front() {
                        if let Err(e) = self.socket.send(Message::Text(emit.into())).await {
                            return Some(Err(e));
                        }
                    }
                    return Some(Ok(alive()));
                }
                Packet::Event(data) => return Some(Ok(Message::Text(data.into()))),
                Packet::Alive => return Some(Ok(alive())),
                Packet::Refused(why) => {
                    let why = format!("socket.io refused the namespace: {why}");
                    return Some(Err(tungstenite::Error::Io(std::io::Error::other(why))));
                }
                Packet::Disconnect => return None,
                // Not socket.io: measured (and reported) as what it is.
                Packet::Other => return Some(Ok(Message::Text(message))),
            }
        }
    }

    /// Sends a client message as an event (`42["emit",message]`), once connected.
    pub async fn send(&mut self, message: Message) -> Result<(), tungstenite::Error> {
        let Message::Text(text) = message else {
            return self.socket.send(message).await;
        };
        let name = serde_json::to_string(&self.options.emit).unwrap_or_default();
        let emit = format!("42{}[{name},{}]", prefix(&self.options), text.as_str());
        if !self.connected {
            self.waiting.push_back(emit);
            return Ok(());
        }
        self.socket.send(Message::Text(emit.into())).await
    }

    pub async fn close(&mut self) {
        let _ = (*self.socket).close(None).await;
    }
}

/// `/games,` before a packet's payload, nothing for the main namespace.
fn prefix(options: &SocketIoOptions) -> String {
    match options.namespace.as_str() {
        "" | "/" => String::new(),
        ns => format!("{ns},"),
    }
}

/// What one Engine.IO packet means for the client.
fn packet_meaning(options: &SocketIoOptions, text: &str) -> Packet {
    let prefix = prefix(options);
    match text.chars().next() {
        // open: connect to the namespace.
        Some('0') => {
            let auth = options.auth.as_deref().unwrap_or("");
            Packet::Reply(format!("40{prefix}{auth}"))
        }
        Some('2') if text.len() == 1 => Packet::Reply("3".into()),
        Some('3' | '6') => Packet::Alive,
        Some('1') => Packet::Disconnect,
        Some('4') => {
            let rest = &text[1..];
            let body = rest.get(1..).unwrap_or("");
            let body = body.strip_prefix(prefix.as_str()).unwrap_or(body);
            match rest.chars().next() {
                Some('0') => Packet::Connected,
                Some('1') => Packet::Disconnect,
                Some('2') => event(options, body),
                Some('4') => Packet::Refused(crate::text::cut(body, 200)),
                _ => Packet::Alive,
            }
        }
        _ => Packet::Other,
    }
}

/// `["name", data]` (an ack id may come first): the data of a chosen event.
fn event(options: &SocketIoOptions, body: &str) -> Packet {
    let body = body.trim_start_matches(|c: char| c.is_ascii_digit());
    let Ok(serde_json::Value::Array(mut parts)) = serde_json::from_str(body) else {
        return Packet::Other;
    };
    if parts.is_empty() {
        return Packet::Other;
    }
    let name = parts.remove(0);
    let wanted = options
        .event
        .as_deref()
        .is_none_or(|e| name.as_str() == Some(e));
    if !wanted {
        return Packet::Alive;
    }
    let data = if parts.is_empty() {
        serde_json::Value::Null
    } else {
        parts.swap_remove(0)
    };
    Packet::Event(data.to_string())
}

/// A sign of life that is not a frame to count.
fn alive() -> Message {
    Message::Pong(Vec::new().into())
}

#[derive(Debug, PartialEq)]
enum Packet {
    /// Answer the server with this packet.
    Reply(String),
    /// The namespace accepted us.
    Connected,
    /// An event's data, to measure.
    Event(String),
    /// Alive, nothing to measure.
    Alive,
    Refused(String),
    Disconnect,
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(options: SocketIoOptions, text: &str) -> Packet {
        packet_meaning(&options, text)
    }

    #[test]
    fn engine_io_packets_are_answered_and_events_unwrapped() {
        let ticks = SocketIoOptions {
            event: Some("tick".into()),
            ..SocketIoOptions::default()
        };
        assert_eq!(
            packet(ticks.clone(), r#"0{"sid":"a","pingInterval":25000}"#),
            Packet::Reply("40".into())
        );
        assert_eq!(packet(ticks.clone(), "2"), Packet::Reply("3".into()));
        assert_eq!(packet(ticks.clone(), r#"40{"sid":"b"}"#), Packet::Connected);
        assert_eq!(
            packet(ticks.clone(), r#"42["tick",{"seq":3}]"#),
            Packet::Event(r#"{"seq":3}"#.into())
        );
        assert_eq!(
            packet(ticks.clone(), r#"42["other",{"seq":3}]"#),
            Packet::Alive
        );
        assert_eq!(
            packet(ticks.clone(), r#"4217["tick",1]"#),
            Packet::Event("1".into())
        );
        assert_eq!(
            packet(ticks.clone(), r#"44{"message":"Not authorized"}"#),
            Packet::Refused(r#"{"message":"Not authorized"}"#.into())
        );
        assert_eq!(packet(ticks, r#"{"seq":1}"#), Packet::Other);
    }

    #[test]
    fn a_namespace_and_auth_go_into_the_connect_and_prefix_events() {
        let games = SocketIoOptions {
            namespace: "/games".into(),
            auth: Some(r#"{"token":"t"}"#.into()),
            ..SocketIoOptions::default()
        };
        assert_eq!(
            packet(games.clone(), r#"0{"sid":"a"}"#),
            Packet::Reply(r#"40/games,{"token":"t"}"#.into())
        );
        assert_eq!(
            packet(games, r#"42/games,["tick",{"seq":1}]"#),
            Packet::Event(r#"{"seq":1}"#.into())
        );
    }

    #[test]
    fn bare_urls_get_the_engine_io_path_and_query() {
        let url = url::Url::parse("ws://h:3000").unwrap();
        assert_eq!(
            engine_io_url(&url).as_str(),
            "ws://h:3000/socket.io/?EIO=4&transport=websocket"
        );
        let custom = url::Url::parse("wss://h/rt/?EIO=4&token=x").unwrap();
        assert_eq!(
            engine_io_url(&custom).as_str(),
            "wss://h/rt/?EIO=4&token=x&transport=websocket"
        );
    }
}
