//! Finding the games: each event on ESPN's scoreboard matched to its Kalshi game
//! market by date and teams. A Kalshi game event's ticker carries the game's US
//! Eastern date and both teams' codes, away first (`KXNBAGAME-26MAY02PHIBOS`), with
//! one market per team (`...-BOS`, `...-PHI`). ESPN spells some teams differently
//! (`NY` for `NYK`): that table is data (`teams.json` beside this file), not code.
//!
//! A game with no market is still a game: it is served with ESPN's data alone, and
//! said to be unmatched. Pure: the listings come in, the games go out.

use std::collections::HashMap;

use super::catalog::CatalogEntry;
use crate::contract::{GameId, GameInfo, League, Team};

/// The Kalshi series of each league's game markets.
pub fn series(league: League) -> &'static str {
    match league {
        League::Nba => "KXNBAGAME",
        League::Nfl => "KXNFLGAME",
        League::Nhl => "KXNHLGAME",
    }
}

/// One event of ESPN's scoreboard, as discovery needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledGame {
    pub espn_event_id: String,
    pub league: League,
    /// Scheduled start, Unix seconds.
    pub start_s: i64,
    pub home: Side,
    pub away: Side,
}

/// A team as ESPN shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    /// ESPN's abbreviation, e.g. `NY`.
    pub espn: String,
    pub name: String,
}

/// One Kalshi event of a game series, and its markets' tickers.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketEvent {
    pub event_ticker: String,
    pub markets: Vec<String>,
}

/// What discovery found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Discovered {
    pub games: Vec<CatalogEntry>,
    /// The games without a Kalshi market, as people name them ("BOS @ NYK 2026-01-14").
    pub unmatched: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("the team table is not valid: {0}")]
pub struct TeamsError(#[from] serde_json::Error);

/// ESPN's abbreviations and Kalshi's codes, where they differ.
#[derive(Debug, Clone, Default)]
pub struct Teams(HashMap<League, HashMap<String, String>>);

impl Teams {
    /// The built-in table, `teams.json`.
    pub fn builtin() -> Result<Teams, TeamsError> {
        Teams::parse(include_str!("teams.json"))
    }

    pub fn parse(json: &str) -> Result<Teams, TeamsError> {
        #[derive(serde::Deserialize)]
        struct Table {
            #[serde(default)]
            nba: HashMap<String, String>,
            #[serde(default)]
            nfl: HashMap<String, String>,
            #[serde(default)]
            nhl: HashMap<String, String>,
        }
        let t: Table = serde_json::from_str(json)?;
        Ok(Teams(HashMap::from([
            (League::Nba, t.nba),
            (League::Nfl, t.nfl),
            (League::Nhl, t.nhl),
        ])))
    }

    /// Kalshi's code for the team ESPN calls `espn` in `league`.
    pub fn kalshi_code(&self, league: League, espn: &str) -> String {
        self.0
            .get(&league)
            .and_then(|t| t.get(espn))
            .cloned()
            .unwrap_or_else(|| espn.to_owned())
    }
}

/// Each scoreboard game with its Kalshi market where one matches; `names` gives a
/// game the id it is known by (a games map's), else the id is ESPN's event id.
pub fn match_games(
    games: &[ScheduledGame],
    events: &[MarketEvent],
    teams: &Teams,
    names: &HashMap<String, GameId>,
) -> Discovered {
    let mut found = Discovered::default();
    for game in games {
        let home = teams.kalshi_code(game.league, &game.home.espn);
        let away = teams.kalshi_code(game.league, &game.away.espn);
        let market = home_market(game, &home, &away, events);
        let Some(id) = names
            .get(&game.espn_event_id)
            .cloned()
            .or_else(|| GameId::parse(&game.espn_event_id).ok())
        else {
            continue;
        };
        if market.is_none() {
            let (y, m, d) = crate::clock::eastern_day(game.start_s.max(0) as u64);
            found
                .unmatched
                .push(format!("{away} @ {home} {y:04}-{m:02}-{d:02}"));
        }
        found.games.push(CatalogEntry {
            info: GameInfo {
                id,
                league: game.league,
                home: Team {
                    abbreviation: home,
                    name: game.home.name.clone(),
                },
                away: Team {
                    abbreviation: away,
                    name: game.away.name.clone(),
                },
                scheduled_at: rfc3339(game.start_s),
            },
            espn_event_id: game.espn_event_id.clone(),
            kalshi_home_market: market,
        });
    }
    found
}

/// The market of the home team in the game's event: `{SERIES}-{date}{away}{home}`,
/// market `{event}-{home}`.
fn home_market(
    game: &ScheduledGame,
    home: &str,
    away: &str,
    events: &[MarketEvent],
) -> Option<String> {
    let wanted = format!(
        "{}-{}{away}{home}",
        series(game.league),
        kalshi_date(game.start_s)
    );
    let event = events
        .iter()
        .find(|e| e.event_ticker.eq_ignore_ascii_case(&wanted))?;
    let market = format!("{}-{home}", event.event_ticker);
    event
        .markets
        .iter()
        .find(|m| m.eq_ignore_ascii_case(&market))
        .cloned()
}

/// The Eastern date of a start as Kalshi writes it in tickers: `26MAY02`.
pub fn kalshi_date(start_s: i64) -> String {
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    let (y, m, d) = crate::clock::eastern_day(start_s.max(0) as u64);
    let month = MONTHS[(m - 1).clamp(0, 11) as usize];
    format!("{:02}{month}{d:02}", y.rem_euclid(100))
}

fn rfc3339(unix_s: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_s.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn game(id: &str, iso: &str, away: (&str, &str), home: (&str, &str)) -> ScheduledGame {
        ScheduledGame {
            espn_event_id: id.into(),
            league: League::Nba,
            start_s: crate::feeds::espn::parse_time(iso).unwrap(),
            home: Side {
                espn: home.0.into(),
                name: home.1.into(),
            },
            away: Side {
                espn: away.0.into(),
                name: away.1.into(),
            },
        }
    }

    fn event(ticker: &str, teams: &[&str]) -> MarketEvent {
        MarketEvent {
            event_ticker: ticker.into(),
            markets: teams.iter().map(|t| format!("{ticker}-{t}")).collect(),
        }
    }

    #[test]
    fn the_eastern_date_is_the_tickers() {
        // 9:30 pm ET on 8 May is 01:30 UTC on 9 May.
        let start = crate::feeds::espn::parse_time("2026-05-09T01:30Z").unwrap();
        assert_eq!(kalshi_date(start), "26MAY08");
    }

    /// The right market to the right game, through the codes that differ (ESPN `NY`,
    /// `GS` are Kalshi's `NYK`, `GSW`), and a game without a market served and named.
    #[test]
    fn games_are_matched_to_their_markets_by_date_and_teams() {
        let games = [
            game(
                "401810999",
                "2026-01-15T00:30Z",
                ("BOS", "Boston Celtics"),
                ("NY", "New York Knicks"),
            ),
            game(
                "401811000",
                "2026-01-15T03:00Z",
                ("SA", "San Antonio Spurs"),
                ("GS", "Golden State Warriors"),
            ),
            game(
                "401811001",
                "2026-01-15T00:00Z",
                ("PHI", "Philadelphia 76ers"),
                ("ORL", "Orlando Magic"),
            ),
        ];
        let events = [
            // Another day's game of the same teams must not match.
            event("KXNBAGAME-26JAN13BOSNYK", &["NYK", "BOS"]),
            event("KXNBAGAME-26JAN14BOSNYK", &["NYK", "BOS"]),
            event("KXNBAGAME-26JAN14SASGSW", &["GSW", "SAS"]),
        ];
        let names = HashMap::from([("401810999".to_owned(), GameId::parse("0022500612").unwrap())]);
        let found = match_games(&games, &events, &Teams::builtin().unwrap(), &names);
        let markets: Vec<_> = found
            .games
            .iter()
            .map(|g| (g.info.id.as_str(), g.kalshi_home_market.as_deref()))
            .collect();
        assert_eq!(
            markets,
            [
                ("0022500612", Some("KXNBAGAME-26JAN14BOSNYK-NYK")),
                ("401811000", Some("KXNBAGAME-26JAN14SASGSW-GSW")),
                ("401811001", None),
            ]
        );
        assert_eq!(found.games[0].info.home.abbreviation, "NYK");
        assert_eq!(found.games[1].info.away.abbreviation, "SAS");
        assert_eq!(found.games[0].info.scheduled_at, "2026-01-15T00:30:00Z");
        assert_eq!(found.unmatched, ["PHI @ ORL 2026-01-14"]);
    }
}
