//! NFL and NHL games on the mock ESPN and Kalshi: the API-SPORTS recordings, replayed
//! on the same clock as `/apisports`, seen as ESPN's scoreboard events (each game's
//! ESPN id and team codes from `espn/nfl-nhl.json`) and as Kalshi's game markets
//! (`KXNFLGAME-26DEC06HOUCHI-CHI`). ESPN gives NFL plays a win probability and NHL
//! plays none, as the real one does; Kalshi prices both.

use serde_json::{Value, json};

use super::apisports::{game_now, period_share};
use super::recordings::{ApiSportsRecording, EspnSide};
use super::replay::Schedule;
use super::state::MockState;
use crate::contract::League;
use crate::feeds::discovery::{kalshi_date, series};

/// The leagues replayed here.
pub(super) const LEAGUES: [League; 2] = [League::Nfl, League::Nhl];

/// A league's recording and replay schedule; None for the NBA (recorded apart).
pub(super) fn recording(
    state: &MockState,
    league: League,
) -> Option<(&ApiSportsRecording, &Schedule)> {
    match league {
        League::Nfl => Some((&state.0.recordings.nfl, &state.0.nfl)),
        League::Nhl => Some((&state.0.recordings.nhl, &state.0.nhl)),
        League::Nba => None,
    }
}

/// How many games `league` replays here.
pub(super) fn games(state: &MockState, league: League) -> usize {
    recording(state, league).map_or(0, |(r, _)| r.games.len())
}

/// One NFL or NHL game now.
pub(super) struct Game<'a> {
    league: League,
    side: &'a EspnSide,
    /// The game as API-SPORTS shows it now.
    view: Value,
    /// How far it is played: None before the start, 1 when over.
    progress: Option<f64>,
}

impl<'a> Game<'a> {
    pub(super) fn now(state: &'a MockState, league: League, index: usize) -> Option<Self> {
        let (rec, schedule) = recording(state, league)?;
        let football = league == League::Nfl;
        let (view, progress) = game_now(rec, schedule, football, index, state.replay_s());
        Some(Game {
            league,
            side: rec.espn.get(index)?,
            view,
            progress,
        })
    }

    pub(super) fn progress(&self) -> Option<f64> {
        self.progress
    }

    fn football(&self) -> bool {
        self.league == League::Nfl
    }

    /// Scheduled start, Unix seconds.
    pub(super) fn start_s(&self) -> i64 {
        self.view["timestamp"]
            .as_i64()
            .or_else(|| self.view["game"]["date"]["timestamp"].as_i64())
            .unwrap_or(0)
    }

    pub(super) fn team(&self, home: bool) -> (&str, &str) {
        let which = if home { "home" } else { "away" };
        let code = if home {
            &self.side.home
        } else {
            &self.side.away
        };
        let name = self.view["teams"][which]["name"].as_str().unwrap_or(code);
        (code, name)
    }

    /// (home, away) points now, once the game has started.
    fn score(&self) -> Option<(i64, i64)> {
        self.progress?;
        let total = |side: &str| {
            let s = &self.view["scores"][side];
            s["total"].as_i64().or_else(|| s.as_i64()).unwrap_or(0)
        };
        Some((total("home"), total("away")))
    }

    /// The home team's chance to win: the margin against what is left to play (a
    /// normal model, sd 13.5 points over an NFL game, 2.2 goals over an NHL game).
    pub(super) fn home_win_prob(&self) -> f64 {
        let (home, away) = self.score().unwrap_or((0, 0));
        let margin = (home - away) as f64;
        let left = 1.0 - self.progress.unwrap_or(0.0);
        if left <= 0.0 {
            return if margin > 0.0 {
                1.0
            } else if margin < 0.0 {
                0.0
            } else {
                0.5
            };
        }
        let (sd, home_edge) = if self.football() {
            (13.5, 1.5)
        } else {
            (2.2, 0.15)
        };
        let z = (margin + home_edge * left) / (sd * left.sqrt());
        let p = 1.0 / (1.0 + (-1.702 * z).exp());
        (p * 1000.0).round() / 1000.0
    }

    /// Did the home team win (None while not over).
    pub(super) fn home_won(&self) -> Option<bool> {
        (self.progress? >= 1.0).then(|| self.home_win_prob() >= 0.5)
    }

    pub(super) fn event_ticker(&self) -> String {
        format!(
            "{}-{}{}{}",
            series(self.league),
            kalshi_date(self.start_s()),
            self.side.away,
            self.side.home
        )
    }

    pub(super) fn market_ticker(&self, home: bool) -> String {
        format!("{}-{}", self.event_ticker(), self.team(home).0)
    }

    /// The Kalshi event of this game.
    pub(super) fn kalshi_event(&self) -> Value {
        let ((home, home_name), (away, away_name)) = (self.team(true), self.team(false));
        json!({"event_ticker": self.event_ticker(), "series_ticker": series(self.league),
            "title": format!("{away_name} at {home_name}"),
            "sub_title": format!("{away} at {home} ({})", crate::clock::eastern_date(self.start_s().max(0) as u64)),
            "category": "Sports", "mutually_exclusive": true, "collateral_return_type": "MECNET",
            "strike_period": "", "available_on_brokers": true})
    }

    /// One of its two Kalshi markets, without prices.
    pub(super) fn kalshi_market(&self, home: bool) -> Value {
        let ((_, yes), (_, no)) = (self.team(home), self.team(!home));
        let ((_, home_name), (_, away_name)) = (self.team(true), self.team(false));
        let at = |offset_s: i64| rfc3339(self.start_s() + offset_s);
        let day = crate::clock::eastern_date(self.start_s().max(0) as u64);
        json!({"ticker": self.market_ticker(home), "event_ticker": self.event_ticker(),
            "market_type": "binary", "title": format!("{away_name} at {home_name} Winner?"),
            "subtitle": "", "yes_sub_title": yes, "no_sub_title": no,
            "open_time": at(-2 * 86_400), "close_time": at(14 * 86_400),
            "latest_expiration_time": at(14 * 86_400), "settlement_timer_seconds": 300,
            "can_close_early": true, "notional_value_dollars": "1.0000",
            "price_level_structure": "linear_cent",
            "rules_primary": format!("If {yes} wins the {away_name} at {home_name} game originally scheduled for {day}, then the market resolves to Yes."),
            "rules_secondary": ""})
    }

    /// The game as an event of ESPN's scoreboard.
    pub(super) fn espn_event(&self) -> Value {
        let id = &self.side.espn_event_id;
        let uid = if self.football() {
            "s:20~l:28"
        } else {
            "s:70~l:90"
        };
        let score = self.score();
        let competitor = |home: bool| {
            let (code, name) = self.team(home);
            let points = score.map_or(0, |(h, a)| if home { h } else { a });
            json!({"id": code, "homeAway": if home { "home" } else { "away" }, "order": u8::from(!home),
                "score": points.to_string(),
                "team": {"id": code, "abbreviation": code, "displayName": name, "shortDisplayName": name}})
        };
        let status = self.espn_status();
        let mut competition = json!({"id": id, "uid": format!("{uid}~e:{id}~c:{id}"),
            "date": self.espn_date(), "startDate": self.espn_date(),
            "competitors": [competitor(true), competitor(false)], "status": status,
            "format": {"regulation": {"periods": if self.football() { 4 } else { 3 }}}});
        if let Some((home, away)) = score.filter(|_| self.progress < Some(1.0)) {
            let mut play = json!({"id": format!("{id}{}", home + away), "text": format!(
                "{} {home}, {} {away}", self.side.home, self.side.away)});
            if self.football() {
                let p = self.home_win_prob();
                play["probability"] = json!({"homeWinPercentage": p,
                    "awayWinPercentage": ((1.0 - p) * 1000.0).round() / 1000.0, "tiePercentage": 0.0});
            }
            competition["situation"] = json!({"lastPlay": play});
        }
        let ((home, home_name), (away, away_name)) = (self.team(true), self.team(false));
        json!({"id": id, "uid": format!("{uid}~e:{id}"), "date": self.espn_date(),
            "name": format!("{away_name} at {home_name}"), "shortName": format!("{away} @ {home}"),
            "competitions": [competition], "status": status})
    }

    /// ESPN writes start times to the minute: `2026-12-06T17:00Z`.
    fn espn_date(&self) -> String {
        let full = rfc3339(self.start_s());
        format!("{}Z", &full[..16])
    }

    fn espn_status(&self) -> Value {
        let (periods, period_s) = if self.football() {
            (4, 900.0)
        } else {
            (3, 1200.0)
        };
        match self.progress {
            None => json!({"clock": 0.0, "displayClock": "0:00", "period": 0,
                "type": {"id": "1", "name": "STATUS_SCHEDULED", "state": "pre", "completed": false,
                         "description": "Scheduled", "detail": "Scheduled"}}),
            Some(p) if p >= 1.0 => json!({"clock": 0.0, "displayClock": "0:00", "period": periods,
                "type": {"id": "3", "name": "STATUS_FINAL", "state": "post", "completed": true,
                         "description": "Final", "detail": "Final"}}),
            Some(p) => {
                let period = ((p * periods as f64) as usize).min(periods - 1);
                let left = ((1.0 - period_share(p, period, periods)) * period_s).round() as u64;
                let clock = format!("{}:{:02}", left / 60, left % 60);
                json!({"clock": left as f64, "displayClock": clock, "period": period + 1,
                    "type": {"id": "2", "name": "STATUS_IN_PROGRESS", "state": "in", "completed": false,
                             "description": "In Progress", "detail": format!("{clock} - period {}", period + 1)}})
            }
        }
    }
}

fn rfc3339(unix_s: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_s.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A league's scoreboard now.
pub(super) fn scoreboard(state: &MockState, league: League) -> Value {
    let events: Vec<Value> = (0..games(state, league))
        .filter_map(|i| Game::now(state, league, i))
        .map(|g| g.espn_event())
        .collect();
    let (id, name, abbreviation) = match league {
        League::Nfl => ("28", "National Football League", "NFL"),
        _ => ("90", "National Hockey League", "NHL"),
    };
    json!({"leagues": [{"id": id, "name": name, "abbreviation": abbreviation, "slug": league.as_str()}],
        "day": {"date": crate::clock::eastern_date(crate::clock::unix_seconds())},
        "events": events})
}
