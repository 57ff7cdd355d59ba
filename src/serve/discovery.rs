//! Finding the day's games while serving: ESPN's scoreboard and Kalshi's game markets,
//! matched ([`crate::feeds::discovery`]), at start and again on a schedule so games
//! added during the day appear. A games map (`--games-map`) replaces all of this.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::contract::GameId;
use crate::feeds::discovery::{self, Discovered, Teams};
use crate::feeds::espn::EspnFeed;
use crate::feeds::kalshi::KalshiFeed;
use crate::feeds::{FeedError, FeedEvent, FeedSink};

/// How far back a game market's close may lie for its game to be found: a game that
/// ended in the evening keeps its market (and its settlement) through the night.
const MARKETS_CLOSED_WITHIN: Duration = Duration::from_secs(12 * 3600);

/// Looks for games.
pub(super) struct Finder {
    pub espn: Arc<EspnFeed>,
    pub kalshi: Arc<KalshiFeed>,
    pub teams: Teams,
    /// Games known by another id than ESPN's event id (the mock recordings' NBA ids).
    pub names: HashMap<String, GameId>,
}

impl Finder {
    /// The scoreboard's games, each with its market where one matches.
    pub async fn find(&self) -> Result<Discovered, FeedError> {
        let games = self.espn.fetch_schedule().await?;
        let since = crate::clock::unix_seconds() as i64 - MARKETS_CLOSED_WITHIN.as_secs() as i64;
        let mut events = Vec::new();
        for league in self.espn.leagues() {
            let series = discovery::series(league);
            events.extend(self.kalshi.fetch_game_markets(series, since).await?);
        }
        Ok(discovery::match_games(
            &games,
            &events,
            &self.teams,
            &self.names,
        ))
    }

    /// Finds the games every `every` and hands them to the aggregator, until `stop`.
    pub async fn keep_finding(
        self: Arc<Self>,
        every: Duration,
        mut said: Vec<String>,
        sink: FeedSink,
        stop: tokio_util::sync::CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            match self.find().await {
                Ok(found) => {
                    if found.unmatched != said {
                        say_unmatched(&found);
                        said = found.unmatched.clone();
                    }
                    let _ = sink.send(FeedEvent::Discovered(found)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "finding the day's games failed; the games known so far stay")
                }
            }
        }
    }
}

/// Says once which games have no market, or that none did.
pub(super) fn say_unmatched(found: &Discovered) {
    let (games, unmatched) = (found.games.len(), found.unmatched.len());
    if unmatched == 0 {
        tracing::info!(games, "found the day's games, each with its Kalshi market");
    } else {
        tracing::warn!(
            games,
            unmatched,
            "{unmatched} of {games} games have no Kalshi market (served with ESPN's data alone): {}",
            found.unmatched.join(", ")
        );
    }
}
