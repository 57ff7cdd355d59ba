//! Kalshi's WebSocket: the signed handshake, the `ticker` channel, and its messages.
//! An error frame is counted and the socket stays open, as Kalshi keeps it.

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use super::rest::{dollars, last_price};
use super::{Access, KalshiFeed, StreamEnd, tell_link};
use crate::contract::{Source, UnixMicros};
use crate::feeds::health::HealthTracker;
use crate::feeds::{FeedError, FeedEvent, FeedSink, Link, QuoteObservation, report_health, send};

/// The ticker stream's socket.
type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl KalshiFeed {
    pub(super) async fn stream(
        &self,
        sink: &FeedSink,
        stop: &CancellationToken,
        health: &mut HealthTracker,
    ) -> StreamEnd {
        let mut tickers = self.tickers.clone();
        let followed = tickers.borrow_and_update().clone();
        let mut socket = match self.subscribed(&followed).await {
            Ok(socket) => socket,
            Err(e) => return StreamEnd::Failed(e),
        };
        tell_link(sink, Link::Streaming, None).await;
        let mut errors = ErrorRun::default();
        // Wake up at least this often to ping a quiet stream and notice a dead one.
        let check_every = self.health.stale_after / 3;
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => {
                    let _ = socket.close(None).await;
                    return StreamEnd::Stopped;
                }
                // New markets to follow: a new round subscribes to them all.
                Ok(()) = tickers.changed() => {
                    let _ = socket.close(None).await;
                    return StreamEnd::Resubscribe;
                }
                next = tokio::time::timeout(check_every, socket.next()) => next,
            };
            let now = Instant::now();
            let failed = match next {
                Err(_) => self.quiet(&mut socket, sink, health, now).await.err(),
                Ok(None) => Some(FeedError::Connect("stream closed".into())),
                Ok(Some(Err(e))) => Some(FeedError::Connect(e.to_string())),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    let why = frame
                        .map(|f| format!("closed with {} {}", f.code, f.reason))
                        .unwrap_or_else(|| "closed".into());
                    Some(FeedError::Connect(why))
                }
                Ok(Some(Ok(Message::Text(text)))) => {
                    self.on_text(&text, sink, health, &mut errors, now).await;
                    None
                }
                // Pings (answered by tungstenite) and pongs prove the link is alive,
                // not that its data is good.
                Ok(Some(Ok(_))) => {
                    report_health(sink, Source::Kalshi, health.alive(now), None).await;
                    None
                }
            };
            if let Some(e) = failed {
                return StreamEnd::Failed(e);
            }
        }
    }

    /// The signed handshake, then the subscription to `followed`'s tickers.
    async fn subscribed(&self, followed: &[String]) -> Result<Socket, FeedError> {
        let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
        let request = self.handshake_request()?;
        let connect = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
        let mut socket = match tokio::time::timeout(self.timeout, connect).await {
            Err(_) => return Err(FeedError::Timeout(self.timeout)),
            Ok(Err(e)) => return Err(self.handshake_error(e)),
            Ok(Ok((socket, _))) => socket,
        };
        let subscribe = serde_json::json!({"id": SUBSCRIBE_ID, "cmd": "subscribe",
            "params": {"channels": ["ticker"], "market_tickers": followed}});
        socket
            .send(Message::Text(subscribe.to_string().into()))
            .await
            .map_err(|e| FeedError::Connect(e.to_string()))?;
        Ok(socket)
    }

    /// Nothing came for a while. A quiet market is not a dead link: ask for a pong,
    /// which counts as a sign of life when it comes back; fail once health is down.
    async fn quiet(
        &self,
        socket: &mut Socket,
        sink: &FeedSink,
        health: &mut HealthTracker,
        now: Instant,
    ) -> Result<(), FeedError> {
        if socket
            .send(Message::Ping("livegames".into()))
            .await
            .is_err()
        {
            return Err(FeedError::Connect("ping failed".into()));
        }
        let why = Some("no messages on the ticker stream".into());
        report_health(sink, Source::Kalshi, health.tick(now), why).await;
        if health.state() == crate::contract::SourceHealth::Down {
            return Err(FeedError::Timeout(self.health.down_after));
        }
        Ok(())
    }

    /// A text message: a quote, a control answer, or an error frame.
    async fn on_text(
        &self,
        text: &str,
        sink: &FeedSink,
        health: &mut HealthTracker,
        errors: &mut ErrorRun,
        now: Instant,
    ) {
        match parse_stream_message(text) {
            Ok(Frame::Quote(quote)) => {
                self.healthy(sink, health, now).await;
                errors.data(sink).await;
                send(sink, FeedEvent::Quote(quote)).await;
            }
            Ok(Frame::Control) => self.healthy(sink, health, now).await,
            // Kalshi answers a bad command with an error frame and keeps the socket
            // open: say so, count it, and go on reading.
            Ok(Frame::Error { id, code, msg }) => {
                tracing::warn!(source = "kalshi", code = %code, error = %msg, "Kalshi sent an error frame");
                let event = FeedEvent::ErrorFrame {
                    source: Source::Kalshi,
                    code: code.clone(),
                };
                send(sink, event).await;
                errors
                    .error(sink, id == Some(SUBSCRIBE_ID), &code, &msg)
                    .await;
            }
            Err(e) => {
                tracing::warn!(source = "kalshi", error = %e, "bad ticker message");
                let state = health.failure(now);
                report_health(sink, Source::Kalshi, state, Some(e.to_string())).await;
            }
        }
    }

    /// The WebSocket handshake, carrying the signed headers.
    fn handshake_request(
        &self,
    ) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, FeedError> {
        let mut request = self
            .ws_url
            .as_str()
            .into_client_request()
            .map_err(|e| FeedError::Connect(e.to_string()))?;
        for (name, value) in self.signed_headers(&self.ws_url) {
            let value =
                HeaderValue::from_str(&value).map_err(|e| FeedError::Connect(e.to_string()))?;
            request.headers_mut().insert(name, value);
        }
        Ok(request)
    }

    /// A failed handshake, named: a refused signature says which key to check.
    fn handshake_error(&self, e: tokio_tungstenite::tungstenite::Error) -> FeedError {
        use tokio_tungstenite::tungstenite::Error;
        match e {
            Error::Http(response) => match response.status().as_u16() {
                401 | 403 => FeedError::Refused(match &self.access {
                    Access::Signed(signer) => format!(
                        "Kalshi refused the signature for key ID {:?} (HTTP {}): check the key pair",
                        signer.key_id(),
                        response.status().as_u16()
                    ),
                    Access::Polling(_) => "Kalshi refused an unsigned WebSocket handshake".into(),
                }),
                429 => FeedError::RateLimited,
                status => FeedError::Status(status),
            },
            other => FeedError::Connect(other.to_string()),
        }
    }
}

/// The id of our `subscribe` command: an error frame answering it means the stream
/// will carry nothing.
const SUBSCRIBE_ID: u64 = 1;

/// Error frames in a row, with no data between them, that make the stream down while
/// its socket stays open.
const ERROR_FRAMES_IN_A_ROW: u32 = 3;

/// Error frames since the stream last carried data: a stream that keeps erroring, or
/// whose subscription was refused, is down (and `/health` degraded) until data comes.
#[derive(Default)]
struct ErrorRun {
    in_a_row: u32,
    said_down: bool,
}

impl ErrorRun {
    async fn error(&mut self, sink: &FeedSink, refused_subscription: bool, code: &str, msg: &str) {
        self.in_a_row += 1;
        if self.said_down || !(refused_subscription || self.in_a_row >= ERROR_FRAMES_IN_A_ROW) {
            return;
        }
        self.said_down = true;
        let why = if refused_subscription {
            format!("Kalshi refused the ticker subscription (error {code}: {msg})")
        } else {
            format!(
                "the ticker stream keeps sending error frames ({} in a row, last: error {code}: {msg})",
                self.in_a_row
            )
        };
        tell_link(sink, Link::Down, Some(why)).await;
    }

    async fn data(&mut self, sink: &FeedSink) {
        self.in_a_row = 0;
        if std::mem::take(&mut self.said_down) {
            tell_link(sink, Link::Streaming, None).await;
        }
    }
}

#[derive(Deserialize)]
struct StreamMessage<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default)]
    id: Option<u64>,
    msg: Option<serde_json::Value>,
}

/// One frame of the stream, read.
#[derive(Debug, PartialEq)]
enum Frame {
    Quote(QuoteObservation),
    /// `subscribed`, `ok` and the like.
    Control,
    /// An error frame: the command it answers (if any), its code (a short number, else
    /// "other", so a peer cannot grow the metric's label set) and its text.
    Error {
        id: Option<u64>,
        code: String,
        msg: String,
    },
}

#[derive(Deserialize)]
struct Ticker {
    market_ticker: String,
    #[serde(default)]
    price_dollars: Option<String>,
    #[serde(default)]
    yes_bid_dollars: Option<String>,
    #[serde(default)]
    yes_ask_dollars: Option<String>,
}

/// A ticker message becomes a quote, an error frame an error; the rest is control.
fn parse_stream_message(text: &str) -> Result<Frame, FeedError> {
    let message: StreamMessage =
        serde_json::from_str(text).map_err(|e| FeedError::Malformed(e.to_string()))?;
    match message.kind {
        "ticker" => {
            let ticker: Ticker = message
                .msg
                .ok_or_else(|| FeedError::Malformed("ticker without msg".into()))
                .and_then(|m| {
                    serde_json::from_value(m).map_err(|e| FeedError::Malformed(e.to_string()))
                })?;
            Ok(Frame::Quote(QuoteObservation {
                yes_bid: dollars(ticker.yes_bid_dollars.as_deref(), "yes_bid_dollars")?,
                yes_ask: dollars(ticker.yes_ask_dollars.as_deref(), "yes_ask_dollars")?,
                last_price: last_price(ticker.price_dollars.as_deref(), "price_dollars")?,
                settlement: None,
                settled: false,
                ticker: ticker.market_ticker,
                observed_at: UnixMicros(crate::clock::unix_micros()),
            }))
        }
        "error" => {
            let msg = message.msg.unwrap_or_default();
            let code = msg["code"]
                .as_u64()
                .filter(|c| *c < 1000)
                .map_or_else(|| "other".to_owned(), |c| c.to_string());
            let text = msg["msg"]
                .as_str()
                .map_or_else(|| msg.to_string(), str::to_owned);
            Ok(Frame::Error {
                id: message.id,
                code,
                msg: crate::text::printable(&crate::text::cut(&text, 200)).into_owned(),
            })
        }
        _ => Ok(Frame::Control),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote_of(text: &str) -> QuoteObservation {
        match parse_stream_message(text).unwrap() {
            Frame::Quote(q) => q,
            other => panic!("not a quote: {other:?}"),
        }
    }

    /// Real frames: Kalshi sends `""` for a price that is not there; the rest of the
    /// message still applies.
    #[test]
    fn an_empty_or_missing_price_is_no_price_and_the_rest_applies() {
        let q = quote_of(
            r#"{"type":"ticker","sid":1,"msg":{"market_ticker":"T","price_dollars":"","yes_bid_dollars":"0.5500","yes_ask_dollars":"0.5700","ts":1}}"#,
        );
        assert_eq!(
            (q.yes_bid, q.yes_ask, q.last_price),
            (Some(0.55), Some(0.57), None)
        );
        let q = quote_of(
            r#"{"type":"ticker","sid":1,"msg":{"market_ticker":"T","price_dollars":"0.5600"}}"#,
        );
        assert_eq!(
            (q.yes_bid, q.yes_ask, q.last_price),
            (None, None, Some(0.56))
        );
        assert!(matches!(
            parse_stream_message(
                r#"{"type":"ticker","msg":{"market_ticker":"T","price_dollars":"abc"}}"#
            ),
            Err(FeedError::Malformed(_))
        ));
    }

    fn error_of(text: &str) -> (Option<u64>, String, String) {
        match parse_stream_message(text).unwrap() {
            Frame::Error { id, code, msg } => (id, code, msg),
            other => panic!("not an error frame: {other:?}"),
        }
    }

    #[test]
    fn error_frames_are_read_with_their_command_and_a_short_code() {
        assert_eq!(
            error_of(r#"{"type":"error","id":3,"msg":{"code":8,"msg":"Unknown channel name"}}"#),
            (Some(3), "8".into(), "Unknown channel name".into())
        );
        assert_eq!(
            error_of(r#"{"type":"error","msg":{"code":123456,"msg":"x"}}"#).1,
            "other"
        );
        assert_eq!(
            error_of(r#"{"type":"error"}"#),
            (None, "other".into(), "null".into())
        );
        assert_eq!(
            error_of(r#"{"type":"error","msg":{"code":1,"msg":"a\u001b[2Jb"}}"#).2,
            "a\\u{1b}[2Jb"
        );
    }

    #[test]
    fn ticker_messages_become_quotes() {
        let q = quote_of(
            r#"{"type":"ticker","sid":1,"msg":{"market_ticker":"T","price_dollars":"0.560","yes_bid_dollars":"0.550","yes_ask_dollars":"0.570","ts":1}}"#,
        );
        assert_eq!(
            (q.ticker.as_str(), q.yes_bid, q.yes_ask, q.last_price),
            ("T", Some(0.55), Some(0.57), Some(0.56))
        );
        assert_eq!(
            parse_stream_message(
                r#"{"id":1,"type":"subscribed","msg":{"channel":"ticker","sid":1}}"#
            )
            .unwrap(),
            Frame::Control
        );
        assert!(matches!(
            parse_stream_message("{\"type\":\"ticker\",\"msg\":{"),
            Err(FeedError::Malformed(_))
        ));
        assert!(matches!(
            parse_stream_message(r#"{"type":"error","msg":{"code":17}}"#),
            Ok(Frame::Error { .. })
        ));
    }
}
