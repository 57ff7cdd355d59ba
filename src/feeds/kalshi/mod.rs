//! Kalshi trade API v2 client. With an API key: the current quotes over REST on every
//! (re)connect, then the `ticker` channel over a signed WebSocket ([`auth`]). Without
//! one: the quotes over REST, polled at a fixed interval (Kalshi refuses unsigned
//! WebSocket handshakes).

pub mod auth;
mod rest;
mod stream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::health::{HealthPolicy, HealthTracker};
use super::rounds::{Round, Upstream, unless_stopped};
use super::{FeedError, FeedEvent, FeedSink, Link, report_health, send};
use crate::contract::Source;
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

/// How soon a feed with no market to follow asks Kalshi again.
const NOTHING_TO_FOLLOW_WAIT: Duration = Duration::from_secs(2);
