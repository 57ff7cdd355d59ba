//! Kalshi trade API v2 client. With an API key: the current quotes over REST on every
//! (re)connect, then the `ticker` channel over a signed WebSocket ([`auth`]). Without
//! one: the quotes over REST, polled at a fixed interval (Kalshi refuses unsigned
//! WebSocket handshakes).

pub mod auth;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use super::discovery::MarketEvent;
use super::health::{HealthPolicy, HealthTracker};
use super::rounds::{Round, Upstream, unless_stopped};
use super::{FeedError, FeedEvent, FeedSink, Link, QuoteObservation, report_health, send};
use crate::contract::{Source, UnixMicros};
use crate::retry::Backoff;
use auth::Signer;

#[derive(Debug, Clone)]
pub struct KalshiFeed {
    http: reqwest::Client,
    /// e.g. `https://api.elections.kalshi.com/trade-api/v2`
    rest_url: String,
    /// e.g. `wss://api.elections.kalshi.com/trade-api/ws/v2`
    ws_url: String,
    /// The markets followed; discovery changes them while the feed runs.
    tickers: watch::Receiver<Vec<String>>,
    timeout: Duration,
    health: HealthPolicy,
    backoff: Backoff,
    access: Access,
}

/// How the feed reaches Kalshi.
#[derive(Debug, Clone)]
pub enum Access {
    /// Signed requests, the ticker stream.
    Signed(Arc<Signer>),
    /// No key: the REST API every this long.
    Polling(Duration),
}

/// Where the feed finds Kalshi, how it gets in, and which markets it follows.
#[derive(Debug, Clone)]
pub struct KalshiEndpoints {
    /// e.g. `https://api.elections.kalshi.com/trade-api/v2`
    pub rest_url: String,
    /// e.g. `wss://api.elections.kalshi.com/trade-api/ws/v2`
    pub ws_url: String,
    pub access: Access,
    /// The markets to follow, as discovery finds them.
    pub tickers: watch::Receiver<Vec<String>>,
}

/// Why a stream ended.
enum StreamEnd {
    Stopped,
    /// The followed markets changed.
    Resubscribe,
    Failed(FeedError),
}

impl KalshiFeed {
    pub fn new(
        http: reqwest::Client,
        endpoints: KalshiEndpoints,
        timeout: Duration,
        health: HealthPolicy,
        backoff: Backoff,
    ) -> Self {
        Self {
            http,
            rest_url: endpoints.rest_url.trim_end_matches('/').to_owned(),
            ws_url: endpoints.ws_url,
            tickers: endpoints.tickers,
            timeout,
            health,
            backoff,
            access: endpoints.access,
        }
    }

    /// The signed headers of a `GET` to `url`, when the feed has a key.
    fn signed_headers(&self, url: &str) -> Vec<(&'static str, String)> {
        let Access::Signed(signer) = &self.access else {
            return Vec::new();
        };
        let path = url::Url::parse(url)
            .map(|u| u.path().to_owned())
            .unwrap_or_default();
        signer
            .headers("GET", &path, crate::clock::unix_micros() / 1_000)
            .to_vec()
    }

    /// The current quote of every followed market, over REST.
    pub async fn fetch_quotes(&self) -> Result<Vec<QuoteObservation>, FeedError> {
        let url = format!("{}/markets", self.rest_url);
        let mut request = self.http.get(&url);
        for (name, value) in self.signed_headers(&url) {
            request = request.header(name, value);
        }
        let followed = self.tickers.borrow().join(",");
        let response = request
            .query(&[("tickers", followed)])
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
            .map(|m| m.into_quote(observed_at))
            .collect()
    }

    /// Whether Kalshi answers (`GET /exchange/status`), when there is nothing to quote.
    async fn exchange_status(&self) -> Result<(), FeedError> {
        let url = format!("{}/exchange/status", self.rest_url);
        let mut request = self.http.get(&url);
        for (name, value) in self.signed_headers(&url) {
            request = request.header(name, value);
        }
        let response = request
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| FeedError::from_reqwest(e, self.timeout))?;
        match response.status().as_u16() {
            429 => Err(FeedError::RateLimited),
            s if !(200..300).contains(&s) => Err(FeedError::Status(s)),
            _ => Ok(()),
        }
    }

    /// The game markets of `series` that close from `min_close_s` (Unix seconds) on,
    /// grouped by event: scheduled, live and just-finished games. Pages through
    /// Kalshi's cursor, [`MAX_LISTING_PAGES`] pages at most.
    pub async fn fetch_game_markets(
        &self,
        series: &str,
        min_close_s: i64,
    ) -> Result<Vec<MarketEvent>, FeedError> {
        let url = format!("{}/markets", self.rest_url);
        let mut events: Vec<MarketEvent> = Vec::new();
        let mut cursor = String::new();
        for _ in 0..MAX_LISTING_PAGES {
            let mut request = self.http.get(&url);
            for (name, value) in self.signed_headers(&url) {
                request = request.header(name, value);
            }
            let response = request
                .query(&[
                    ("series_ticker", series),
                    ("min_close_ts", &min_close_s.to_string()),
                    ("limit", "1000"),
                    ("cursor", &cursor),
                ])
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
            let page: ListingPage =
                serde_json::from_slice(&body).map_err(|e| FeedError::Malformed(e.to_string()))?;
            for market in page.markets {
                match events
                    .iter_mut()
                    .find(|e| e.event_ticker == market.event_ticker)
                {
                    Some(event) => event.markets.push(market.ticker),
                    None => events.push(MarketEvent {
                        event_ticker: market.event_ticker,
                        markets: vec![market.ticker],
                    }),
                }
            }
            match page.cursor.filter(|c| !c.is_empty()) {
                Some(next) => cursor = next,
                None => break,
            }
        }
        Ok(events)
    }

    async fn stream(
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

    async fn healthy(&self, sink: &FeedSink, health: &mut HealthTracker, now: Instant) {
        report_health(sink, Source::Kalshi, health.success(now), None).await;
    }
}

impl KalshiFeed {
    /// The ticker stream until it ends; a failure also says the stream is down.
    async fn stream_round(
        &self,
        sink: &FeedSink,
        stop: &CancellationToken,
        health: &mut HealthTracker,
    ) -> Round {
        match self.stream(sink, stop, health).await {
            StreamEnd::Stopped => Round::Stopped,
            StreamEnd::Resubscribe => Round::Again(Duration::ZERO),
            StreamEnd::Failed(e) => {
                if let FeedError::Refused(why) = &e {
                    tracing::error!(source = "kalshi", "{why}");
                }
                tell_link(
                    sink,
                    Link::Down,
                    Some(format!("the ticker stream failed: {e}")),
                )
                .await;
                Round::Failed(e)
            }
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

/// Tells the aggregator how Kalshi is reached now.
async fn tell_link(sink: &FeedSink, link: Link, detail: Option<String>) {
    let source = Source::Kalshi;
    send(
        sink,
        FeedEvent::Link {
            source,
            link,
            detail,
        },
    )
    .await;
}

impl Upstream for KalshiFeed {
    const SOURCE: Source = Source::Kalshi;
    const ROUND: &'static str = "market feed";

    fn policies(&self) -> (&HealthPolicy, &Backoff) {
        (&self.health, &self.backoff)
    }

    /// A snapshot of the markets over REST; then, with a key, their ticker stream
    /// until it fails (the next round starts with a fresh snapshot), or, without one,
    /// the next poll after the polling interval.
    async fn round(
        &self,
        sink: &FeedSink,
        stop: &CancellationToken,
        health: &mut HealthTracker,
    ) -> Round {
        let nothing_to_follow = self.tickers.borrow().is_empty();
        if nothing_to_follow {
            // No market to follow (no game today, or none matched): Kalshi's health is
            // still whether it answers.
            return match unless_stopped(stop, self.exchange_status()).await {
                None => Round::Stopped,
                Some(Err(e)) => Round::Failed(e),
                Some(Ok(())) => {
                    self.healthy(sink, health, Instant::now()).await;
                    Round::Again(NOTHING_TO_FOLLOW_WAIT)
                }
            };
        }
        let quotes = match unless_stopped(stop, self.fetch_quotes()).await {
            None => return Round::Stopped,
            Some(Err(e)) => return Round::Failed(e),
            Some(Ok(quotes)) => quotes,
        };
        self.healthy(sink, health, Instant::now()).await;
        for q in quotes {
            send(sink, FeedEvent::Quote(q)).await;
        }
        let every = match &self.access {
            Access::Signed(_) => return self.stream_round(sink, stop, health).await,
            Access::Polling(every) => *every,
        };
        let detail = format!(
            "polling the REST API every {} (no Kalshi key for the stream)",
            crate::units::show_duration(every)
        );
        tell_link(sink, Link::Polling, Some(detail)).await;
        Round::Again(every)
    }
}

#[derive(Deserialize)]
struct MarketsPage {
    markets: Vec<Market>,
}

/// How soon a feed with no market to follow asks Kalshi again.
const NOTHING_TO_FOLLOW_WAIT: Duration = Duration::from_secs(2);

/// Pages of a market listing read at most: a few thousand markets, far more than a
/// series has games around today.
const MAX_LISTING_PAGES: usize = 5;

#[derive(Deserialize)]
struct ListingPage {
    #[serde(default)]
    markets: Vec<ListedMarket>,
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Deserialize)]
struct ListedMarket {
    ticker: String,
    event_ticker: String,
}

#[derive(Deserialize)]
struct Market {
    ticker: String,
    status: String,
    #[serde(default)]
    yes_bid_dollars: Option<String>,
    #[serde(default)]
    yes_ask_dollars: Option<String>,
    #[serde(default)]
    last_price_dollars: Option<String>,
    /// "yes" or "no" once settled, "" before.
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    settlement_value_dollars: Option<String>,
}

impl Market {
    /// The market's quote. A settled market keeps its last order book, which says
    /// nothing any more: its quote is the settlement.
    fn into_quote(self, observed_at: UnixMicros) -> Result<QuoteObservation, FeedError> {
        let settled = matches!(self.status.as_str(), "determined" | "finalized" | "settled");
        let what = |field: &str| format!("{field} of {}", self.ticker);
        let settlement = match (settled, self.result.as_deref()) {
            (true, Some("yes" | "no")) => dollars(
                self.settlement_value_dollars.as_deref(),
                &what("settlement_value_dollars"),
            )?
            .or(Some(if self.result.as_deref() == Some("yes") {
                1.0
            } else {
                0.0
            })),
            _ => None,
        };
        if settlement.is_some() {
            return Ok(QuoteObservation {
                yes_bid: None,
                yes_ask: None,
                last_price: settlement,
                settlement,
                settled,
                ticker: self.ticker,
                observed_at,
            });
        }
        Ok(QuoteObservation {
            yes_bid: dollars(self.yes_bid_dollars.as_deref(), &what("yes_bid_dollars"))?,
            yes_ask: dollars(self.yes_ask_dollars.as_deref(), &what("yes_ask_dollars"))?,
            last_price: last_price(
                self.last_price_dollars.as_deref(),
                &what("last_price_dollars"),
            )?,
            settlement: None,
            settled,
            ticker: self.ticker,
            observed_at,
        })
    }
}

/// A dollar price: None when it is empty or missing (Kalshi sends `""` for a price
/// that is not there), an error when it is not a number.
fn dollars(text: Option<&str>, what: &str) -> Result<Option<f64>, FeedError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => t
            .parse::<f64>()
            .map(Some)
            .map_err(|_| FeedError::Malformed(format!("{what} {t:?} is not a number"))),
    }
}

/// A last trade price: none also when it is 0, which is what a market that never
/// traded shows (a trade is at 1 cent at least).
fn last_price(text: Option<&str>, what: &str) -> Result<Option<f64>, FeedError> {
    Ok(dollars(text, what)?.filter(|p| *p > 0.0))
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

    fn market(json: serde_json::Value) -> QuoteObservation {
        serde_json::from_value::<Market>(json)
            .unwrap()
            .into_quote(UnixMicros(1))
            .unwrap()
    }

    #[test]
    fn a_never_traded_market_has_no_last_price_and_a_settled_one_its_settlement() {
        let untraded = market(serde_json::json!({"ticker": "T", "status": "active",
            "yes_bid_dollars": "0.4000", "yes_ask_dollars": "0.4500", "last_price_dollars": "0.0000",
            "result": ""}));
        assert_eq!(
            (untraded.yes_bid, untraded.last_price, untraded.settlement),
            (Some(0.4), None, None)
        );
        // Kalshi keeps a settled market's last book; the settlement is what counts.
        let won = market(serde_json::json!({"ticker": "T", "status": "finalized",
            "yes_bid_dollars": "0.9900", "yes_ask_dollars": "1.0000", "last_price_dollars": "0.9900",
            "result": "yes", "settlement_value_dollars": "1.0000"}));
        assert_eq!(
            (
                won.yes_bid,
                won.yes_ask,
                won.last_price,
                won.settlement,
                won.settled
            ),
            (None, None, Some(1.0), Some(1.0), true)
        );
        let lost = market(serde_json::json!({"ticker": "T", "status": "determined",
            "yes_bid_dollars": "0.0000", "yes_ask_dollars": "0.0100", "last_price_dollars": "0.0100",
            "result": "no"}));
        assert_eq!((lost.last_price, lost.settlement), (Some(0.0), Some(0.0)));
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
