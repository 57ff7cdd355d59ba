//! What serve keeps in InfluxDB (`--influxdb`): every published live point, every
//! change of a source's health, and every fresh NFL/NHL scores fetch.
//!
//! | measurement     | tags                                   | fields |
//! |-----------------|----------------------------------------|--------|
//! | `live_point`    | `game`, `league`, `home`, `away`, `cause` | `seq`, `state`, `period`, `clock`, `home_score`, `away_score`, `home_win_prob`, `yes_bid`, `yes_ask`, `last_price`, `espn`, `kalshi` (source states), `last_play` |
//! | `source_health` | `source`                               | `state`, `code` (0 ok, 1 stale, 2 down) |
//! | `scores`        | `league`, `game`, `status`             | `home`, `away`, `home_score`, `away_score`, `status_detail`, `clock` |
//!
//! A live point is stamped with its `observed_at`; the others with the time they
//! were seen. Writing never blocks the stream (see [`crate::influx::writer`]).

use std::sync::Arc;

use super::observe::Metrics;
use crate::contract::{GameInfo, League, Point, ScoresBody, Source, SourceHealth, UnixMicros};
use crate::influx::{Field, StoreStatus, WriteObserver, Writer, line};

/// serve's handle on its store: nothing at all without `--influxdb`.
#[derive(Clone, Default)]
pub struct Store(Option<Writer>);

impl Store {
    pub fn new(writer: Option<Writer>) -> Self {
        Store(writer)
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// The store's state for `/health`, when there is one: its URL (without
    /// credentials) and how writing goes.
    pub fn status(&self) -> Option<(String, StoreStatus)> {
        self.0
            .as_ref()
            .map(|w| (w.target.display.clone(), w.status()))
    }

    pub fn live_point(&self, game: &GameInfo, seq: u64, point: &Point) {
        let Some(writer) = &self.0 else { return };
        let mut out = String::with_capacity(320);
        let market = point.market.as_ref();
        let written = line(&mut out, "live_point")
            .tag("game", game.id.as_str())
            .tag("league", league_name(game.league))
            .tag("home", &game.home.abbreviation)
            .tag("away", &game.away.abbreviation)
            .tag(
                "cause",
                match point.cause {
                    crate::contract::Cause::Play => "play",
                    crate::contract::Cause::Market => "market",
                },
            )
            .field("seq", Field::Int(seq as i64))
            .field("state", Field::Text(point.state.as_str().into()))
            .field_opt("period", point.period.map(|p| Field::Int(p.into())))
            .field_opt("clock", point.clock.clone().map(Field::Text))
            .field_opt("home_score", point.score.map(|s| Field::Int(s.home.into())))
            .field_opt("away_score", point.score.map(|s| Field::Int(s.away.into())))
            .field_opt("home_win_prob", point.home_win_prob.map(Field::Float))
            .field_opt("yes_bid", market.and_then(|m| m.yes_bid).map(Field::Float))
            .field_opt("yes_ask", market.and_then(|m| m.yes_ask).map(Field::Float))
            .field_opt(
                "last_price",
                market.and_then(|m| m.last_price).map(Field::Float),
            )
            .field_opt(
                "settlement",
                market.and_then(|m| m.settlement).map(Field::Float),
            )
            .field("espn", Field::Text(point.sources.espn.as_str().into()))
            .field("kalshi", Field::Text(point.sources.kalshi.as_str().into()))
            .field_opt("last_play", point.last_play.clone().map(Field::Text))
            .finish(nanos(point.observed_at));
        if written {
            writer.push(out);
        }
    }

    pub fn source_health(&self, source: Source, health: SourceHealth) {
        let Some(writer) = &self.0 else { return };
        let mut out = String::new();
        line(&mut out, "source_health")
            .tag("source", source.as_str())
            .field("state", Field::Text(health.as_str().into()))
            .field("code", Field::Int(health_code(health)))
            .finish(nanos(now()));
        writer.push(out);
    }

    /// One line per game of a fresh (not cached) scores fetch.
    pub fn scores(&self, body: &ScoresBody) {
        let Some(writer) = &self.0 else { return };
        let at = nanos(now());
        let mut out = String::new();
        for game in &body.games {
            line(&mut out, "scores")
                .tag("league", league_name(body.league))
                .tag("game", &game.id.to_string())
                .tag("status", game.status.as_str())
                .field("home", Field::Text(game.home.name.clone()))
                .field("away", Field::Text(game.away.name.clone()))
                .field_opt("home_score", game.home.score.map(|s| Field::Int(s.into())))
                .field_opt("away_score", game.away.score.map(|s| Field::Int(s.into())))
                .field("status_detail", Field::Text(game.status_detail.clone()))
                .field_opt("clock", game.clock.clone().map(Field::Text))
                .finish(at);
        }
        writer.push(out);
    }
}

/// The writer's outcomes as Prometheus series (`livegames_influxdb_*`).
pub struct StoreMetrics(pub Arc<Metrics>);

impl WriteObserver for StoreMetrics {
    fn written(&self, lines: u64) {
        self.0
            .influxdb_lines
            .get_or_create(&result("written"))
            .inc_by(lines);
        self.0.influxdb_batch_lines.observe(lines as f64);
        self.0.influxdb_writes.get_or_create(&result("ok")).inc();
    }
    fn failed(&self, _error: &str) {
        self.0
            .influxdb_writes
            .get_or_create(&result("failed"))
            .inc();
    }
    fn dropped(&self, lines: u64) {
        self.0
            .influxdb_lines
            .get_or_create(&result("dropped"))
            .inc_by(lines);
    }
    fn queue_depth(&self, lines: usize) {
        self.0.influxdb_queue.set(lines as i64);
    }
    fn request_took(&self, took: std::time::Duration) {
        self.0.influxdb_write_seconds.observe(took.as_secs_f64());
    }
}

fn result(name: &str) -> super::observe::ResultLabel {
    super::observe::ResultLabel {
        result: name.into(),
    }
}

pub fn health_code(health: SourceHealth) -> i64 {
    match health {
        SourceHealth::Ok => 0,
        SourceHealth::Stale => 1,
        SourceHealth::Down => 2,
    }
}

fn league_name(league: League) -> &'static str {
    match league {
        League::Nba => "nba",
        League::Nfl => "nfl",
        League::Nhl => "nhl",
    }
}

fn now() -> UnixMicros {
    UnixMicros(crate::clock::unix_micros())
}

fn nanos(t: UnixMicros) -> i64 {
    t.0.saturating_mul(1000)
}
