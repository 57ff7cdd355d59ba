//! Kalshi trade API v2 client: the current quotes over REST on every (re)connect,
//! then the `ticker` channel over WebSocket.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use super::health::{HealthPolicy, HealthTracker};
use super::rounds::{Round, Upstream, unless_stopped};
use super::{FeedError, FeedEvent, FeedSink, QuoteObservation, report_health, send};
use crate::contract::{Source, UnixMicros};
use crate::retry::Backoff;

#[derive(Debug, Clone)]
pub struct KalshiFeed {
    http: reqwest::Client,
    /// e.g. `https://api.elections.kalshi.com/trade-api/v2`
    rest_url: String,
    /// e.g. `wss://api.elections.kalshi.com/trade-api/ws/v2`
    ws_url: String,
    tickers: Vec<String>,
    timeout: Duration,
    health: HealthPolicy,
    backoff: Backoff,
}

/// Why a stream ended.
enum StreamEnd {
    Stopped,
    Failed(FeedError),
}

impl KalshiFeed {
    pub fn new(
        http: reqwest::Client,
        rest_url: &str,
        ws_url: &str,
        tickers: Vec<String>,
        timeout: Duration,
        health: HealthPolicy,
        backoff: Backoff,
    ) -> Self {
        Self {
            http,
            rest_url: rest_url.trim_end_matches('/').to_owned(),
            ws_url: ws_url.to_owned(),
            tickers,
            timeout,
            health,
            backoff,
        }
    }

    /// The current quote of every followed market, over REST.
    pub async fn fetch_quotes(&self) -> Result<Vec<QuoteObservation>, FeedError> {
        let url = format!("{}/markets", self.rest_url);
        let response = self
            .http
            .get(&url)
            .query(&[("tickers", self.tickers.join(","))])
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| FeedError::from_reqwest(e, self.timeout))?;
        match response.status().as_u16() {
            429 => return Err(FeedError::RateLimited),
            s if !(200..300).contains(&s) => return Err(FeedError::Status(s)),
            _ => {}
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| FeedError::from_reqwest(e, self.timeout))?;
        let page: MarketsPage =
            serde_json::from_slice(&body).map_err(|e| FeedError::Malformed(e.to_string()))?;
        let observed_at = UnixMicros(crate::clock::unix_micros());
        page.markets
            .into_iter()
            .map(|m| {
                let price = |s: &str| {
                    s.parse::<f64>().map_err(|_| {
                        FeedError::Malformed(format!("price {s:?} of {} is not a number", m.ticker))
                    })
                };
                Ok(QuoteObservation {
                    yes_bid: price(&m.yes_bid_dollars)?,
                    yes_ask: price(&m.yes_ask_dollars)?,
                    last_price: price(&m.last_price_dollars)?,
                    settled: matches!(m.status.as_str(), "determined" | "finalized" | "settled"),
                    ticker: m.ticker,
                    observed_at,
                })
            })
            .collect()
    }

    async fn stream(
        &self,
        sink: &FeedSink,
        stop: &CancellationToken,
        health: &mut HealthTracker,
    ) -> StreamEnd {
        let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
        let connect =
            tokio_tungstenite::connect_async_with_config(self.ws_url.as_str(), Some(config), true);
        let mut socket = match tokio::time::timeout(self.timeout, connect).await {
            Err(_) => return StreamEnd::Failed(FeedError::Timeout(self.timeout)),
            Ok(Err(e)) => return StreamEnd::Failed(handshake_error(e)),
            Ok(Ok((socket, _))) => socket,
        };
        let subscribe = serde_json::json!({"id": 1, "cmd": "subscribe",
            "params": {"channels": ["ticker"], "market_tickers": self.tickers}});
        if let Err(e) = socket
            .send(Message::Text(subscribe.to_string().into()))
            .await
        {
            return StreamEnd::Failed(FeedError::Connect(e.to_string()));
        }
        // Wake up at least this often to ping a quiet stream and notice a dead one.
        let check_every = self.health.stale_after / 3;
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => {
                    let _ = socket.close(None).await;
                    return StreamEnd::Stopped;
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
                    Err(e @ FeedError::Upstream(_)) => return StreamEnd::Failed(e),
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

    async fn healthy(&self, sink: &FeedSink, health: &mut HealthTracker, now: Instant) {
        report_health(sink, Source::Kalshi, health.success(now), None).await;
    }
}

fn handshake_error(e: tokio_tungstenite::tungstenite::Error) -> FeedError {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Http(response) if response.status().as_u16() == 429 => FeedError::RateLimited,
        Error::Http(response) => FeedError::Status(response.status().as_u16()),
        other => FeedError::Connect(other.to_string()),
    }
}

impl Upstream for KalshiFeed {
    const SOURCE: Source = Source::Kalshi;
    const ROUND: &'static str = "market feed";

    fn policies(&self) -> (&HealthPolicy, &Backoff) {
        (&self.health, &self.backoff)
    }

    /// A snapshot of the markets over REST, then their ticker stream until it fails;
    /// the next round starts with a fresh snapshot.
    async fn round(
        &self,
        sink: &FeedSink,
        stop: &CancellationToken,
        health: &mut HealthTracker,
    ) -> Round {
        let quotes = match unless_stopped(stop, self.fetch_quotes()).await {
            None => return Round::Stopped,
            Some(Err(e)) => return Round::Failed(e),
            Some(Ok(quotes)) => quotes,
        };
        self.healthy(sink, health, Instant::now()).await;
        for q in quotes {
            send(sink, FeedEvent::Quote(q)).await;
        }
        match self.stream(sink, stop, health).await {
            StreamEnd::Stopped => Round::Stopped,
            StreamEnd::Failed(e) => Round::Failed(e),
        }
    }
}

#[derive(Deserialize)]
struct MarketsPage {
    markets: Vec<Market>,
}

#[derive(Deserialize)]
struct Market {
    ticker: String,
    status: String,
    yes_bid_dollars: String,
    yes_ask_dollars: String,
    last_price_dollars: String,
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
    price_dollars: String,
    yes_bid_dollars: String,
    yes_ask_dollars: String,
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
            let price = |s: &str| {
                s.parse::<f64>()
                    .map_err(|_| FeedError::Malformed(format!("price {s:?} is not a number")))
            };
            Ok(Some(QuoteObservation {
                yes_bid: price(&ticker.yes_bid_dollars)?,
                yes_ask: price(&ticker.yes_ask_dollars)?,
                last_price: price(&ticker.price_dollars)?,
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

    #[test]
    fn ticker_messages_become_quotes() {
        let q = parse_stream_message(r#"{"type":"ticker","sid":1,"msg":{"market_ticker":"T","price_dollars":"0.560","yes_bid_dollars":"0.550","yes_ask_dollars":"0.570","ts":1}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            (q.ticker.as_str(), q.yes_bid, q.yes_ask, q.last_price),
            ("T", 0.55, 0.57, 0.56)
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
