//! Mock Kalshi trade API v2: markets over REST and the `ticker` channel over WebSocket,
//! with prices replayed from the recorded history plus per-tick jitter.

use std::collections::HashSet;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::faults::FaultMode;
use super::leagues;
use super::prices::{cents, dollars, jitter_cents, price_at, tick_interval};
use super::replay::Phase;
use super::state::MockState;
use crate::contract::{League, Source};

pub(super) fn router() -> Router<MockState> {
    Router::new()
        .route("/trade-api/v2/markets", get(markets))
        .route("/trade-api/v2/markets/{ticker}", get(market))
        .route("/trade-api/v2/markets/{ticker}/orderbook", get(orderbook))
        .route("/trade-api/v2/events/{event_ticker}", get(event))
        .route("/trade-api/v2/exchange/status", get(exchange_status))
        .route("/trade-api/ws/v2", get(ws))
}

/// Kalshi's exchange status: open, and trading.
async fn exchange_status() -> Json<Value> {
    Json(json!({"exchange_active": true, "trading_active": true}))
}

/// One market's quote at the current replay time.
struct Quote {
    status: &'static str,
    result: &'static str,
    bid: f64,
    ask: f64,
    last: f64,
    /// Seconds since tip-off, for volume figures.
    elapsed_s: f64,
    live: bool,
}

/// One market of the mock exchange: a recorded NBA market, or a side of an NFL or
/// NHL game ([`leagues`]).
#[derive(Debug, Clone, Copy, PartialEq)]
enum MarketRef {
    Nba {
        game: usize,
        market: usize,
    },
    Other {
        league: League,
        game: usize,
        home: bool,
    },
}

/// Every market, NBA first.
fn all_markets(state: &MockState) -> Vec<MarketRef> {
    let nba = state
        .0
        .recordings
        .nba
        .iter()
        .enumerate()
        .flat_map(|(game, r)| {
            (0..r.kalshi_markets.len()).map(move |market| MarketRef::Nba { game, market })
        });
    let others = leagues::LEAGUES.into_iter().flat_map(|league| {
        (0..leagues::games(state, league))
            .flat_map(move |game| [true, false].map(|home| MarketRef::Other { league, game, home }))
    });
    nba.chain(others).collect()
}

fn ticker_of(state: &MockState, market: MarketRef) -> String {
    match market {
        MarketRef::Nba { game, market } => {
            state.0.recordings.nba[game].kalshi_markets[market]["ticker"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        }
        MarketRef::Other { league, game, home } => leagues::Game::now(state, league, game)
            .map(|g| g.market_ticker(home))
            .unwrap_or_default(),
    }
}

/// Finds a market by ticker.
fn find(state: &MockState, ticker: &str) -> Option<MarketRef> {
    all_markets(state)
        .into_iter()
        .find(|m| ticker_of(state, *m) == ticker)
}

fn quote(state: &MockState, market: MarketRef, tick: Option<u64>) -> Quote {
    match market {
        MarketRef::Nba { game, market } => nba_quote(state, game, market, tick),
        MarketRef::Other { league, game, home } => match leagues::Game::now(state, league, game) {
            Some(g) => other_quote(&g, &ticker_of(state, market), home, tick),
            None => settled_quote(false, 0.0),
        },
    }
}

/// Kalshi's status of a market `ended_s_ago`, once its game is over.
fn settled_status(ended_s_ago: f64) -> &'static str {
    if ended_s_ago < 600.0 {
        "determined"
    } else {
        "finalized"
    }
}

/// A settled market's quote: Kalshi keeps its last order book; the settlement is in
/// `result` and `settlement_value_dollars`.
fn settled_quote(won: bool, elapsed_s: f64) -> Quote {
    let (bid, ask, last) = if won {
        (0.99, 1.0, 0.99)
    } else {
        (0.0, 0.01, 0.01)
    };
    Quote {
        status: "finalized",
        result: if won { "yes" } else { "no" },
        bid,
        ask,
        last,
        elapsed_s,
        live: false,
    }
}

fn nba_quote(state: &MockState, game: usize, market: usize, tick: Option<u64>) -> Quote {
    let rec = &state.0.recordings.nba[game];
    let (phase, _) = state.0.nba.phase(game, state.replay_s());
    let won = rec.kalshi_markets[market]["final_result"] == "yes";
    match phase {
        Phase::Final { ended_s_ago } => Quote {
            status: settled_status(ended_s_ago),
            ..settled_quote(won, rec.duration_s)
        },
        Phase::Scheduled { .. } | Phase::Live { .. } => {
            let (elapsed_s, live) = match phase {
                Phase::Live { elapsed_s } => (elapsed_s, true),
                _ => (0.0, false),
            };
            let (bid, ask, last) = trading_prices(rec, market, elapsed_s, tick);
            Quote {
                status: "active",
                result: "",
                bid,
                ask,
                last,
                elapsed_s,
                live,
            }
        }
    }
}

/// An NFL or NHL market's quote: the home side priced at the game's win probability,
/// a cent either side, jittered per tick; the away side mirrors it.
fn other_quote(game: &leagues::Game, ticker: &str, home: bool, tick: Option<u64>) -> Quote {
    let elapsed_s = game.progress().unwrap_or(0.0) * 10_800.0;
    if let Some(home_won) = game.home_won() {
        // The replay says over; it is settled at once (no determined window).
        return settled_quote(home_won == home, elapsed_s);
    }
    let p = game.home_win_prob();
    let p = if home { p } else { 1.0 - p };
    let jitter = tick.map(|n| jitter_cents(ticker, n) / 100.0).unwrap_or(0.0);
    let last = cents(p + jitter);
    Quote {
        status: "active",
        result: "",
        bid: cents(last - 0.01),
        ask: cents(last + 0.01).max(cents(last - 0.01) + 0.01),
        last,
        elapsed_s,
        live: game.progress().is_some(),
    }
}

/// A trading market's (bid, ask, last) from the recorded history, jittered per tick;
/// the away team's market mirrors the home team's.
fn trading_prices(
    rec: &super::recordings::NbaRecording,
    market: usize,
    elapsed_s: f64,
    tick: Option<u64>,
) -> (f64, f64, f64) {
    let [bid, ask, last] = price_at(&rec.home_price_history, elapsed_s);
    let ticker = rec.kalshi_markets[market]["ticker"].as_str().unwrap_or("");
    let jitter = tick.map(|n| jitter_cents(ticker, n) / 100.0).unwrap_or(0.0);
    let (bid, ask, last) = (
        cents(bid + jitter),
        cents(ask + jitter),
        cents(last + jitter),
    );
    if market == 0 {
        (bid, ask.max(bid + 0.01), last)
    } else {
        (
            cents(1.0 - ask),
            cents(1.0 - bid).max(cents(1.0 - ask) + 0.01),
            cents(1.0 - last),
        )
    }
}

/// A market's object without prices.
fn market_base(state: &MockState, market: MarketRef) -> Value {
    match market {
        MarketRef::Nba { game, market } => {
            let mut m = state.0.recordings.nba[game].kalshi_markets[market].clone();
            if let Some(obj) = m.as_object_mut() {
                obj.remove("final_result");
            }
            m
        }
        MarketRef::Other { league, game, home } => leagues::Game::now(state, league, game)
            .map(|g| g.kalshi_market(home))
            .unwrap_or_default(),
    }
}

fn market_json(state: &MockState, market: MarketRef) -> Value {
    let q = quote(state, market, None);
    let mut m = market_base(state, market);
    let volume = 40_000.0 + q.elapsed_s * 21.0;
    m["status"] = json!(q.status);
    m["result"] = json!(q.result);
    if !q.result.is_empty() {
        let paid = if q.result == "yes" { 1.0 } else { 0.0 };
        m["settlement_value_dollars"] = json!(dollars(paid));
    }
    m["yes_bid_dollars"] = json!(dollars(q.bid));
    m["yes_ask_dollars"] = json!(dollars(q.ask));
    m["no_bid_dollars"] = json!(dollars(cents(1.0 - q.ask)));
    m["no_ask_dollars"] = json!(dollars(cents(1.0 - q.bid)));
    m["last_price_dollars"] = json!(dollars(q.last));
    m["yes_bid_size_fp"] = json!("1200.00");
    m["yes_ask_size_fp"] = json!("800.00");
    m["volume_fp"] = json!(format!("{volume:.2}"));
    m["volume_24h_fp"] = json!(format!("{:.2}", volume * 0.6));
    m["open_interest_fp"] = json!(format!("{:.2}", volume * 0.4));
    m
}

#[derive(Deserialize)]
struct MarketsQuery {
    tickers: Option<String>,
    event_ticker: Option<String>,
    series_ticker: Option<String>,
    status: Option<String>,
    /// Markets closing at or after this Unix second only.
    min_close_ts: Option<i64>,
}

async fn markets(State(state): State<MockState>, Query(q): Query<MarketsQuery>) -> Json<Value> {
    let wanted: Option<HashSet<&str>> = q.tickers.as_deref().map(|t| t.split(',').collect());
    let mut out = Vec::new();
    for market in all_markets(&state) {
        let ticker = ticker_of(&state, market);
        if wanted
            .as_ref()
            .is_some_and(|w| !w.contains(ticker.as_str()))
            || q.series_ticker
                .as_deref()
                .is_some_and(|s| !ticker.starts_with(s))
        {
            continue;
        }
        let market = market_json(&state, market);
        let keep = q
            .event_ticker
            .as_deref()
            .is_none_or(|e| market["event_ticker"] == e)
            && q.min_close_ts.is_none_or(|min| {
                market["close_time"]
                    .as_str()
                    .and_then(crate::feeds::espn::parse_time)
                    .is_some_and(|close| close >= min)
            })
            // The filter's vocabulary differs from the object's status field.
            && match q.status.as_deref() {
                None => true,
                Some("open") => market["status"] == "active",
                Some("closed") => market["status"] == "determined",
                Some("settled") => market["status"] == "finalized",
                Some(_) => false,
            };
        if keep {
            out.push(market);
        }
    }
    Json(json!({"markets": out, "cursor": ""}))
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"code": "not_found", "message": format!("{what} not found"), "details": "", "service": "exchange"})),
    )
        .into_response()
}

async fn market(State(state): State<MockState>, Path(ticker): Path<String>) -> Response {
    match find(&state, &ticker) {
        Some(market) => Json(json!({"market": market_json(&state, market)})).into_response(),
        None => not_found("market"),
    }
}

async fn orderbook(State(state): State<MockState>, Path(ticker): Path<String>) -> Response {
    let Some(market) = find(&state, &ticker) else {
        return not_found("market");
    };
    let q = quote(&state, market, None);
    // Bids only on both sides, ascending, best bid last.
    let side = |best: f64| -> Vec<Value> {
        (0..3)
            .rev()
            .map(|k| cents(best - k as f64 * 0.01))
            .filter(|p| *p > 0.0)
            .map(|p| json!([dollars(p), "500.00"]))
            .collect()
    };
    Json(json!({"orderbook_fp": {"yes_dollars": side(q.bid), "no_dollars": side(cents(1.0 - q.ask))}})).into_response()
}

async fn event(State(state): State<MockState>, Path(event_ticker): Path<String>) -> Response {
    let markets: Vec<MarketRef> = all_markets(&state)
        .into_iter()
        .filter(|m| market_base(&state, *m)["event_ticker"] == event_ticker.as_str())
        .collect();
    let event = match markets.first() {
        None => return not_found("event"),
        Some(MarketRef::Nba { game, .. }) => state.0.recordings.nba[*game].kalshi_event.clone(),
        Some(MarketRef::Other { league, game, .. }) => leagues::Game::now(&state, *league, *game)
            .map(|g| g.kalshi_event())
            .unwrap_or_default(),
    };
    let markets: Vec<Value> = markets.iter().map(|m| market_json(&state, *m)).collect();
    Json(json!({"event": event, "markets": markets})).into_response()
}

async fn ws(
    State(state): State<MockState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(verifier) = &state.0.config.kalshi_verifier {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let now_ms = crate::clock::unix_micros() / 1_000;
        if let Err(why) = verifier.check(header, "GET", uri.path(), now_ms) {
            tracing::debug!(%why, "mock Kalshi refused a handshake");
            // Kalshi's own answer to an unsigned or badly signed handshake.
            let body = json!({"error": {"code": "authentication_error",
                "message": "authentication_error", "details": "NOT_FOUND"}});
            return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        }
    }
    let hold = state.0.shutdown.hold();
    upgrade.on_upgrade(move |socket| async move {
        stream_tickers(state, socket).await;
        drop(hold);
    })
}

/// Markets a connection subscribed to, each ticking `rate` times a second on its own
/// phase (independent markets do not tick in lockstep).
struct Subscription {
    sid: u64,
    markets: Vec<MarketRef>,
    due: Vec<Instant>,
    ticks: Vec<u64>,
    period: std::time::Duration,
}

impl Subscription {
    fn new(markets: Vec<MarketRef>, rate: f64, now: Instant) -> Self {
        let period = tick_interval(rate);
        let n = markets.len().max(1) as u32;
        let due = (0..markets.len() as u32)
            .map(|k| now + period * k / n)
            .collect();
        Self {
            sid: 1,
            ticks: vec![0; markets.len()],
            markets,
            due,
            period,
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.due.iter().min().copied()
    }

    /// Markets whose tick is due at `now`, each with its tick number. A market that
    /// fell more than a period behind (a stall) skips ahead instead of bursting.
    fn take_due(&mut self, now: Instant) -> Vec<(usize, u64)> {
        let mut out = Vec::new();
        for k in 0..self.markets.len() {
            if self.due[k] <= now {
                self.ticks[k] += 1;
                out.push((k, self.ticks[k]));
                self.due[k] += self.period;
                if self.due[k] < now {
                    self.due[k] = now + self.period;
                }
            }
        }
        out
    }
}

async fn stream_tickers(state: MockState, mut socket: WebSocket) {
    let mut subscription: Option<Subscription> = None;
    let mut keepalive = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        let next_tick = subscription.as_ref().and_then(Subscription::next_due);
        tokio::select! {
            _ = state.0.shutdown.triggered() => {
                let _ = socket.send(Message::Close(Some(CloseFrame { code: 1001, reason: "shutting down".into() }))).await;
                return;
            }
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let reply = command(&state, &text, &mut subscription);
                    if socket.send(Message::Text(reply.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = keepalive.tick() => {
                if socket.send(Message::Ping("heartbeat".into())).await.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep_until(next_tick.unwrap_or_else(Instant::now).into()), if next_tick.is_some() => {
                match state.faults().active(Source::Kalshi, Instant::now()) {
                    Some(FaultMode::Down) => return,
                    Some(FaultMode::Error | FaultMode::RateLimited) => {
                        let _ = socket.send(Message::Text(json!({"type": "error", "msg": {"code": 17, "msg": "Internal error"}}).to_string().into())).await;
                        return;
                    }
                    Some(FaultMode::Malformed) => {
                        if let Some(sub) = subscription.as_mut() {
                            sub.take_due(Instant::now());
                        }
                        if socket.send(Message::Text("{\"type\":\"ticker\",\"msg\":{".into())).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Some(FaultMode::Slow) => tokio::time::sleep(super::faults::SLOW_DELAY).await,
                    None => {}
                }
                let Some(sub) = subscription.as_mut() else { continue };
                for (k, n) in sub.take_due(Instant::now()) {
                    let Some(text) = ticker_message(&state, sub.sid, sub.markets[k], n) else { continue };
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Answers one client command (`subscribe`, `unsubscribe`, `list_subscriptions`).
fn command(state: &MockState, text: &str, subscription: &mut Option<Subscription>) -> Value {
    let Ok(cmd) = serde_json::from_str::<Value>(text) else {
        return json!({"type": "error", "msg": {"code": 2, "msg": "Params required"}});
    };
    let id = cmd["id"].clone();
    match cmd["cmd"].as_str() {
        Some("subscribe") => {
            let channels = cmd["params"]["channels"].as_array();
            if !channels.is_some_and(|c| c.iter().any(|c| c == "ticker")) {
                return json!({"id": id, "type": "error", "msg": {"code": 8, "msg": "Unknown channel"}});
            }
            let tickers: Option<Vec<&str>> = cmd["params"]["market_tickers"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .or_else(|| cmd["params"]["market_ticker"].as_str().map(|t| vec![t]));
            let markets = match tickers {
                None => all_markets(state),
                Some(list) => {
                    let found: Vec<_> = list.iter().filter_map(|t| find(state, t)).collect();
                    if found.len() != list.len() {
                        return json!({"id": id, "type": "error", "msg": {"code": 16, "msg": "Market not found"}});
                    }
                    found
                }
            };
            *subscription = Some(Subscription::new(
                markets,
                state.0.config.rate,
                Instant::now(),
            ));
            json!({"id": id, "type": "subscribed", "msg": {"channel": "ticker", "sid": 1}})
        }
        Some("unsubscribe") => {
            *subscription = None;
            json!({"id": id, "sid": 1, "type": "unsubscribed"})
        }
        Some("list_subscriptions") => {
            let list: Vec<Value> = subscription
                .iter()
                .map(|s| json!({"channel": "ticker", "sid": s.sid}))
                .collect();
            json!({"id": id, "type": "ok", "msg": list})
        }
        _ => json!({"id": id, "type": "error", "msg": {"code": 5, "msg": "Unknown command"}}),
    }
}

/// Tick `n` of one market, if its game is live (markets of other games are quiet).
fn ticker_message(state: &MockState, sid: u64, market: MarketRef, n: u64) -> Option<String> {
    let q = quote(state, market, Some(n));
    if !q.live {
        return None;
    }
    let now_ms = crate::clock::unix_micros() / 1_000;
    let ticker = ticker_of(state, market);
    let id = match market {
        MarketRef::Nba { game, market } => format!("mock-nba-{game}-{market}"),
        MarketRef::Other { league, game, home } => {
            format!("mock-{}-{game}-{}", league.as_str(), u8::from(!home))
        }
    };
    let volume = 40_000.0 + q.elapsed_s * 21.0;
    Some(
        json!({"type": "ticker", "sid": sid, "msg": {
            "market_ticker": ticker, "market_id": id,
            "price_dollars": format!("{:.3}", q.last),
            "yes_bid_dollars": format!("{:.3}", q.bid), "yes_ask_dollars": format!("{:.3}", q.ask),
            "volume_fp": format!("{volume:.2}"), "open_interest_fp": format!("{:.2}", volume * 0.4),
            "yes_bid_size_fp": "1200.00", "yes_ask_size_fp": "800.00", "last_trade_size_fp": "25.00",
            "ts": now_ms / 1_000, "ts_ms": now_ms
        }})
        .to_string(),
    )
}
