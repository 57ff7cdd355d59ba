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

impl KalshiFeed {
    pub(super) async fn stream(
        &self,
        sink: &FeedSink,
        stop: &CancellationToken,
        health: &mut HealthTracker,
    ) -> StreamEnd {
        let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
        let request = match self.handshake_request() {
            Ok(request) => request,
            Err(e) => return StreamEnd::Failed(e),
        };
        let connect = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
        let mut socket = match tokio::time::timeout(self.timeout, connect).await {
            Err(_) => return StreamEnd::Failed(FeedError::Timeout(self.timeout)),
            Ok(Err(e)) => return StreamEnd::Failed(self.handshake_error(e)),
            Ok(Ok((socket, _))) => socket,
        };
        let mut tickers = self.tickers.clone();
        let followed = tickers.borrow_and_update().clone();
        let subscribe = serde_json::json!({"id": 1, "cmd": "subscribe",
            "params": {"channels": ["ticker"], "market_tickers": followed}});
        if let Err(e) = socket
            .send(Message::Text(subscribe.to_string().into()))
            .await
        {
            return StreamEnd::Failed(FeedError::Connect(e.to_string()));
        }
        tell_link(sink, Link::Streaming, None).await;
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
            match next {
                Err(_) => {
                    // A quiet market is not a dead link: ask for a pong, which counts
                    // as a sign of life when it comes back.
                    if socket
                        .send(Message::Ping("livegames".into()))
                        .await
                        .is_err()
                    {
                        return StreamEnd::Failed(FeedError::Connect("ping failed".into()));
                    }
                    report_health(
                        sink,
                        Source::Kalshi,
                        health.tick(now),
                        Some("no messages on the ticker stream".into()),
                    )
                    .await;
                    if health.state() == crate::contract::SourceHealth::Down {
                        return StreamEnd::Failed(FeedError::Timeout(self.health.down_after));
                    }
                }
                Ok(None) => return StreamEnd::Failed(FeedError::Connect("stream closed".into())),
                Ok(Some(Err(e))) => return StreamEnd::Failed(FeedError::Connect(e.to_string())),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    let why = frame
                        .map(|f| format!("closed with {} {}", f.code, f.reason))
                        .unwrap_or_else(|| "closed".into());
                    return StreamEnd::Failed(FeedError::Connect(why));
                }
                Ok(Some(Ok(Message::Text(text)))) => match parse_stream_message(&text) {
                    Ok(Some(quote)) => {
                        self.healthy(sink, health, now).await;
                        send(sink, FeedEvent::Quote(quote)).await;
                    }
                    Ok(None) => self.healthy(sink, health, now).await,
                    // Kalshi answers a bad command with an error frame and keeps the
                    // socket open: say so, and go on reading.
                    Err(FeedError::Upstream(why)) => {
                        tracing::warn!(source = "kalshi", error = %why, "Kalshi sent an error frame");
                        let code = error_code(&why);
                        send(
                            sink,
                            FeedEvent::ErrorFrame {
                                source: Source::Kalshi,
                                code,
                            },
                        )
                        .await;
                    }
                    Err(e) => {
                        tracing::warn!(source = "kalshi", error = %e, "bad ticker message");
                        report_health(
                            sink,
                            Source::Kalshi,
                            health.failure(now),
                            Some(e.to_string()),
                        )
                        .await;
                    }
                },
                // Pings (answered by tungstenite) and pongs prove the link is alive,
                // not that its data is good.
                Ok(Some(Ok(_))) => {
                    report_health(sink, Source::Kalshi, health.alive(now), None).await
                }
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

/// The `code` of a Kalshi error frame's `msg` (as `Upstream` carries it), for the
/// error-frames metric: a short number, else "other", so a peer cannot grow the
/// label set.
fn error_code(msg: &str) -> String {
    serde_json::from_str::<serde_json::Value>(msg)
        .ok()
        .and_then(|m| m["code"].as_u64())
        .filter(|c| *c < 1000)
        .map_or_else(|| "other".to_owned(), |c| c.to_string())
}

#[derive(Deserialize)]
struct StreamMessage<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    msg: Option<serde_json::Value>,
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

/// A ticker message becomes a quote; control messages (`subscribed`, `ok`) are Ok(None).
fn parse_stream_message(text: &str) -> Result<Option<QuoteObservation>, FeedError> {
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
            Ok(Some(QuoteObservation {
                yes_bid: dollars(ticker.yes_bid_dollars.as_deref(), "yes_bid_dollars")?,
                yes_ask: dollars(ticker.yes_ask_dollars.as_deref(), "yes_ask_dollars")?,
                last_price: last_price(ticker.price_dollars.as_deref(), "price_dollars")?,
                settlement: None,
                settled: false,
                ticker: ticker.market_ticker,
                observed_at: UnixMicros(crate::clock::unix_micros()),
            }))
        }
        "error" => Err(FeedError::Upstream(
            message
                .msg
                .map(|m| m.to_string())
                .unwrap_or_else(|| "error without msg".into()),
        )),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real frames: Kalshi sends `""` for a price that is not there; the rest of the
    /// message still applies.
    #[test]
    fn an_empty_or_missing_price_is_no_price_and_the_rest_applies() {
        let q = parse_stream_message(r#"{"type":"ticker","sid":1,"msg":{"market_ticker":"T","price_dollars":"","yes_bid_dollars":"0.5500","yes_ask_dollars":"0.5700","ts":1}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            (q.yes_bid, q.yes_ask, q.last_price),
            (Some(0.55), Some(0.57), None)
        );
        let q = parse_stream_message(
            r#"{"type":"ticker","sid":1,"msg":{"market_ticker":"T","price_dollars":"0.5600"}}"#,
        )
        .unwrap()
        .unwrap();
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

    #[test]
    fn error_frames_are_counted_by_a_short_code() {
        assert_eq!(
            error_code(r#"{"code":8,"msg":"Unknown channel name"}"#),
            "8"
        );
        assert_eq!(error_code(r#"{"code":123456,"msg":"x"}"#), "other");
        assert_eq!(error_code("error without msg"), "other");
    }

    #[test]
    fn ticker_messages_become_quotes() {
        let q = parse_stream_message(r#"{"type":"ticker","sid":1,"msg":{"market_ticker":"T","price_dollars":"0.560","yes_bid_dollars":"0.550","yes_ask_dollars":"0.570","ts":1}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            (q.ticker.as_str(), q.yes_bid, q.yes_ask, q.last_price),
            ("T", Some(0.55), Some(0.57), Some(0.56))
        );
        assert_eq!(
            parse_stream_message(
                r#"{"id":1,"type":"subscribed","msg":{"channel":"ticker","sid":1}}"#
            )
            .unwrap(),
            None
        );
        assert!(matches!(
            parse_stream_message("{\"type\":\"ticker\",\"msg\":{"),
            Err(FeedError::Malformed(_))
        ));
        assert!(matches!(
            parse_stream_message(r#"{"type":"error","msg":{"code":17}}"#),
            Err(FeedError::Upstream(_))
        ));
    }
}
