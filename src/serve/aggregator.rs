//! Merges what the feeds observe into each game's stream: every change becomes one
//! `update` (or `final`) frame, every change of a source's health one `status`
//! frame per game, and idle games get heartbeats.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::error::without_urls;
use super::observe::{Metrics, SourceBoard, SourceCodeLabel, SourceLabel};
use super::store::Store;
use super::stream::hub::{GameChannel, Hub};
use crate::contract::{
    Cause, FrameType, GameState, MarketQuote, Point, Source, SourceHealth, SourceStatuses,
    SourceTimes, UnixMicros,
};
use crate::feeds::catalog::CatalogEntry;
use crate::feeds::{FeedEvent, GameObservation, Link, QuoteObservation};

/// How often each idle game is checked for a heartbeat.
const HEARTBEAT_CHECK: Duration = Duration::from_millis(250);

/// The games are checked in this many groups, one group per step of
/// `HEARTBEAT_CHECK / HEARTBEAT_PHASES`: idle games' heartbeats fall on different
/// instants instead of handing every client of every game a frame at once.
const HEARTBEAT_PHASES: usize = 10;

#[derive(Default)]
struct GameTrack {
    espn: Option<GameObservation>,
    quote: Option<QuoteObservation>,
    state: Option<GameState>,
    /// When each source last said anything about this game, changed or not.
    heard: SourceTimes,
    /// ESPN's scoreboard stopped listing this game while it was live: its ESPN fields
    /// are stale for this game, whatever ESPN's health.
    unlisted: bool,
}

pub struct Aggregator {
    hub: Arc<Hub>,
    by_event: HashMap<String, usize>,
    by_ticker: HashMap<String, usize>,
    games: Vec<GameTrack>,
    /// Each game's channel, in the order of `games`.
    channels: Vec<Arc<GameChannel>>,
    /// The Kalshi markets the games follow, for the Kalshi feed.
    tickers: watch::Sender<Vec<String>>,
    sources: SourceStatuses,
    board: Arc<SourceBoard>,
    metrics: Arc<Metrics>,
    store: Store,
    heartbeat: Duration,
}

impl Aggregator {
    pub fn new(
        hub: Arc<Hub>,
        catalog: &[CatalogEntry],
        outlets: (Arc<SourceBoard>, Arc<Metrics>, Store),
        tickers: watch::Sender<Vec<String>>,
        heartbeat: Duration,
    ) -> Self {
        let (board, metrics, store) = outlets;
        let mut aggregator = Self {
            hub,
            by_event: HashMap::new(),
            by_ticker: HashMap::new(),
            games: Vec::new(),
            channels: Vec::new(),
            tickers,
            sources: SourceStatuses {
                espn: SourceHealth::Stale,
                kalshi: SourceHealth::Stale,
            },
            board,
            metrics,
            store,
            heartbeat,
        };
        aggregator.add_games(catalog);
        aggregator
    }

    /// Follows the games of `catalog` it does not follow yet: a channel in the hub, a
    /// track, and their markets for the Kalshi feed.
    fn add_games(&mut self, catalog: &[CatalogEntry]) {
        let before = self.games.len();
        for entry in catalog {
            if self.by_event.contains_key(&entry.espn_event_id) {
                continue;
            }
            let i = self.games.len();
            self.by_event.insert(entry.espn_event_id.clone(), i);
            if let Some(ticker) = &entry.kalshi_home_market {
                self.by_ticker.insert(ticker.clone(), i);
            }
            self.channels.push(self.hub.add(entry.info.clone()));
            self.games.push(GameTrack::default());
        }
        if self.games.len() > before {
            tracing::info!(
                added = self.games.len() - before,
                games = self.games.len(),
                "following new games"
            );
            self.tickers
                .send_replace(self.by_ticker.keys().cloned().collect());
        }
    }

    /// Drains feed events until `stop` or until every feed is gone.
    pub async fn run(mut self, mut events: mpsc::Receiver<FeedEvent>, stop: CancellationToken) {
        let mut beat = tokio::time::interval(HEARTBEAT_CHECK / HEARTBEAT_PHASES as u32);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Fire a little early so the gap between frames never exceeds the interval.
        let idle = self.heartbeat.saturating_sub(HEARTBEAT_CHECK);
        let mut phase = 0;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                event = events.recv() => match event {
                    Some(event) => self.apply(event),
                    None => return,
                },
                _ = beat.tick() => {
                    let now = Instant::now();
                    for game in heartbeat_group(&self.channels, phase) {
                        game.heartbeat_if_idle(idle, now);
                    }
                    phase = (phase + 1) % HEARTBEAT_PHASES;
                }
            }
        }
    }

    pub fn apply(&mut self, event: FeedEvent) {
        match event {
            FeedEvent::Game(obs) => self.apply_game(obs),
            FeedEvent::Quote(quote) => self.apply_quote(quote),
            FeedEvent::Health {
                source,
                health,
                detail,
            } => self.apply_health(source, health, detail),
            FeedEvent::Link {
                source,
                link,
                detail,
            } => self.apply_link(source, link, detail),
            FeedEvent::Listed { source, ids } => self.apply_listed(source, &ids),
            FeedEvent::Discovered(found) => {
                self.add_games(&found.games);
                self.board.set_discovery(&found);
                self.metrics.set_discovery(&found);
            }
            FeedEvent::ErrorFrame { source, code } => {
                let label = SourceCodeLabel {
                    source: source.as_str().into(),
                    code,
                };
                self.metrics.stream_error_frames.get_or_create(&label).inc();
            }
        }
    }

    fn apply_game(&mut self, mut obs: GameObservation) {
        let Some(&i) = self.by_event.get(&obs.espn_event_id) else {
            return;
        };
        let track = &mut self.games[i];
        keep_last_probability(&mut obs, track.espn.as_ref());
        track.heard.espn = Some(obs.observed_at);
        if track
            .espn
            .as_ref()
            .is_some_and(|prev| same_game_view(prev, &obs))
        {
            self.channels[i].heard(track.heard);
            return;
        }
        let was = track.state;
        track.state = Some(obs.state);
        let observed_at = obs.observed_at;
        track.espn = Some(obs);
        let kind = if track.state == Some(GameState::Final) && was != Some(GameState::Final) {
            FrameType::Final
        } else {
            FrameType::Update
        };
        self.publish(i, kind, Cause::Play, observed_at);
    }

    fn apply_quote(&mut self, quote: QuoteObservation) {
        let Some(&i) = self.by_ticker.get(&quote.ticker) else {
            return;
        };
        let observed_at = quote.observed_at;
        let track = &mut self.games[i];
        track.heard.kalshi = Some(observed_at);
        if track.state.is_none() && quote.settled {
            track.state = Some(GameState::Final);
        }
        track.quote = Some(quote);
        self.publish(i, FrameType::Update, Cause::Market, observed_at);
    }

    /// How a source is reached changed (its stream opened, failed, or it is polled).
    fn apply_link(&mut self, source: Source, link: Link, detail: Option<String>) {
        let was = self.board.link(source).map(|(l, _)| l);
        self.board.set_link(source, link, detail.clone());
        let label = SourceLabel {
            source: source.as_str().into(),
        };
        let up = i64::from(link == Link::Streaming);
        self.metrics.stream_up.get_or_create(&label).set(up);
        if link == Link::Streaming && was == Some(Link::Down) {
            self.metrics.stream_reconnects.get_or_create(&label).inc();
        }
        if was != Some(link) {
            let detail = detail.as_deref().map(without_urls).unwrap_or_default();
            match link {
                Link::Down => {
                    tracing::warn!(source = %source, link = link.as_str(), %detail, "stream down")
                }
                _ => {
                    tracing::info!(source = %source, link = link.as_str(), %detail, "stream state")
                }
            }
        }
    }

    /// A scoreboard poll's list: a live game missing from it is stale for that game
    /// (its clock would otherwise freeze under an `ok` ESPN); listed again, it is not.
    fn apply_listed(&mut self, source: Source, ids: &[String]) {
        if source != Source::Espn {
            return;
        }
        let listed: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        for i in 0..self.games.len() {
            let track = &self.games[i];
            let Some(event) = track.espn.as_ref().map(|e| e.espn_event_id.as_str()) else {
                continue;
            };
            let missing = !listed.contains(event) && track.state == Some(GameState::Live);
            if missing == track.unlisted {
                continue;
            }
            self.games[i].unlisted = missing;
            let message = if missing {
                "espn is stale for this game: its scoreboard no longer lists it while it was live"
            } else {
                "espn lists this game again"
            };
            let now = self.point(i, Cause::Play, UnixMicros(0));
            self.channels[i].publish_status(now, message);
            self.metrics.frames_published.inc();
        }
        let unlisted = self.games.iter().filter(|g| g.unlisted).count();
        let label = SourceLabel {
            source: source.as_str().into(),
        };
        self.metrics
            .games_unlisted
            .get_or_create(&label)
            .set(unlisted as i64);
    }

    fn apply_health(&mut self, source: Source, health: SourceHealth, detail: Option<String>) {
        let changed = self.board.get(source).is_none_or(|e| e.state != health);
        self.board.set(source, health, detail.clone());
        self.metrics.set_source_state(source, health);
        if changed {
            self.store.source_health(source, health);
        }
        let slot = match source {
            Source::Espn => &mut self.sources.espn,
            Source::Kalshi => &mut self.sources.kalshi,
            Source::Apisports => return,
        };
        if *slot == health {
            return;
        }
        *slot = health;
        let message = match (&detail, health) {
            (_, SourceHealth::Ok) => format!("{source} is ok"),
            (Some(d), h) => format!("{source} is {}: {}", h.as_str(), without_urls(d)),
            (None, h) => format!("{source} is {}", h.as_str()),
        };
        tracing::info!(source = %source, health = health.as_str(), detail = detail.as_deref().unwrap_or(""), "source health changed");
        for (i, game) in self.channels.iter().enumerate() {
            // The cause and time are the latest change's; the hub keeps those.
            let now = self.point(i, Cause::Play, UnixMicros(0));
            game.publish_status(now, &message);
            self.metrics.frames_published.inc();
        }
    }

    fn publish(&self, i: usize, kind: FrameType, cause: Cause, observed_at: UnixMicros) {
        let point = self.point(i, cause, observed_at);
        let game = &self.channels[i];
        if self.store.is_on() {
            let seq = game.publish_point(kind, point.clone());
            self.store.live_point(&game.info, seq, &point);
        } else {
            game.publish_point(kind, point);
        }
        self.metrics.frames_published.inc();
    }

    /// The game's data now. A source that is down contributes nulls, so a client can
    /// tell "unavailable" from "unchanged".
    fn point(&self, i: usize, cause: Cause, observed_at: UnixMicros) -> Point {
        let track = &self.games[i];
        let espn = track
            .espn
            .as_ref()
            .filter(|_| self.sources.espn != SourceHealth::Down);
        let quote = track
            .quote
            .as_ref()
            .filter(|_| self.sources.kalshi != SourceHealth::Down);
        Point {
            observed_at,
            cause,
            state: track.state.unwrap_or(GameState::Scheduled),
            period: espn.and_then(|e| e.period),
            clock: espn.and_then(|e| e.clock.clone()),
            score: espn.and_then(|e| e.score),
            home_win_prob: espn.and_then(|e| e.home_win_prob),
            last_play: espn.and_then(|e| e.last_play.clone()),
            market: quote.map(|q| MarketQuote {
                ticker: q.ticker.clone(),
                yes_bid: q.yes_bid,
                yes_ask: q.yes_ask,
                last_price: q.last_price,
                settlement: q.settlement,
            }),
            sources: SourceStatuses {
                espn: match (track.unlisted, self.sources.espn) {
                    (true, SourceHealth::Ok) => SourceHealth::Stale,
                    (_, health) => health,
                },
                kalshi: self.sources.kalshi,
            },
            as_of: track.heard,
        }
    }
}

/// ESPN's last play does not always carry a win probability; while the game is in
/// play the last one known stands, rather than the chart dropping to nothing between
/// plays.
fn keep_last_probability(obs: &mut GameObservation, previous: Option<&GameObservation>) {
    if obs.home_win_prob.is_none() && obs.state == GameState::Live {
        obs.home_win_prob = previous.and_then(|p| p.home_win_prob);
    }
}

/// Two scoreboard readings that a viewer could not tell apart.
fn same_game_view(a: &GameObservation, b: &GameObservation) -> bool {
    a.state == b.state
        && a.period == b.period
        && a.clock == b.clock
        && a.score == b.score
        && a.home_win_prob == b.home_win_prob
        && a.last_play_id == b.last_play_id
}

/// The point a game starts with, before any source has answered.
pub fn initial_point() -> Point {
    Point {
        observed_at: UnixMicros(crate::clock::unix_micros()),
        cause: Cause::Play,
        state: GameState::Scheduled,
        period: None,
        clock: None,
        score: None,
        home_win_prob: None,
        last_play: None,
        market: None,
        sources: SourceStatuses {
            espn: SourceHealth::Stale,
            kalshi: SourceHealth::Stale,
        },
        as_of: SourceTimes::default(),
    }
}

/// The games checked for a heartbeat at `phase` (0 to `HEARTBEAT_PHASES - 1`).
fn heartbeat_group<T>(games: &[T], phase: usize) -> impl Iterator<Item = &T> {
    games.iter().skip(phase).step_by(HEARTBEAT_PHASES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_game_is_checked_once_per_round_in_groups_a_tenth_as_large() {
        let games: Vec<usize> = (0..23).collect();
        let mut seen = Vec::new();
        for phase in 0..HEARTBEAT_PHASES {
            let group: Vec<usize> = heartbeat_group(&games, phase).copied().collect();
            assert!(group.len() <= 3, "phase {phase}: {group:?}");
            seen.extend(group);
        }
        seen.sort();
        assert_eq!(seen, games);
    }

    fn reading(state: GameState, prob: Option<f64>) -> GameObservation {
        GameObservation {
            espn_event_id: "401".into(),
            state,
            period: Some(2),
            clock: Some("5:00".into()),
            score: None,
            home_win_prob: prob,
            last_play_id: None,
            last_play: None,
            observed_at: UnixMicros(1),
        }
    }

    #[test]
    fn a_play_without_a_probability_keeps_the_last_one_while_in_play() {
        let before = reading(GameState::Live, Some(0.62));
        let mut now = reading(GameState::Live, None);
        keep_last_probability(&mut now, Some(&before));
        assert_eq!(now.home_win_prob, Some(0.62));
        let mut new_value = reading(GameState::Live, Some(0.7));
        keep_last_probability(&mut new_value, Some(&before));
        assert_eq!(new_value.home_win_prob, Some(0.7));
        let mut over = reading(GameState::Final, None);
        keep_last_probability(&mut over, Some(&before));
        assert_eq!(over.home_win_prob, None, "a final game's is ESPN's own");
    }
}
