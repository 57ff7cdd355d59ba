//! Kalshi's REST API: the quotes of the followed markets, the game markets of a series
//! for discovery, and whether the exchange answers. Prices are dollar strings; a price
//! that is not there (`""`, missing) is no price, not an error.

use serde::Deserialize;

use super::KalshiFeed;
use crate::contract::UnixMicros;
use crate::feeds::discovery::MarketEvent;
use crate::feeds::{FeedError, QuoteObservation};

impl KalshiFeed {
    /// The current quote of every followed market, over REST.
    pub async fn fetch_quotes(&self) -> Result<Vec<QuoteObservation>, FeedError> {
        let followed = self.tickers.borrow().join(",");
        let page: MarketsPage = self.get_json("/markets", &[("tickers", &followed)]).await?;
        let observed_at = UnixMicros(crate::clock::unix_micros());
        page.markets
            .into_iter()
            .map(|m| m.into_quote(observed_at))
            .collect()
    }

    /// Whether Kalshi answers (`GET /exchange/status`), when there is nothing to quote.
    pub(super) async fn exchange_status(&self) -> Result<(), FeedError> {
        let _: serde::de::IgnoredAny = self.get_json("/exchange/status", &[]).await?;
        Ok(())
    }

    /// The game markets of `series` that close from `min_close_s` (Unix seconds) on,
    /// grouped by event: scheduled, live and just-finished games. Pages through
    /// Kalshi's cursor, [`MAX_LISTING_PAGES`] pages at most.
    pub async fn fetch_game_markets(
        &self,
        series: &str,
        min_close_s: i64,
    ) -> Result<Vec<MarketEvent>, FeedError> {
        let min_close = min_close_s.to_string();
        let mut events: Vec<MarketEvent> = Vec::new();
        let mut cursor = String::new();
        for _ in 0..MAX_LISTING_PAGES {
            let query = [
                ("series_ticker", series),
                ("min_close_ts", min_close.as_str()),
                ("limit", "1000"),
                ("cursor", cursor.as_str()),
            ];
            let page: ListingPage = self.get_json("/markets", &query).await?;
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

    /// A signed `GET` of `path` under the REST base, its JSON answer read as `T`.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, FeedError> {
        let url = format!("{}{path}", self.rest_url);
        let mut request = self.http.get(&url);
        for (name, value) in self.signed_headers(&url) {
            request = request.header(name, value);
        }
        let response = request
            .query(query)
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
        serde_json::from_slice(&body).map_err(|e| FeedError::Malformed(e.to_string()))
    }
}

#[derive(Deserialize)]
struct MarketsPage {
    markets: Vec<Market>,
}

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
pub(super) fn dollars(text: Option<&str>, what: &str) -> Result<Option<f64>, FeedError> {
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
pub(super) fn last_price(text: Option<&str>, what: &str) -> Result<Option<f64>, FeedError> {
    Ok(dollars(text, what)?.filter(|p| *p > 0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
